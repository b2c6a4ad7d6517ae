"""From files to passages: loaders, encodings, broken files, spans and the headless-text check."""

from __future__ import annotations

import codecs
import functools
import os
import shutil
from pathlib import Path

import pytest
from helpers import minimal_pdf

from qa.errors import DocumentError
from qa.ingest import CorpusResult, load_corpus, process_document
from qa.ingest.catalog import load_catalog
from qa.ingest.chunking import ChunkerSettings
from qa.ingest.clean import normalize_for_source_check as normalize_for_match
from qa.ingest.loaders import load_file
from qa.ingest.report import corpus_report, dump_passages_jsonl

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parent.parent / "documents"
R2020 = DOCS / "2020-zhengzhou-government-work-report.txt"
R2024 = DOCS / "2024-zhengzhou-government-work-report.txt"
S = ChunkerSettings()


@functools.cache
def corpus() -> CorpusResult:
    """The five reports, processed once per test session."""
    return load_corpus(DOCS, S)


def test_five_reports_load_and_corpus_md_is_not_a_document() -> None:
    result = corpus()
    assert not result.errors
    assert sorted(d.info.file for d in result.docs) == sorted(p.name for p in DOCS.glob("*.txt"))
    assert all(not d.info.guessed for d in result.docs)


def test_headless_text_check_every_passage_is_in_its_cited_lines() -> None:
    """The cited line range, whitespace removed, contains the passage text (modulo normalisation)."""
    checked = 0
    for doc in corpus().docs:
        lines = doc.original_text.split("\n")
        for p in doc.passages:
            first, last = p.span.start_line, p.span.end_line
            assert 1 <= first <= last <= len(lines)
            # lines the cleaner drops as noise (page numbers, watermarks) may sit inside the range
            cited = "".join(lines[i - 1] for i in range(first, last + 1) if i not in doc.clean.dropped)
            assert normalize_for_match(p.text) in normalize_for_match(cited), (
                p.doc,
                p.span.label(),
                p.text[:60],
            )
            checked += 1
    assert checked > 500


def test_character_span_matches_passage_text() -> None:
    for doc in corpus().docs:
        for p in doc.passages:
            source = doc.original_text[p.span.start_char : p.span.end_char]
            assert normalize_for_match(p.text) in normalize_for_match(source) or doc.clean.dropped
            assert normalize_for_match(source).startswith(normalize_for_match(p.text)[:1])


def test_passages_carry_metadata_and_never_cross_sections() -> None:
    for doc in corpus().docs:
        assert len({p.id for p in doc.passages}) == len(doc.passages)
        for p in doc.passages:
            assert p.doc == doc.info.file and p.title == doc.info.title and p.year == doc.info.year
            assert len(p.text) <= S.max_chars
            if p.section:
                assert p.embed_text.endswith(p.text) and p.section[-1] in p.embed_text
            # a heading of another section never appears as its own line inside the passage
            for line in p.text.split("\n")[1:]:
                from qa.ingest.structure import heading_rank

                assert heading_rank(line.strip()) is None or heading_rank(line.strip()) == 8, (p.id, line)


def test_known_passage_path_and_citation() -> None:
    doc = next(d for d in corpus().docs if d.info.file == "2021-zhengzhou-14th-five-year-plan-outline.txt")
    hits = [
        p
        for p in doc.passages
        if "航空大都市" in p.text
        and p.section
        and p.section[-1] == "第一节 打造郑州航空港区全省链接双循环的先导平台"
    ]
    assert hits
    cite = hits[0].citation()
    assert cite.startswith("郑州市国民经济和社会发展第十四个五年规划")
    assert "第三篇 畅通内外循环、打造内陆高水平开放新高地 > 第九章 建设高水平开放平台" in cite
    assert "行" in cite


def test_passage_ids_stable_when_other_documents_change(tmp_path: Path) -> None:
    shutil.copy(R2024, tmp_path)
    alone = load_corpus(tmp_path, S).docs[0]
    in_corpus = next(d for d in corpus().docs if d.info.file == R2024.name)
    assert [p.id for p in alone.passages] == [p.id for p in in_corpus.passages]
    assert alone.sha256 == in_corpus.sha256


@pytest.mark.parametrize(
    "encoding,bom",
    [("gb18030", b""), ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE), ("gbk", b"")],
)
def test_other_encodings_yield_the_same_passages(tmp_path: Path, encoding: str, bom: bytes) -> None:
    text = R2024.read_text(encoding="utf-8")
    # GBK has no "Ⅱ"-free guarantee; the report only uses characters GBK covers
    (tmp_path / R2024.name).write_bytes(bom + text.encode(encoding))
    info = load_catalog(DOCS)[R2024.name]
    got = process_document(tmp_path / R2024.name, info, S)
    want = next(d for d in corpus().docs if d.info.file == R2024.name)
    assert [(p.text, p.section, p.span) for p in got.passages] == [
        (p.text, p.section, p.span) for p in want.passages
    ]


def test_broken_files_are_skipped_with_a_message(tmp_path: Path) -> None:
    shutil.copy(R2020, tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "garbage.txt").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "notes.xyz").write_text("不是文档", encoding="utf-8")  # unsupported suffix: not considered
    messages: list[str] = []
    result = load_corpus(tmp_path, S, progress=messages.append)
    assert [d.info.file for d in result.docs] == [R2020.name]
    errors = {e.path: e.reason for e in result.errors}
    assert set(errors) == {"empty.txt", "garbage.txt", "broken.pdf", "broken.docx"}
    assert "empty" in errors["empty.txt"]
    assert "binary" in errors["garbage.txt"]
    assert "PDF" in errors["broken.pdf"]
    assert "docx" in errors["broken.docx"]
    assert "notes.xyz" not in messages and R2020.name in messages
    report = corpus_report(result)
    assert report["documents"] == 1 and len(report["errors"]) == 4


def test_unsupported_suffix_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "table.xlsx"
    f.write_bytes(b"PK")
    with pytest.raises(DocumentError, match="unsupported file type '.xlsx'"):
        load_file(f)


def test_pdf_loader_keeps_page_numbers_in_spans(tmp_path: Path) -> None:
    page1 = [
        "Zhengzhou Government Work Report 2024",
        "GDP grew by 7.4 percent and exceeded 1.36 trillion yuan.",
    ]
    page2 = [
        "Page two talks about the second part of the report.",
        "Investment in fixed assets grew 6.8 percent.",
    ]
    f = tmp_path / "report.pdf"
    f.write_bytes(minimal_pdf([page1, page2]))
    raw = load_file(f)
    assert raw.pages is not None and [n for _, n in raw.pages] == [1, 2]
    doc = process_document(f, None, ChunkerSettings(max_chars=60, min_chars=10))
    by_page = {p.span.page_start for p in doc.passages}
    assert by_page == {1, 2}
    second = [p for p in doc.passages if "6.8 percent" in p.text]
    assert second and second[0].span.page_start == 2 and "第2页" in second[0].citation()


def test_pdf_without_text_layer_needs_ocr(tmp_path: Path) -> None:
    f = tmp_path / "scan.pdf"
    f.write_bytes(minimal_pdf([[], []]))
    with pytest.raises(DocumentError, match="OCR"):
        load_file(f)


def test_docx_loader_with_real_paragraphs(tmp_path: Path) -> None:
    import docx

    paragraphs = [
        p
        for p in R2024.read_text(encoding="utf-8").split("\n")
        if p.startswith(("一、2023年工作回顾", "（一）着力扩大需求", "项目建设支撑有力", "消费市场提质扩容"))
    ]
    assert len(paragraphs) == 4
    d = docx.Document()
    d.add_heading("2024年郑州市政府工作报告", level=1)
    for p in paragraphs:
        d.add_paragraph(p)
    f = tmp_path / "report.docx"
    d.save(str(f))
    doc = process_document(f, None, S)
    assert doc.info.guessed and doc.info.year == 2024
    assert doc.info.title == "2024年郑州市政府工作报告"
    want = ["2024年郑州市政府工作报告", "一、2023年工作回顾", "（一）着力扩大需求，经济发展提质提速"]
    assert any(p.section == want for p in doc.passages)
    assert any("选报项目455个、总投资5549.8亿元" in p.text for p in doc.passages)


def test_html_loader_drops_script_and_style(tmp_path: Path) -> None:
    body = "".join(f"<p>{line}</p>" for line in R2020.read_text(encoding="utf-8").split("\n")[:30])
    html = "<html><head><style>p{color:red}</style><script>var x = '脚本';</script></head>"
    html += f"<body><h1>2020年郑州市政府工作报告（节选）</h1>{body}</body></html>"
    f = tmp_path / "page.html"
    f.write_text(html, encoding="utf-8")
    doc = process_document(f, None, S)
    text = "".join(p.text for p in doc.passages)
    assert "脚本" not in text and "color" not in text
    assert "新增省级制造业创新中心4家。" in text
    assert doc.passages[0].section[0] == "2020年郑州市政府工作报告（节选）"


def test_naive_chunker_baseline_gives_cited_passages() -> None:
    doc = process_document(R2020, None, S, chunker="naive")
    assert doc.passages
    for p in doc.passages:
        assert doc.original_text[p.span.start_char : p.span.end_char] == p.text
        assert p.span.start_line <= p.span.end_line


def test_dump_jsonl(tmp_path: Path) -> None:
    import json

    out = tmp_path / "passages.jsonl"
    n = dump_passages_jsonl(corpus(), out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert n == len(rows) == len(corpus().passages)
    assert rows[0]["citation"] and rows[0]["span"]["start_line"] >= 1


@pytest.mark.skipif(os.environ.get("QA_SKIP_SLOW") == "1", reason="slow")
def test_report_summary_figures() -> None:
    rep = corpus_report(corpus())
    assert rep["documents"] == 5 and rep["passages"] > 400
    assert rep["length"]["max"] <= S.max_chars
