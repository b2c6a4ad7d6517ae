"""Bad input, each with a test: odd questions (through Retriever.ask and the HTTP API), odd documents
in the folder (each reported by name with its reason, the rest indexed), odd uploads (size, type, names,
duplicates) through Retriever.add_upload and POST /api/documents.

The table in docs/reliability.md lists what each input got.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import DOCUMENTS, R2024, REPO, BuiltIndex, minimal_pdf, new_marker, real_excerpt

from qa.errors import QAError
from qa.index.builder import update_index
from qa.index.store import IndexStore
from qa.search.retriever import Retriever
from qa.serve.api import create_api

pytestmark = pytest.mark.integration

GDP = "2023年郑州市地区生产总值是多少？"
LOCAL = "http://127.0.0.1:7860"  # the Host a loopback server answers to (testserver would be refused)


@pytest.fixture(scope="module")
def retriever(built_index: BuiltIndex, real_encoder: Any) -> Retriever:
    """A retriever over the session index, sharing the loaded model."""
    r = Retriever.open(
        built_index.index, built_index.settings, documents_dir=built_index.documents, encoder=real_encoder
    )
    return r


@pytest.fixture(scope="module")
def http(retriever: Retriever) -> Iterator[TestClient]:
    """The real FastAPI app in-process; a server error comes back as a 500, never as an exception."""
    with TestClient(create_api(lambda: retriever), base_url=LOCAL, raise_server_exceptions=False) as c:
        yield c


def one_sentence(message: str) -> None:
    """What a user-caused error looks like: one short line, no traceback."""
    assert message and "\n" not in message and "Traceback" not in message, message
    assert len(message) < 300, message


# ---- questions ------------------------------------------------------------------------------------

QUESTIONS: dict[str, str] = {
    "one character": "郑",
    "10,000 characters": "2023年郑州市地区生产总值是多少" * 667,
    "only punctuation": "？！。，、…——",
    "only emoji": "😀🎉🚀",
    "English": "What was Zhengzhou's GDP in 2023?",
    "traditional": "2023年鄭州市地區生產總值是多少？",
    "full-width digits": "２０２３年郑州市地区生产总值是多少？",
    "HTML": '<img src=x onerror="alert(1)"><b>2023年</b>GDP',
    "script": "<script>alert('x')</script>2023年郑州GDP是多少？",
    "Markdown": "**2023年** [GDP](javascript:alert(1)) `是多少`",
    "control characters": "2023\x00年郑州\x07地区生产总值\x1b是多少\x7f？",
    "lone surrogate": "2023年\ud800郑州地区生产总值\udfff是多少？",
    "zero-width and BOM": "\ufeff2023年\u200b郑州地区生产总值\u200d是多少？",
    "SQL-ish": "2023年GDP'; DROP TABLE passages; --",
    "path-ish": "../../etc/passwd",
    "only spaces of other kinds": "2023年\u3000\u00a0\t郑州GDP",
}


@pytest.mark.parametrize("name", list(QUESTIONS))
def test_odd_questions_get_an_answer_object(retriever: Retriever, name: str) -> None:
    """Every odd question gets a well-formed Answer (an answer line or an abstention), never an exception."""
    q = QUESTIONS[name]
    ans = retriever.ask(q, k=5)
    assert ans.text.strip(), name
    assert ans.query.text and len(ans.query.text) <= retriever.settings.max_question_chars
    assert not any(ord(c) < 0x20 and c not in "\t\n" for c in ans.query.text)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in ans.query.text)
    json.dumps(ans.to_dict()["query"], ensure_ascii=False).encode("utf-8")  # serialisable as UTF-8
    for h in ans.hits:
        assert h.passage.text


def test_long_question_is_cut_with_a_notice(retriever: Retriever) -> None:
    ans = retriever.ask(QUESTIONS["10,000 characters"])
    assert len(QUESTIONS["10,000 characters"]) > 10_000
    assert len(ans.query.text) == retriever.settings.max_question_chars
    assert any("问题过长" in n for n in ans.query.notes), ans.query.notes


@pytest.mark.parametrize("name", ["only punctuation", "only emoji"])
def test_questions_without_words_get_a_hint(retriever: Retriever, name: str) -> None:
    ans = retriever.ask(QUESTIONS[name])
    assert ans.abstained and not ans.hits
    assert "请用文字提问" in ans.text


@pytest.mark.parametrize("name", ["traditional", "full-width digits", "control characters", "lone surrogate"])
def test_variants_are_read_like_the_plain_question(retriever: Retriever, name: str) -> None:
    """Traditional characters, full-width digits and stray control characters do not change the reading."""
    plain = retriever.ask(GDP)
    odd = retriever.ask(QUESTIONS[name])
    assert odd.query.years == plain.query.years == [2023]
    assert odd.query.docs == plain.query.docs
    assert odd.hits[0].passage.doc == R2024
    assert odd.hits[0].passage.id == plain.hits[0].passage.id


def test_english_question_reads_the_year(retriever: Retriever) -> None:
    ans = retriever.ask(QUESTIONS["English"])
    assert ans.query.years == [2023]
    # cross-lingual matching is weak; what matters here is a well-formed reply that says where it looked
    assert ans.hits and (ans.abstained or "[1]" in ans.text)
    assert any("2023" in n for n in ans.query.notes), ans.query.notes


@pytest.mark.parametrize("blank", ["", "   ", "\n\t\u3000", "\x00\x01\x02", "\u200b\ufeff"])
def test_blank_questions_are_one_sentence(retriever: Retriever, http: TestClient, blank: str) -> None:
    with pytest.raises(QAError) as exc:
        retriever.ask(blank)
    one_sentence(str(exc.value))
    for path in ("/api/ask", "/api/search"):
        r = http.post(path, json={"question": blank})
        assert r.status_code == 400, r.text
        one_sentence(r.json()["error"])


@pytest.mark.parametrize("name", list(QUESTIONS))
@pytest.mark.parametrize("path", ["/api/ask", "/api/search"])
def test_odd_questions_over_http(http: TestClient, name: str, path: str) -> None:
    """The same questions over HTTP: 200 with JSON, or a 4xx with one sentence; never a 500.

    Markup comes back as data inside JSON (application/json), never as a page a browser would run.
    """
    body = json.dumps({"question": QUESTIONS[name], "k": 3}, ensure_ascii=True)  # \\ud800 as JSON escapes
    r = http.post(path, content=body.encode("ascii"), headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/json")
    data = r.json()
    if r.status_code >= 400:
        one_sentence(data["error"])
        return
    if path == "/api/ask":
        assert data["text"]
        assert "\x00" not in data["query"]["text"]
    else:
        assert isinstance(data["hits"], list)
    if name in ("script", "HTML"):
        assert "<" in data["question"], "markup is returned verbatim as data"


def test_raw_json_surrogate_and_control_escapes(http: TestClient) -> None:
    """A JSON "\\ud800" or "\\u0000" in the body: a clear 4xx or an answer, never a 500."""
    for raw in (
        b'{"question": "\\ud800"}',
        b'{"question": "2023\\ud800\\udc00"}',
        b'{"question": "\\u0000"}',
    ):
        r = http.post("/api/ask", content=raw, headers={"content-type": "application/json"})
        assert r.status_code in (200, 400, 422), (raw, r.status_code, r.text)
        if r.status_code != 200:
            one_sentence(r.json()["error"])
    r = http.post("/api/ask", content=b"\xff\xfe{", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["error"]


def test_history_with_odd_entries(http: TestClient, retriever: Retriever) -> None:
    """Odd follow-up history (blank, markup, control characters, very long) is tolerated."""
    history = ["", "   ", "<script>x</script>", "2023\x00年GDP是多少？", "郑州" * 3000]
    ans = retriever.ask("那2024年呢？", history=history)
    assert ans.text
    r = http.post("/api/ask", json={"question": "那2024年呢？", "history": history})
    assert r.status_code == 200, r.text


# ---- documents in the folder ------------------------------------------------------------------------


def _gb18030_and_utf16(marker_a: str, marker_b: str) -> tuple[bytes, bytes]:
    a = real_excerpt(marker_a, paragraphs=2, start=20).encode("gb18030")
    b = codecs.BOM_UTF16_LE + real_excerpt(marker_b, paragraphs=2, start=30).encode("utf-16-le")
    return a, b


def test_odd_documents_are_reported_by_name_and_the_rest_indexed(
    private_index: BuiltIndex, real_encoder: Any
) -> None:
    docs, idx = private_index.documents, private_index.index
    gb_marker, u16_marker, sp_marker = new_marker(), new_marker(), new_marker()
    gb, u16 = _gb18030_and_utf16(gb_marker, u16_marker)
    bad = {
        "empty.txt": b"",
        "blank lines only.txt": b"\n\n  \r\n\t\n",
        "binary-named.txt": b"\x89PNG\r\n\x1a\n" + os.urandom(4000),
        "elf-named.txt": b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 16,
        "scan.pdf": minimal_pdf([[], []]),
        "corrupt.pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage \x00\xff",
        "truncated.pdf": minimal_pdf([["Zhengzhou GDP"]])[:120],
        "corrupt.docx": b"PK\x03\x04\x14\x00garbage that is not a zip",
        "not-a-docx.docx": "只是一段文字".encode(),
    }
    good = {
        "gb18030 报告 摘编.txt": gb,
        "utf16-摘编.txt": u16,
        "名字 有 空格（郑州）.txt": real_excerpt(sp_marker, paragraphs=2, start=50).encode("utf-8"),
    }
    for name, data in {**bad, **good}.items():
        (docs / name).write_bytes(data)
    progress: list[tuple[str, float | None]] = []
    report = update_index(
        docs, idx, private_index.settings, encoder=real_encoder, progress=lambda m, f: progress.append((m, f))
    )
    errors = {e.split(":")[0]: e for e in report.errors}
    assert set(errors) == set(bad), report.errors
    for e in report.errors:
        one_sentence(e)
    assert "empty" in errors["empty.txt"]
    assert "binary" in errors["binary-named.txt"] and "binary" in errors["elf-named.txt"]
    assert "OCR" in errors["scan.pdf"]
    assert "PDF" in errors["corrupt.pdf"] and "PDF" in errors["truncated.pdf"]
    assert "docx" in errors["corrupt.docx"] and "docx" in errors["not-a-docx.docx"]
    assert sorted(report.added) == sorted(good)
    store = IndexStore.open(idx)
    indexed = set(store.manifest.documents)
    assert set(good) <= indexed and not (set(bad) & indexed)
    assert {p.name for p in DOCUMENTS.glob("*.txt")} <= indexed  # the rest of the corpus is still there
    texts = {p.doc: p.text for p in store.passages}
    assert gb_marker in "".join(p.text for p in store.passages if p.doc == "gb18030 报告 摘编.txt")
    assert u16_marker in "".join(p.text for p in store.passages if p.doc == "utf16-摘编.txt")
    assert texts["名字 有 空格（郑州）.txt"]
    assert any(m.startswith("分段") for m, _ in progress)
    # the GB18030 document answers in its own (decoded) words, with a line citation
    r = Retriever.open(idx, private_index.settings, documents_dir=docs, encoder=real_encoder)
    hits = r.search(f"{gb_marker}", k=3)
    assert hits[0].passage.doc == "gb18030 报告 摘编.txt"
    assert "行" in hits[0].passage.citation()


# ---- uploads ----------------------------------------------------------------------------------------


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def upload_retriever(private_index: BuiltIndex, real_encoder: Any) -> Retriever:
    """A retriever on a private copy with a 1 MB upload limit."""
    settings = private_index.settings.with_(max_upload_mb=1)
    r = Retriever.open(
        private_index.index, settings, documents_dir=private_index.documents, encoder=real_encoder
    )
    return r


TRAVERSAL_NAMES = [
    "../evil.txt",
    "../../../../tmp/evil.txt",
    "..\\..\\evil.txt",
    "/etc/evil.txt",
    "C:\\Windows\\evil.txt",
    "sub/dir/evil.txt",
    "evil\x00.txt",
    "..",
    ".hidden.txt",
    "  spaced   name  .txt",
]


def test_upload_names_never_leave_the_documents_folder(upload_retriever: Retriever, tmp_path: Path) -> None:
    """Every hostile name lands (sanitised) inside documents/ or is refused; nothing else in the tree changes."""
    r = upload_retriever
    docs = r.documents_dir
    outside_before = _tree(tmp_path) - {str(p.relative_to(tmp_path)) for p in docs.rglob("*")}
    index_files = {str(p.relative_to(tmp_path)) for p in r.index_dir.rglob("*")}
    results: dict[str, Any] = {}
    for n, name in enumerate(TRAVERSAL_NAMES):
        text = f"上传测试{n}：郑州市紫藤湖观测站编号QX{7000 + n}，{new_marker()}。\n"
        rep = r.add_upload(name, text.encode("utf-8"))
        results[name] = rep
        for e in rep.errors:
            one_sentence(e)
        assert rep.added or rep.errors, name
    outside_after = _tree(tmp_path) - {str(p.relative_to(tmp_path)) for p in docs.rglob("*")}
    # only the index folder may change outside documents/
    assert {p for p in outside_after ^ outside_before if not p.startswith("index")} == set()
    assert not (tmp_path.parent / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()
    assert not list(docs.rglob("*/*")), "no sub-folders inside documents/"
    for name, rep in results.items():
        for added in rep.added:
            assert (
                "/" not in added and "\\" not in added and "\x00" not in added and not added.startswith(".")
            )
            assert (docs / added).resolve().parent == docs.resolve(), (name, added)
    assert results[".."].errors  # nothing left of the name
    assert index_files  # the index folder existed before


def test_upload_refusals(upload_retriever: Retriever) -> None:
    """Too large, wrong type, empty, duplicate content under another name: one sentence each, nothing written."""
    r = upload_retriever
    before = set(os.listdir(r.documents_dir))
    cases = {
        "big.txt": b"a" * (1024 * 1024 + 1),
        "tool.exe": b"MZ\x90\x00",
        "model.pkl": b"\x80\x04\x95cos\nsystem\n",
        "vectors.npy": b"\x93NUMPY",
        "noext": "郑州".encode(),
        "empty.txt": b"",
        "blank.md": b"  \n\n ",
        "copy-of-2024.txt": (r.documents_dir / R2024).read_bytes(),
    }
    for name, data in cases.items():
        rep = r.add_upload(name, data)
        assert rep.errors and not rep.added, name
        one_sentence(rep.errors[0])
    assert set(os.listdir(r.documents_dir)) == before
    assert "相同" in r.add_upload("copy-of-2024.txt", cases["copy-of-2024.txt"]).errors[0]


def test_unreadable_upload_is_removed_again(upload_retriever: Retriever) -> None:
    r = upload_retriever
    before = set(os.listdir(r.documents_dir))
    rep = r.add_upload("scan.pdf", minimal_pdf([[]]))
    assert rep.errors and "OCR" in rep.errors[0]
    assert set(os.listdir(r.documents_dir)) == before


def test_uploads_over_http_stay_inside(upload_retriever: Retriever, tmp_path: Path) -> None:
    """POST /api/documents with hostile names and types: 4xx with one sentence, or added inside documents/."""
    r = upload_retriever
    docs = r.documents_dir
    with TestClient(create_api(lambda: r), base_url=LOCAL, raise_server_exceptions=False) as c:
        for name, data, status in [
            ("../../escape.txt", f"穿越测试{new_marker()}：郑州紫藤湖。\n".encode(), 200),
            ("/abs/escape2.txt", f"穿越测试{new_marker()}：郑州紫藤湖。\n".encode(), 200),
            ("payload.pkl", b"\x80\x04.", 415),
            ("x.html.exe", b"MZ", 415),
            ("big.md", b"x" * (1024 * 1024 + 10), 413),
            ("garbage.txt", os.urandom(3000), 422),
        ]:
            resp = c.post("/api/documents", files={"file": (name, data, "application/octet-stream")})
            assert resp.status_code == status, (name, resp.status_code, resp.text)
            if status != 200:
                one_sentence(resp.json()["error"])
            else:
                (added,) = resp.json()["added"]
                assert (docs / added).resolve().parent == docs.resolve()
        # a multipart body without a file part is a 422, not a 500
        resp = c.post("/api/documents", data={"nofile": "x"})
        assert resp.status_code == 422 and resp.json()["error"]
    assert not (tmp_path / "escape.txt").exists() and not Path("/abs").exists()


# ---- a very large text file ---------------------------------------------------------------------------

NATIONAL = DOCUMENTS.parent / "corpora" / "national-government-work-reports-1954-1999.jsonl"


@pytest.mark.unit
def test_long_text_is_cleaned_in_blocks_with_a_sound_offset_map() -> None:
    """Texts above the block size are cleaned block by block; offsets stay monotonic and point at the source."""
    import numpy as np

    from qa.ingest import clean

    if NATIONAL.exists():
        text = "\n".join(
            json.loads(ln)["text"] for ln in NATIONAL.read_text(encoding="utf-8").splitlines() if ln
        )
    else:  # the five reports with their copies numbered, so no line repeats as a running header
        text = "\n".join(
            f"{n}{p.read_text(encoding='utf-8')}" for n in range(3) for p in sorted(DOCUMENTS.glob("*.txt"))
        )
    assert len(text) > 2 * clean._BLOCK_CHARS
    c = clean.clean_text(text)
    assert len(c.offsets) == len(c.text) + 1
    assert np.all(np.diff(c.offsets) >= 0) and c.offsets[0] >= 0 and c.offsets[-1] <= len(text)
    assert all(text[int(c.offsets[i])] == ch for i, ch in enumerate(c.text) if "\u4e00" <= ch <= "\u9fff")
    whole = clean._clean_block(text)
    # the same paragraphs as cleaning in one piece, up to lines the one-piece run took for running headers
    assert abs(len(c.text) - len(whole.text)) < 0.01 * len(whole.text)


_BIG = """
import sys, time
from pathlib import Path
from qa.ingest.chunking import ChunkerSettings
from qa.ingest import process_document
from qa.ingest.loaders import Limits, use_limits
t = time.perf_counter()
ticks = []
# 17 M characters: over the default max_text_chars, which this memory test lifts on purpose
with use_limits(Limits(text_chars=0)):
    doc = process_document(Path(sys.argv[1]), None, ChunkerSettings(), progress=ticks.append)
# VmHWM is this process image's own peak; ru_maxrss would carry over the forking parent's (the pytest
# process, GBs into a long session) across exec
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024
ok = all(a <= b for a, b in zip(ticks, ticks[1:])) and ticks[-1] >= 0.89
print(len(doc.passages), peak, round(time.perf_counter() - t, 1), len(ticks), ok)
"""


@pytest.mark.slow
@pytest.mark.unit
def test_50mb_text_file_is_processed_in_bounded_memory(tmp_path: Path) -> None:
    """A 50 MB text file loads, cleans (with progress) and chunks in a subprocess whose peak RSS is measured."""
    parts = [p.read_text(encoding="utf-8") for p in sorted(DOCUMENTS.glob("*.txt"))]
    big = tmp_path / "50mb 报告合集.txt"
    size = 0
    with big.open("w", encoding="utf-8") as f:
        n = 0
        while size < 50 * 1024 * 1024:
            chunk = f"\n第{n}份合集。\n" + parts[n % len(parts)]
            f.write(chunk)
            size += len(chunk.encode("utf-8"))
            n += 1
    res = subprocess.run(
        [sys.executable, "-c", _BIG, str(big)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    passages, peak, seconds, ticks, rising = res.stdout.split()
    print(
        f"\n50 MB text: {passages} passages, peak RSS {int(peak) / 2**20:.0f} MB, {seconds} s, {ticks} progress calls"
    )
    assert int(passages) > 10_000
    assert int(ticks) > 50 and rising == "True", "progress is reported block by block, rising to the end"
    # one piece needed 2.8 GB (55x the file); in blocks the result dominates: well under 1.5 GB
    assert int(peak) < 1.5 * 2**30


def test_upload_named_like_an_ignored_file_is_not_left_behind(upload_retriever: Retriever) -> None:
    r = upload_retriever
    before = set(os.listdir(r.documents_dir))
    rep = r.add_upload("README.md", f"郑州市紫藤湖观测站说明（{new_marker()}）。\n".encode())
    assert rep.added or rep.errors, "the upload must say what happened"
    if not rep.added:
        assert set(os.listdir(r.documents_dir)) == before
