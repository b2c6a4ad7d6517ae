"""Curating a corpus on both backends: a removed document's passages never come back in any answer.

Removal goes through `Retriever.remove_document`, `qa remove` and `DELETE /api/kb/{kb}/documents/{name}`
(which needs the write token when one is configured: qa.serve.security.Access).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import R2024, new_marker, real_excerpt
from store_fixtures import STORES, Corpus, built_corpus, release_milvus, require_milvus
from typer.testing import CliRunner

from qa.cli import app as cli_app
from qa.config import Settings
from qa.errors import QAError
from qa.index.factory import open_store
from qa.search.retriever import Retriever
from qa.serve.api import create_api
from qa.serve.process import free_port
from qa.serve.security import Access

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-0123456789"  # qa.serve.security asks for 16 characters or more

GDP = "2023年郑州市地区生产总值是多少？"
# questions the 2024 report answers (its own wording), asked after it is removed
ABOUT_2024 = [
    GDP,
    "2023年郑州规上工业增加值增长多少？",
    "2024年郑州计划新增城镇就业多少人？",
    "2024年郑州市政府工作报告的主要目标是什么？",
    "郑州2023年进出口总额是多少？",
    "2024年郑州要建设哪些国家级平台？",
]


@pytest.fixture(params=STORES)
def corpus(
    request: pytest.FixtureRequest, tmp_path: Path, session_settings: Settings, real_encoder: Any
) -> Iterator[Corpus]:
    """documents/ indexed on one backend (each test runs on both)."""
    if request.param == "milvus":
        require_milvus()
    with built_corpus(tmp_path, session_settings, real_encoder, request.param) as c:
        yield c


def _never_from(r: Retriever, doc: str, questions: list[str]) -> None:
    for q in questions:
        for rerank in (True, False):
            ans = r.ask(q, k=10, rerank=rerank)
            assert all(h.passage.doc != doc for h in ans.hits), (q, [h.passage.doc for h in ans.hits])
            assert all(c.doc != doc for c in r.candidates(q, k=50))
        with pytest.raises(QAError, match="没有这个文件"):  # nor can a filter name it
            r.search(q, k=10, filters={"doc": [doc]})


def test_a_removed_document_never_comes_back(corpus: Corpus, real_encoder: Any) -> None:
    c = corpus
    r = Retriever.open(c.index, c.settings, documents_dir=c.documents, encoder=real_encoder)
    assert r.ask(GDP, k=3).hits[0].passage.doc == R2024
    before = r.store.version
    report = r.remove_document(R2024)
    assert report.removed == [R2024] and report.written
    assert not (c.documents / R2024).exists() and not list(c.documents.glob(".removing-*"))
    assert r.store.version != before and R2024 not in {d.info.file for d in r.documents()}
    _never_from(r, R2024, ABOUT_2024)
    # a later upload (a new version built from the folder) does not bring it back
    marker = new_marker()
    assert r.add_upload(
        f"{marker}.txt",
        real_excerpt(marker, start=10, source="2021-zhengzhou-government-work-report.txt").encode(),
    ).added
    _never_from(r, R2024, ABOUT_2024[:3])
    # nor does reopening, nor a forced rebuild, nor another reader of the same index
    fresh = Retriever.open(c.index, c.settings, documents_dir=c.documents, encoder=real_encoder, build=True)
    _never_from(fresh, R2024, ABOUT_2024[:3])
    assert R2024 not in open_store(c.settings, c.index).manifest.documents
    with pytest.raises(QAError, match="没有名为"):
        r.remove_document(R2024)
    with pytest.raises(QAError):
        r.remove_document("../catalog.toml")


def test_qa_remove_command(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    c = corpus
    release_milvus(c.settings)  # the command opens milvus.db in this process again, as a user's shell would
    for k, v in {
        "store": c.settings.store,
        "milvus_uri": c.settings.milvus_uri,
        "cache_dir": c.settings.cache_dir,
    }.items():
        monkeypatch.setenv(f"QA_{k.upper()}", v)
    runner = CliRunner()
    args = ["--documents", str(c.documents), "--index", str(c.index)]
    res = runner.invoke(cli_app, ["remove", R2024, *args])
    assert res.exit_code == 0, res.output
    assert "移除 1 篇" in res.output
    res = runner.invoke(cli_app, ["remove", R2024, *args])
    assert res.exit_code == 2 and "没有名为" in res.output
    res = runner.invoke(cli_app, ["documents", "--json", "--index", str(c.index)])
    assert res.exit_code == 0 and R2024 not in res.output


def test_write_token_check() -> None:
    """The one check every write route uses (qa.serve.security.Access): a configured token must be sent;
    without one, only a server on loopback accepts changes."""
    assert Access.from_settings(Settings()).refusal({}) is None
    assert Access.from_settings(Settings(host="0.0.0.0")).refusal({})[0] == 403  # type: ignore[index]
    guarded = Access.from_settings(Settings(admin_token=TOKEN))
    assert guarded.refusal({"authorization": f"Bearer {TOKEN}"}) is None
    assert guarded.refusal({"authorization": f"bearer   {TOKEN} "}) is None
    assert guarded.refusal({})[0] == 401  # type: ignore[index]
    assert guarded.refusal({"authorization": f"Bearer {TOKEN[:-1]}N"})[0] == 401  # type: ignore[index]
    assert guarded.refusal({"authorization": "Basic czNjcmV0"})[0] == 401  # type: ignore[index]


@pytest.fixture
def api_server(corpus: Corpus, real_encoder: Any) -> Iterator[tuple[str, Corpus]]:
    """The HTTP API over the corpus, with a write token configured."""
    import uvicorn

    s = corpus.settings.with_(
        admin_token=TOKEN, documents_dir=str(corpus.documents), index_dir=str(corpus.index)
    )
    r = Retriever.open(corpus.index, s, documents_dir=corpus.documents, encoder=real_encoder)
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_api(lambda: r, s), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", corpus
    srv.should_exit = True
    thread.join(timeout=10)


def test_delete_over_http_needs_the_token(api_server: tuple[str, Corpus]) -> None:
    url, c = api_server
    with httpx.Client(base_url=url, timeout=120) as client:
        path = f"/api/kb/default/documents/{R2024}"
        r = client.delete(path)
        assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]
        assert client.delete(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert (c.documents / R2024).exists()
        ok = {"Authorization": "Bearer " + TOKEN}
        r = client.delete(path, headers=ok)
        assert r.status_code == 200 and r.json()["removed"] == [R2024]
        assert client.delete(path, headers=ok).status_code == 404
        assert client.delete("/api/kb/nope/documents/x.txt", headers=ok).status_code == 404
        docs = client.get("/api/kb/default/documents").json()["documents"]
        assert R2024 not in {d["file"] for d in docs}
        for q in ABOUT_2024:
            hits = client.post("/api/kb/default/ask", json={"question": q, "k": 10}).json()["hits"]
            assert all(h["passage"]["doc"] != R2024 for h in hits)
            hits = client.post("/api/search", json={"question": q, "k": 10}).json()["hits"]
            assert all(h["passage"]["doc"] != R2024 for h in hits)
        # replacing over HTTP needs the token too
        files = {"file": ("x.txt", real_excerpt(new_marker()).encode("utf-8"), "text/plain")}
        target = "/api/kb/default/documents/2020-zhengzhou-government-work-report.txt"
        assert client.put(target, files=files).status_code == 401
        assert client.put(target, files=files, headers=ok).json()["added"] == [
            "2020-zhengzhou-government-work-report.txt"
        ]
