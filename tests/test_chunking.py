"""The Chinese sentence splitter and chunker: real sentences, and invariants checked by hypothesis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.ingest.chunking import ChunkerSettings, chunk_range, chunk_text, naive_chunks
from qa.ingest.clean import clean_text
from qa.ingest.loaders import load_file
from qa.ingest.structure import find_sections
from qa.text.sentences import sentence_spans, split_sentences

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parent.parent / "documents"


def test_real_sentences_keep_punctuation_and_closing_quotes() -> None:
    text = (
        "“政府工作报告提出，要高标准建设郑州国际陆港航空港片区，构建主城区与航空港区双核引领郑州国家中心城市建设空间格局，"
        "充分体现了省委省政府对航空港区建设发展的高度重视、极大关心和殷切期望，我们深感责任重大、使命光荣。”"
        "省人大代表田海涛说。"
    )
    parts = split_sentences(text)
    assert parts[-1] == "省人大代表田海涛说。"
    assert parts[-2].endswith("使命光荣。”")


def test_no_split_inside_short_quotes_or_brackets() -> None:
    text = "把牢“一个方向”。即：贯彻落实三大国家战略；加快建设（含“两化五强”。目标）。下一句？对！"
    parts = split_sentences(text)
    assert parts == [
        "把牢“一个方向”。",
        "即：贯彻落实三大国家战略；",
        "加快建设（含“两化五强”。目标）。",
        "下一句？",
        "对！",
    ]


def test_runs_of_enders_stay_together() -> None:
    assert split_sentences("省两会正在进行中……政府工作报告提到。真的吗？！是的。") == [
        "省两会正在进行中……",
        "政府工作报告提到。",
        "真的吗？！",
        "是的。",
    ]


def test_chunks_of_real_report_fit_and_stay_in_sections() -> None:
    clean = clean_text(load_file(DOCS / "2024-zhengzhou-government-work-report.txt").text).text
    sections = find_sections(clean)
    s = ChunkerSettings()
    chunks = chunk_text(clean, sections, s)
    assert len(chunks) > 50
    for ch in chunks:
        assert len(ch.text) <= s.max_chars
        assert clean[ch.start : ch.end] == ch.text
        sec = next(x for x in sections if x.start <= ch.start < x.end)
        assert ch.end <= sec.end, "a chunk crosses a section boundary"
        assert ch.path == sec.path


def test_naive_chunks_point_into_raw_text() -> None:
    raw = load_file(DOCS / "2020-zhengzhou-government-work-report.txt").text
    chunks = naive_chunks(raw, ChunkerSettings())
    assert chunks and all(raw[c.start : c.end] == c.text for c in chunks)


def test_fingerprint_changes_with_settings() -> None:
    assert ChunkerSettings().fingerprint() == ChunkerSettings().fingerprint()
    assert ChunkerSettings(max_chars=200).fingerprint() != ChunkerSettings().fingerprint()


# ---- property tests -------------------------------------------------------------------------

_ALPHABET = (
    list("郑州市政府工作报告经济发展创新高质量")
    + list("0123456789.%")
    + list("。！？；…，、：")
    + list("“”《》（）「」【】")
    + ["\n", " ", "a", "b"]
)
texts = st.lists(st.sampled_from(_ALPHABET), min_size=0, max_size=400).map("".join)
_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")


@settings(max_examples=300, deadline=None)
@given(texts)
def test_sentences_concatenate_back(text: str) -> None:
    assert "".join(split_sentences(text)) == text
    assert all(split_sentences(text))


@settings(max_examples=300, deadline=None)
@given(texts)
def test_no_sentence_boundary_inside_a_number(text: str) -> None:
    bounds = {b for _, b in sentence_spans(text)}
    for m in _NUMBER.finditer(text):
        assert not any(m.start() < k < m.end() for k in bounds), (text, m.group())


def _pieces(text: str) -> list[tuple[int, int]]:
    out = []
    for a, b in sentence_spans(text):
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out


@settings(max_examples=300, deadline=None)
@given(texts, st.integers(min_value=8, max_value=120), st.integers(min_value=0, max_value=2))
def test_chunks_fit_cover_and_overlap_in_whole_sentences(text: str, max_chars: int, overlap: int) -> None:
    s = ChunkerSettings(max_chars=max_chars, overlap_sentences=overlap, min_chars=0)
    chunks = chunk_range(text, 0, len(text), s)
    starts = {a for a, _ in _pieces(text)}
    covered = bytearray(len(text))
    for a, b in chunks:
        piece = text[a:b]
        # never longer than max_chars unless the piece is one unsplittable token (a long number/word)
        if b - a > max_chars:
            assert re.fullmatch(r"[0-9A-Za-z.%]+", piece), piece
        # never cut inside a number
        for m in _NUMBER.finditer(text):
            assert not (m.start() < a < m.end()) and not (m.start() < b < m.end()), (piece, m.group())
        covered[a:b] = b"\x01" * (b - a)
    for a, b in zip(chunks, chunks[1:], strict=False):
        if b[0] < a[1]:  # overlapping: the overlap starts at a sentence start
            assert b[0] in starts
    # every non-space character is in some chunk
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))


@settings(max_examples=100, deadline=None)
@given(st.lists(texts, min_size=1, max_size=4))
def test_chunk_text_never_crosses_sections(parts: list[str]) -> None:
    from qa.ingest.structure import Section

    text = "".join(parts)
    sections, pos = [], 0
    for i, p in enumerate(parts):
        sections.append(Section(pos, pos + len(p), [f"第{i + 1}章"]))
        pos += len(p)
    for ch in chunk_text(text, sections, ChunkerSettings(max_chars=50, min_chars=0)):
        sec = next(s for s in sections if s.start <= ch.start < s.end)
        assert ch.end <= sec.end and ch.path == sec.path
