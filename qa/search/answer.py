"""The answer line: pick the sentence that best answers, mark its citation; the abstention sentence."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from qa.text.lexicon import Lexicon
from qa.text.normalize import normalize_for_matching
from qa.text.sentences import ends_with_sentence_end, split_sentences
from qa.types import Hit, Query

_QUANTITY_WORDS = (
    "多少",
    "几",
    "比例",
    "增长",
    "增速",
    "规模",
    "总量",
    "达到",
    "占比",
    "率",
    "how much",
    "how many",
)


def answer_sentences(text: str) -> list[str]:
    """Sentences of a passage, punctuation kept; a heading line (short, no sentence end) is left out."""
    out = []
    for s in split_sentences(text):
        s = s.strip()
        if s and not (len(s) < 40 and not ends_with_sentence_end(s, "。！？；!?;")):
            out.append(s)
    return out


_UNIT_RE = re.compile(
    r"(?:多少|几)\s*(个百分点|平方公里|公里|千米|万人|人次|亿元|万元|元|钱|万亩|亩|万吨|吨|家|个|人|辆|项|所|座|条|件|套|台|户|班|倍|张|名|次|天|年|米|千瓦时|标箱)"
)
_PCT_WORDS = ("比重", "比例", "占比", "增长", "增速", "增幅", "率", "百分")


def asked_unit_pattern(normalized_question: str) -> re.Pattern[str] | None:
    """A pattern for 'a number with the unit the question asks for' (多少家 -> \\d+家), or None."""
    m = _UNIT_RE.search(normalized_question)
    if m:
        unit = {"钱": "元", "个百分点": "个百分点"}.get(m.group(1), m.group(1))
        return re.compile(r"\d(?:[\d.]*)\s*(?:万|亿|千|百)?" + re.escape(unit))
    if any(w in normalized_question for w in _PCT_WORDS) and (
        "多少" in normalized_question or "几" in normalized_question
    ):
        return re.compile(r"\d(?:[\d.]*)\s*%")
    return None


def asks_quantity(normalized_question: str) -> bool:
    """True when the question asks for a number."""
    return any(w in normalized_question for w in _QUANTITY_WORDS)


def best_sentence(query: Query, lexicon: Lexicon, idf: Mapping[str, float], text: str) -> tuple[str, float]:
    """The sentence of `text` that covers the question best, and its score (0..1)."""
    weights = {t: lexicon.term_weight(t, idf) for t in query.terms}
    total = sum(weights.values()) or 1.0
    want_number = asks_quantity(query.normalized)
    years = [str(y) for y in query.years]
    best, best_score = "", -1.0
    for s in answer_sentences(text):
        ns = normalize_for_matching(s)
        cov = sum(w for t, w in weights.items() if lexicon.term_present(t, ns)) / total
        score = cov
        if want_number and re.search(r"\d", ns):
            score += 0.15
        if years and any(y in ns for y in years):
            score += 0.05
        elif years and re.search(r"(?:19|20)\d\d年", ns):
            # a sentence about another year answers a different question
            score -= 0.5
        # very long sentences read badly as an answer line
        score -= max(0, len(s) - 120) / 1000
        if score > best_score:
            best, best_score = s, score
    return best, max(best_score, 0.0)


def answer_line(
    query: Query, hits: Sequence[Hit], lexicon: Lexicon, idf: Mapping[str, float], top: int = 3
) -> str:
    """Highlight the best sentence in each hit and build the answer line from the best one or two."""
    scored: list[tuple[float, int, str]] = []
    for i, h in enumerate(hits):
        s, sc = best_sentence(query, lexicon, idf, h.passage.text)
        h.highlight = s or None
        if i < top and s:
            scored.append((sc * (1.0 - 0.15 * i), i, s))
    if not scored:
        return ""
    scored.sort(key=lambda x: -x[0])
    first_score, first_i, first_s = scored[0]
    line = f"{first_s}[{first_i + 1}]"
    # a list question may draw a second sentence from another passage of the same document
    if len(scored) > 1 and any(w in query.normalized for w in ("哪些", "哪几", "什么措施", "举措")):
        sc2, i2, s2 = scored[1]
        if sc2 >= 0.8 * first_score and s2 != first_s and len(first_s) + len(s2) < 220:
            line += f"{s2}[{i2 + 1}]"
    return line


def abstain_text(query: Query) -> str:
    """The plain abstention sentence."""
    if query.uncovered_years:
        years = "、".join(f"{y}年" for y in query.uncovered_years)
        return (
            f"资料中没有找到{years}的相关内容（现有文件覆盖的年份见文件列表）。以下是最接近的段落，供参考。"
        )
    topic = query.text.strip("？?。! ！")
    if len(topic) > 30:
        topic = topic[:30] + "…"
    return f"资料中没有找到“{topic}”的相关内容。以下是最接近的段落，供参考。"
