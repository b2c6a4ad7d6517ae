"""Changing the corpus safely (issue 16): uploads are staged, indexed and only then committed into
documents/ with the new index version; a kill -9 leaves nothing in documents/ and its staging is cleaned at
the next start; a read-only index refuses changes with one sentence and still serves; every change is in
the audit log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import DOCUMENTS, R2024, REPO, BuiltIndex, minimal_pdf, new_marker, real_excerpt

from qa.errors import IndexProblem
from qa.index.store import IndexStore
from qa.ingest.uploads import STAGING, clean_stale_staging, read_audit
from qa.search.retriever import Retriever
from qa.serve.api import open_for_serving

pytestmark = pytest.mark.integration


def _files(docs: Path) -> set[str]:
    return {p.name for p in docs.iterdir()}


def test_an_upload_is_indexed_from_staging_and_committed_with_the_new_version(
    private_index: BuiltIndex, real_encoder: Any
) -> None:
    """While the upload is chunked and embedded it is only in documents/.staging; after, it is in documents/,
    the live version holds it, staging is gone, and the audit log names it with its hash."""
    b = private_index
    r = Retriever.open(b.index, b.settings, documents_dir=b.documents, encoder=real_encoder)
    marker = new_marker()
    data = real_excerpt(marker, paragraphs=3).encode()
    seen: list[tuple[bool, bool]] = []

    def progress(message: str, _fraction: float | None) -> None:
        staged = list((b.documents / STAGING).rglob("staged-report.txt"))
        seen.append((bool(staged), (b.documents / "staged-report.txt").exists()))

    report = r.add_upload("staged-report.txt", data, progress=progress, actor="tester", client="127.0.0.1")
    assert report.added == ["staged-report.txt"], report
    assert seen and all(staged and not committed for staged, committed in seen), seen
    assert (b.documents / "staged-report.txt").read_bytes() == data
    assert not (b.documents / STAGING).exists()
    assert "staged-report.txt" in IndexStore.open(b.index).manifest.documents
    (entry,) = [e for e in read_audit(b.index) if e["file"] == "staged-report.txt"]
    assert entry["action"] == "add" and entry["actor"] == "tester" and entry["client"] == "127.0.0.1"
    assert entry["sha256"] == __import__("hashlib").sha256(data).hexdigest()


def test_an_upload_that_cannot_be_indexed_never_enters_documents(
    private_index: BuiltIndex, real_encoder: Any
) -> None:
    b = private_index
    r = Retriever.open(b.index, b.settings, documents_dir=b.documents, encoder=real_encoder)
    before = _files(b.documents)
    version = IndexStore.open(b.index).path
    for name, data in [("scan.pdf", minimal_pdf([[]])), ("noise.txt", os.urandom(3000))]:
        rep = r.add_upload(name, data)
        assert rep.errors and not rep.added, rep
    assert _files(b.documents) == before
    assert IndexStore.open(b.index).path == version, "no new version for a refused upload"
    assert read_audit(b.index) == []


def test_repeated_single_block_document_yields_passages(private_index: BuiltIndex, real_encoder: Any) -> None:
    """Odds and ends: a short document whose only block is pasted three times used to give no passages."""
    b = private_index
    r = Retriever.open(b.index, b.settings, documents_dir=b.documents, encoder=real_encoder)
    block = f"郑州市在金水河上新建的星河步行桥全长3217米（{new_marker()}）。"
    rep = r.add_upload("repeated.txt", "\n\n".join([block] * 3).encode())
    assert rep.added == ["repeated.txt"], rep.errors


_KILLED_UPLOAD = """
import sys
from pathlib import Path
from qa.config import Settings
from qa.search.retriever import Retriever
r = Retriever.open(sys.argv[1], Settings(cache_dir=sys.argv[3]), documents_dir=sys.argv[2])
def progress(message, fraction):
    if message.startswith("嵌入段落"):
        print("EMBEDDING", flush=True)
r.add_upload("killed-upload.txt", Path(sys.argv[4]).read_bytes(), progress=progress)
print("FINISHED", flush=True)
"""


def test_kill_9_during_an_upload_leaves_nothing_behind(private_index: BuiltIndex, tmp_path: Path) -> None:
    """Attack 3: an upload killed with SIGKILL while it is embedded leaves no file in documents/; the next
    start removes its staging and does not read it (before, the leftover was re-read at every start and every
    later upload)."""
    b = private_index
    marker = new_marker()
    doc = tmp_path / "big.txt"
    doc.write_text(
        "\n\n".join(real_excerpt(f"{marker}{n}", paragraphs=8, start=20 + n) for n in range(12)),
        encoding="utf-8",
    )
    before = _files(b.documents)
    version = IndexStore.open(b.index).path
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLED_UPLOAD,
            str(b.index),
            str(b.documents),
            b.settings.cache_dir,
            str(doc),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 300
        line = ""
        while time.monotonic() < deadline and "EMBEDDING" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "the upload ended before it was embedded"
        assert "EMBEDDING" in line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _files(b.documents) - {STAGING} == before, (
        "nothing but the staging folder may be left in documents/"
    )
    assert list((b.documents / STAGING).rglob("killed-upload.txt")), "the killed upload's staging copy"
    assert IndexStore.open(b.index).path == version
    messages: list[str] = []
    settings = b.settings.with_(documents_dir=str(b.documents), index_dir=str(b.index))
    r = open_for_serving(settings, lambda m, _f: messages.append(m))
    assert not (b.documents / STAGING).exists(), "stale staging is cleaned at start"
    assert any("killed-upload.txt" in m for m in messages), messages
    assert "killed-upload.txt" not in r.store.manifest.documents
    assert _files(b.documents) == before
    rep = r.update()
    assert not rep.errors and not rep.changed  # the leftover is never read again
    hits = r.search(f"{marker}3", k=3)
    assert all(marker not in h.passage.text for h in hits)


def test_clean_stale_staging_spares_live_processes(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    (docs / STAGING / f"{os.getpid()}-live").mkdir(parents=True)
    dead = docs / STAGING / "999999999-dead"
    dead.mkdir()
    (dead / "x.txt").write_text("x")
    (docs / ".upload-old.txt").write_text("half written")
    removed = clean_stale_staging(docs)
    assert not dead.exists() and (docs / STAGING / f"{os.getpid()}-live").exists()
    assert not (docs / ".upload-old.txt").exists()
    assert any("x.txt" in r for r in removed)


def _bind_read_only(path: Path) -> bool:
    """Make `path` a read-only bind mount of itself (root only); False when that is not possible."""
    if subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode != 0:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(path)], check=False)
        return False
    return True


def test_read_only_index_refuses_changes_in_one_sentence_and_still_serves(
    private_index: BuiltIndex, real_encoder: Any
) -> None:
    """Attack 7: with the index folder read-only, an upload is refused with one sentence (HTTP 503, no
    traceback) and leaves nothing behind; a start with changed documents serves the old index with a warning."""
    from fastapi.testclient import TestClient

    from qa.serve.api import create_api

    b = private_index
    r = Retriever.open(b.index, b.settings, documents_dir=b.documents, encoder=real_encoder)
    if not _bind_read_only(b.index):
        pytest.skip("a read-only bind mount needs root")
    try:
        with pytest.raises(OSError):
            (b.index / "probe").write_text("x")
        before = _files(b.documents)
        with pytest.raises(IndexProblem) as exc:
            r.add_upload("ro.txt", real_excerpt(new_marker(), paragraphs=2).encode())
        message = str(exc.value)
        assert "\n" not in message and "Traceback" not in message and "writable" in message, message
        assert _files(b.documents) == before
        settings = b.settings.with_(
            documents_dir=str(b.documents), index_dir=str(b.index), rate_limit_per_minute=0
        )
        with TestClient(create_api(lambda: r, settings), base_url="http://127.0.0.1") as c:
            resp = c.post(
                "/api/documents", files={"file": ("ro2.txt", real_excerpt(new_marker(), 2).encode())}
            )
            assert resp.status_code == 503 and "writable" in resp.json()["error"], resp.text
            assert c.post("/api/ask", json={"question": "2023年郑州GDP是多少？"}).status_code == 200
        assert _files(b.documents) == before
        # documents changed while the index cannot be written: the server starts on the old version
        (b.documents / "new-while-read-only.txt").write_text(real_excerpt(new_marker(), 2), encoding="utf-8")
        messages: list[str] = []
        served = open_for_serving(settings, lambda m, _f: messages.append(m))
        assert any("WARNING" in m and "index" in m for m in messages), messages
        assert served.search("2023年郑州GDP是多少？", k=1)[0].passage.doc == R2024
    finally:
        import gc

        gc.collect()  # the retrievers memory-map vectors.npy; a lazy unmount copes with the rest
        subprocess.run(["umount", "-l", str(b.index)], check=False)


def test_delete_and_reindex_are_recorded(private_index: BuiltIndex, real_encoder: Any) -> None:
    b = private_index
    r = Retriever.open(b.index, b.settings, documents_dir=b.documents, encoder=real_encoder)
    name = sorted(p.name for p in DOCUMENTS.glob("*.txt"))[0]
    rep = r.update(remove=[name], actor="admin (token)", via="api", client="127.0.0.1")
    assert rep.removed == [name] and not (b.documents / name).exists()
    (b.documents / "by-hand.txt").write_text(real_excerpt(new_marker(), 2), encoding="utf-8")
    r.update(actor="admin (token)", via="api reindex")
    log = [(e["action"], e["file"], e["via"]) for e in read_audit(b.index)]
    assert log == [("remove", name, "api"), ("add", "by-hand.txt", "api reindex")], log
    with pytest.raises(Exception, match="没有名为"):
        r.update(remove=["../../etc/passwd"])
