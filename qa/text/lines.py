"""The lines of a passage as the answer line reads them: sentences, table rows and headings.

One reader for both sides: the answer line (qa.search.answer) takes its candidates from
`passage_sentences`, and the index builder embeds exactly those sentences (qa.index.sentences), so a
candidate's vector is always found by its text.
"""

from __future__ import annotations

import re
from functools import lru_cache

from qa.text.normalize import normalize_for_matching
from qa.text.sentences import ends_with_sentence_end, split_sentences

# figures that are not years: two or more in a short line without a sentence end make it a table row
_CELL = re.compile(r"\d+(?:\.\d+)?(?!\d|\.\d|\s*年)")


@lru_cache(maxsize=8192)
def passage_lines(text: str) -> tuple[tuple[str, str, str], ...]:
    """(as written, matching form, kind) of a passage's sentences; kind is "sentence", "row" (a table
    row: short, no sentence end, two figures or more that are not years) or "heading" (any other short
    line without a sentence end: a heading, or a table's header such as "指标名称单位2015年")."""
    out = []
    for s in split_sentences(text):
        s = s.strip()
        if not s:
            continue
        norm = normalize_for_matching(s)
        if len(s) >= 40 or ends_with_sentence_end(s, "。！？；!?;:："):
            kind = "sentence"
        else:
            kind = "row" if len(_CELL.findall(norm)) >= 2 else "heading"
        out.append((s, norm, kind))
    return tuple(out)


@lru_cache(maxsize=8192)
def passage_sentences(text: str) -> tuple[tuple[str, str], ...]:
    """(sentence as written, sentence in matching form) of a passage; a heading line is left out (a table
    row is kept: "地区生产总值亿元7311.5———中高速增长12003 6.8" may be the answer)."""
    return tuple((s, norm) for s, norm, kind in passage_lines(text) if kind != "heading")
