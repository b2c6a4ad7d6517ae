"""Knowledge bases side by side, on both backends: each answers its own questions only.

The default knowledge base is documents/ (Zhengzhou); a second, "national", holds two national reports
(1960 and 1975), created with `qa index --kb national --documents DIR` and opened with
`Retriever.open(kb="national")` and through `/api/kb/national/…`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from store_fixtures import (
    NATIONAL,
    REPO,
    STORES,
    copy_documents,
    release_milvus,
    require_milvus,
    store_settings,
)
from typer.testing import CliRunner

from qa.cli import app as cli_app
from qa.config import Settings
from qa.errors import QAError
from qa.index.builder import update_index
from qa.index.kb import check_kb_name, create_kb, list_kbs, resolve_kb
from qa.search.retriever import Retriever
from qa.serve.api import create_api
from qa.serve.kbs import KnowledgeBases
from qa.serve.process import free_port

pytestmark = pytest.mark.integration

REPORTS = ["national-1960-government-work-report.txt", "national-1975-government-work-report.txt"]


def _gold(name: str, docs: set[str] | None = None) -> list[dict[str, Any]]:
    rows = [
        json.loads(x) for x in (REPO / "eval" / "gold" / name).read_text(encoding="utf-8").splitlines() if x
    ]
    return [q for q in rows if q.get("doc") and (docs is None or q["doc"] in docs)]


@pytest.fixture(scope="module", params=STORES)
def two(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    session_settings: Settings,
    real_encoder: Any,
) -> Iterator[tuple[Settings, Path]]:
    """The default knowledge base (a copy of documents/) and 'national' (two reports), on one backend,
    the second created through `qa index --kb national --documents DIR`."""
    if request.param == "milvus":
        require_milvus()
    root = tmp_path_factory.mktemp(f"kb-{request.param}")
    s = store_settings(session_settings, request.param, root)
    docs = copy_documents(root / "documents")
    s = s.with_(documents_dir=str(docs), index_dir=str(root / "index"))
    update_index(docs, root / "index", s, encoder=real_encoder)
    national = root / "national-docs"
    national.mkdir()
    for name in REPORTS:
        (national / name).write_bytes((NATIONAL / name).read_bytes())
    release_milvus(s)  # the command opens the same milvus.db, as a user's shell would
    env = {f"QA_{k.upper()}": str(getattr(s, k)) for k in ("store", "milvus_uri", "kb_dir", "cache_dir")}
    res = CliRunner().invoke(cli_app, ["index", "--kb", "national", "--documents", str(national)], env=env)
    assert res.exit_code == 0, res.output
    assert "新增 2 篇" in res.output
    yield s, root
    release_milvus(s)


def test_registry_and_names(two: tuple[Settings, Path]) -> None:
    s, root = two
    names = [b.name for b in list_kbs(s)]
    assert names == ["default", "national"]
    nat = resolve_kb(s, "national")
    assert (
        nat.documents_dir == root / "national-docs" and nat.index_dir == root / "kbs" / "national" / "index"
    )
    assert resolve_kb(s).documents_dir == Path(s.documents_dir)
    with pytest.raises(QAError, match="qa index --kb nope"):
        resolve_kb(s, "nope")
    for bad in ("", "../x", "a/b", "-x", "x" * 65, "a b"):
        with pytest.raises(QAError, match="not a knowledge base name"):
            check_kb_name(bad)
    assert check_kb_name("郑州") == "郑州" and check_kb_name("my-kb_2") == "my-kb_2"
    # a knowledge base without --documents gets a documents folder of its own
    elsewhere = s.with_(kb_dir=str(root / "other-kbs"))
    empty = create_kb(elsewhere, "empty")
    assert empty.documents_dir == root / "other-kbs" / "empty" / "documents" and empty.documents_dir.is_dir()
    assert [b.name for b in list_kbs(elsewhere)] == ["default", "empty"]


def test_each_knowledge_base_answers_its_own_questions_only(
    two: tuple[Settings, Path], real_encoder: Any
) -> None:
    s, _ = two
    zz = Retriever.open(s.index_dir, s, documents_dir=s.documents_dir, encoder=real_encoder)
    nat = Retriever.open(settings=s, kb="national", encoder=real_encoder)
    assert {d.info.file for d in nat.documents()} == set(REPORTS)
    assert not {d.info.file for d in zz.documents()} & set(REPORTS)
    national_q = _gold("national-dev.jsonl", set(REPORTS))
    zhengzhou_q = _gold("dev.jsonl")[:25]
    assert len(national_q) >= 15
    found = 0
    for q in national_q:
        hits = nat.search(q["question"], k=5)
        assert hits and {h.passage.doc for h in hits} <= set(REPORTS)
        found += q["doc"] in {h.passage.doc for h in hits}
        assert not {h.passage.doc for h in zz.search(q["question"], k=5)} & set(REPORTS)
    assert found >= 0.8 * len(national_q)
    found = 0
    for q in zhengzhou_q:
        found += q["doc"] in {h.passage.doc for h in zz.search(q["question"], k=5)}
        assert {h.passage.doc for h in nat.search(q["question"], k=5)} <= set(REPORTS)
    assert found >= 0.8 * len(zhengzhou_q)


@pytest.fixture(scope="module")
def server(two: tuple[Settings, Path], real_encoder: Any) -> Iterator[str]:
    """The HTTP API over both knowledge bases (uvicorn in a thread)."""
    import uvicorn

    s, _ = two
    r = Retriever.open(s.index_dir, s, documents_dir=s.documents_dir, encoder=real_encoder)
    port = free_port()
    app = create_api(lambda: r, s, kbs=KnowledgeBases(s, default=r))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_knowledge_bases_over_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=120) as c:
        kbs = c.get("/api/kb").json()
        assert [k["name"] for k in kbs["kbs"]] == ["default", "national"] and kbs["worker"] > 0
        assert kbs["kbs"][1]["documents"] == 2 and kbs["kbs"][1]["passages"] > 50
        q = _gold("national-dev.jsonl", set(REPORTS))[0]
        ans = c.post("/api/kb/national/ask", json={"question": q["question"], "k": 3}).json()
        assert ans["kb"] == "national" and {h["passage"]["doc"] for h in ans["hits"]} <= set(REPORTS)
        hits = c.post("/api/kb/default/search", json={"question": q["question"], "k": 3}).json()["hits"]
        assert not {h["passage"]["doc"] for h in hits} & set(REPORTS)
        docs = c.get("/api/kb/national/documents").json()["documents"]
        assert sorted(d["file"] for d in docs) == REPORTS
        r = c.post("/api/kb/nope/ask", json={"question": "x"})
        assert r.status_code == 404 and "qa index --kb nope" in r.json()["error"]
        assert c.get("/api/kb/..%2Fx/documents").status_code in (404, 400)
