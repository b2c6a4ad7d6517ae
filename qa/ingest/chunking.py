"""Packing of clean text into citable chunks, sentence by sentence (qa.text.sentences splits them).

Chunks pack whole sentences up to `max_chars`, overlap by whole sentences,
and never cross a section boundary; a sentence longer than `max_chars` is cut at ，、：, then hard
at `max_chars` but never inside a number or a Latin word.

The baseline `naive_chunks` is langchain's RecursiveCharacterTextSplitter with its default
separators, run on the raw text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from qa.ingest.structure import Section
from qa.text.sentences import ends_with_sentence_end, sentence_spans

# 3: enumerated items (一、……；) stay in their paragraph; short whole sentences are kept
# 4: the cleaner joins lines broken off by web extraction (a line starting with 、，。》 …; an unindented line
#    after a short indented paragraph start), so those sentences are whole in their passage
CHUNKER_VERSION = 4
HEADING_IN_TEXT_CHARS = 60  # longer stand-alone heading lines stay out of passage text
SOFT_BREAKS = "，、：,:"


@dataclass(frozen=True)
class ChunkerSettings:
    """Sizes of the Chinese chunker, in characters of clean text."""

    max_chars: int = 300
    overlap_sentences: int = 1
    min_chars: int = 40

    def fingerprint(self) -> str:
        """Stable id of these settings and the algorithm version, for the index manifest."""
        d = asdict(self)
        return f"v{CHUNKER_VERSION}-" + "-".join(f"{k}={d[k]}" for k in sorted(d))


@dataclass
class Chunk:
    """A span [start, end) of the chunked text with its section path."""

    start: int
    end: int
    text: str
    path: list[str] = field(default_factory=list)


def _inside_token(text: str, k: int) -> bool:
    """True if a cut before position k would split a number or a Latin word."""
    if k <= 0 or k >= len(text):
        return False
    a, b = text[k - 1], text[k]
    if a.isascii() and b.isascii() and a.isalnum() and b.isalnum():
        return True
    if a.isdigit() and b in ".%‰℃,:·-":
        return True
    return a in ".,:-" and b.isdigit() and k >= 2 and text[k - 2].isdigit()


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence at ，、： and then hard at max_chars, never inside a number."""
    parts: list[tuple[int, int]] = []
    a = start
    last_soft = -1
    i = start
    while i < end:
        if i + 1 - a > max_chars:
            if a < last_soft <= a + max_chars:
                cut = last_soft
            else:
                cut = i  # hard cut; step back out of a number or word
                while cut > a + 1 and _inside_token(text, cut):
                    cut -= 1
                if cut <= a + 1:
                    cut = i  # an unsplittable token longer than max_chars
                    while cut < end and _inside_token(text, cut):
                        cut += 1
            parts.append((a, cut))
            a = cut
            last_soft = -1
            i = max(i, a)
            continue
        if text[i] in SOFT_BREAKS and not _inside_token(text, i + 1):
            last_soft = i + 1
        i += 1
    if a < end:
        parts.append((a, end))
    return parts


def _trimmed(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def chunk_range(text: str, start: int, end: int, settings: ChunkerSettings) -> list[tuple[int, int]]:
    """Chunk spans for text[start:end]: whole sentences packed to max_chars with sentence overlap."""
    pieces: list[tuple[int, int, bool]] = []  # (a, b, whole_sentence)
    for a, b in sentence_spans(text[start:end]):
        a, b = _trimmed(text, start + a, start + b)
        if a >= b:
            continue
        if b - a > settings.max_chars:
            pieces.extend((x, y, False) for x, y in _split_long(text, a, b, settings.max_chars))
        else:
            pieces.append((a, b, True))
    # whether a piece begins a paragraph (only whitespace since the previous newline)
    starts_par = [
        text.rfind("\n", start, a) >= 0 and not text[text.rfind("\n", start, a) + 1 : a].strip()
        for a, _, _ in pieces
    ]
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(pieces):
        j = i
        while j < len(pieces) and (j == i or pieces[j][1] - pieces[i][0] <= settings.max_chars):
            j += 1
        if j < len(pieces):
            # End at a paragraph break when one leaves the chunk at least 60% full, so a chunk does
            # not end on the lead sentence of the next paragraph ("消费市场提质扩容。").
            for k in range(j - 1, i, -1):
                if starts_par[k]:
                    if pieces[k - 1][1] - pieces[i][0] >= 0.6 * settings.max_chars:
                        j = k
                    break
        out.append((pieces[i][0], pieces[j - 1][1]))
        if j >= len(pieces):
            break
        nxt = j - settings.overlap_sentences if settings.overlap_sentences > 0 and not starts_par[j] else j
        overlap = pieces[max(nxt, i + 1) : j]
        # Overlap only in whole sentences, and only while it leaves room for new text.
        if (
            nxt <= i
            or not all(p[2] for p in overlap)
            or (overlap and overlap[-1][1] - overlap[0][0] > settings.max_chars // 2)
        ):
            nxt = j
        i = nxt
    # A lone fragment shorter than min_chars that is neither a whole sentence nor holds a figure (a lead-in
    # such as "重点抓好十个方面工作：") answers nothing; a short whole sentence ("一九五七年进出口贸易总额，
    # 比原计划超过百分之四。") does.
    return [(a, b) for a, b in out if b - a >= settings.min_chars or _worth_keeping(text[a:b])]


def _worth_keeping(fragment: str) -> bool:
    return any(c.isdigit() for c in fragment) or ends_with_sentence_end(fragment)


def chunk_text(text: str, sections: Sequence[Section] | None, settings: ChunkerSettings) -> list[Chunk]:
    """Chunks of clean text, each inside one section; a short heading line opens the first chunk."""
    if sections is None:
        sections = [Section(0, len(text), [])]
    chunks: list[Chunk] = []
    for sec in sections:
        body_start = sec.heading_end if sec.heading_end is not None else sec.start
        # A short heading line opens its section's first chunk, so the passage a person reads (and
        # the lexical index) carries it, e.g. the byline "郑州市人民政府市长何雄" above the opening.
        if body_start - sec.start <= HEADING_IN_TEXT_CHARS:
            body_start = sec.start
        for a, b in chunk_range(text, min(body_start, sec.end), sec.end, settings):
            chunks.append(Chunk(a, b, text[a:b], list(sec.path)))
    return chunks


def naive_chunks(raw_text: str, settings: ChunkerSettings) -> list[Chunk]:
    """Baseline: RecursiveCharacterTextSplitter (default separators) on the raw text, with offsets."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=settings.max_chars, chunk_overlap=settings.max_chars // 10, add_start_index=True
    )
    chunks: list[Chunk] = []
    for doc in splitter.create_documents([raw_text]):
        start = int(doc.metadata["start_index"])
        if start < 0:  # langchain could not locate the chunk; search ourselves
            start = raw_text.find(doc.page_content)
        text = doc.page_content
        a, b = _trimmed(raw_text, start, start + len(text))
        if a < b:
            chunks.append(Chunk(a, b, raw_text[a:b], []))
    return chunks


def text_hash(text: str) -> str:
    """Short content hash used in passage ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
