"""Security: loopback by default, nothing code-executing is ever loaded from the index, file names and
filters never reach files outside what was indexed, and the API does not open itself to other origins."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from helpers import REPO, BuiltIndex

from qa.config import Settings, load_settings
from qa.errors import IndexProblem, QAError
from qa.index.store import IndexStore
from qa.index.writer import current_version
from qa.serve.process import free_port, stop_process, wait_until_healthy

SOURCES = sorted([*(REPO / "qa").rglob("*.py"), REPO / "app.py", *(REPO / "scripts").glob("*.py")])
FORBIDDEN = {
    r"^\s*import pickle|^\s*from pickle|pickle\.loads?\(": "pickle",
    r"\btorch\.load\(": "torch.load",
    r"\bjoblib\.load\(": "joblib",
    r"\bdill\b": "dill",
    r"\bmarshal\.loads?\(": "marshal",
    r"\bshelve\.open\(": "shelve",
    r"allow_pickle\s*=\s*True": "allow_pickle=True",
    r"\byaml\.load\(": "yaml.load",
    r"(?<![\w.])eval\(|(?<![\w.])exec\(": "eval/exec",
    r"trust_remote_code\s*=\s*True": "trust_remote_code",
}


# ---- loopback by default ---------------------------------------------------------------------------


@pytest.mark.unit
def test_defaults_bind_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_HOST", raising=False)
    assert Settings().host == "127.0.0.1"
    assert load_settings().host == "127.0.0.1"
    from qa.cli import serve_cmd

    assert inspect.signature(serve_cmd).parameters["host"].default == "127.0.0.1"
    app_py = (REPO / "app.py").read_text(encoding="utf-8")
    assert "0.0.0.0" not in app_py and "share=True" not in app_py


@pytest.mark.integration
def test_api_server_listens_on_loopback_only(built_index: BuiltIndex, tmp_path: Path) -> None:
    """`qa serve --api-only` without --host: the listening socket is 127.0.0.1, not every interface."""
    copy = built_index.copy(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "QA_HOST"}
    env.update(PYTHONPATH=str(REPO), QA_CACHE_DIR=built_index.settings.cache_dir)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from qa.serve.api import main; sys.exit(main(sys.argv[1:]))",
            "--port",
            str(port),
            "--index",
            str(copy.index),
            "--documents",
            str(copy.documents),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_healthy(proc, f"http://127.0.0.1:{port}", 300, name="the API server")
        listening = [
            c.laddr
            for c in psutil.Process(proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening and all(a.ip in ("127.0.0.1", "::1") for a in listening), listening
    finally:
        stop_process(proc)


# ---- no pickle or other code-executing formats ---------------------------------------------------------


@pytest.mark.unit
def test_no_code_executing_loaders_in_the_code() -> None:
    found = []
    for path in SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            for pattern, what in FORBIDDEN.items():
                if re.search(pattern, code):
                    found.append(f"{path.relative_to(REPO)}:{n}: {what}: {line.strip()}")
            # every numpy load must say allow_pickle=False on the same call
            if re.search(r"\bnp\.load\(", code):
                assert "allow_pickle=False" in code, f"{path.relative_to(REPO)}:{n}: {line.strip()}"
    assert not found, found


@pytest.mark.integration
def test_index_loaders_pass_allow_pickle_false(
    built_index: BuiltIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every numpy load made while opening an index (ours and bm25s's) refuses pickles."""
    calls: list[dict[str, Any]] = []
    real_load = np.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    store = IndexStore.open(built_index.index)
    assert store.passages
    assert len(calls) >= 2, "vectors.npy and the BM25 arrays are loaded with np.load"
    assert all(kw.get("allow_pickle") is False for kw in calls), calls


class _Trap:
    """Unpickling this creates the sentinel file: proof that a pickle was executed."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.sentinel), "w"))


@pytest.mark.integration
@pytest.mark.parametrize("target", ["vectors.npy", "lexical"])
def test_a_planted_pickle_is_refused_not_run(private_index: BuiltIndex, tmp_path: Path, target: str) -> None:
    """An index file swapped for a pickle (with a consistent manifest) is refused and never unpickled."""
    v = current_version(private_index.index)
    assert v is not None
    if target == "lexical":
        path = next(p for p in sorted((v / "lexical").glob("*.npy")))
    else:
        path = v / target
    sentinel = tmp_path / "pwned"
    np.save(path, np.array([_Trap(sentinel)], dtype=object), allow_pickle=True)
    mpath = v / "manifest.json"
    m = json.loads(mpath.read_text(encoding="utf-8"))
    rel = str(path.relative_to(v))
    m["files"][rel] = {"size": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    mpath.write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(IndexProblem) as exc:
        IndexStore.open(private_index.index)
    assert "qa index" in str(exc.value)
    assert not sentinel.exists(), "the pickle was executed"


# ---- names and filters never reach other files ---------------------------------------------------------


@pytest.mark.integration
def test_filters_and_context_do_not_open_files(built_index: BuiltIndex, real_encoder: Any) -> None:
    from qa.search.retriever import Retriever

    r = Retriever.open(
        built_index.index, built_index.settings, documents_dir=built_index.documents, encoder=real_encoder
    )
    for doc in ("../../../etc/passwd", "/etc/passwd", str(built_index.documents / "CORPUS.md")):
        with pytest.raises(QAError):
            r.ask("2023年郑州GDP是多少？", filters={"doc": [doc]})
    for pid in ("../../etc/passwd", "/etc/passwd", ""):
        with pytest.raises(QAError):
            r.context(pid)


@pytest.mark.integration
def test_safe_filename_properties() -> None:
    from qa.ingest.uploads import safe_filename

    for raw in [
        "../a.txt",
        "..\\..\\a.txt",
        "/etc/a.txt",
        "a\x00b.txt",
        "CON:a.txt",
        "a/../../b.txt",
        "…/.txt",
    ]:
        name = safe_filename(raw)
        assert "/" not in name and "\\" not in name and "\x00" not in name and ":" not in name
        assert name not in ("", ".", "..") or raw in ("…/.txt",)
        assert not name.startswith(".")
    assert safe_filename("..") == "" and safe_filename("../..") == ""
    assert len(safe_filename("长" * 500 + ".txt").encode("utf-8")) <= 255


@pytest.mark.integration
def test_api_does_not_open_cors_and_hides_internals(built_index: BuiltIndex) -> None:
    from fastapi.testclient import TestClient

    from qa.search.retriever import Retriever
    from qa.serve.api import create_api

    r = Retriever.open(built_index.index, built_index.settings)
    with TestClient(create_api(lambda: r), raise_server_exceptions=False) as c:
        resp = c.get("/api/documents", headers={"Origin": "http://evil.example"})
        assert resp.status_code == 200
        assert "access-control-allow-origin" not in {k.lower() for k in resp.headers}
        pre = c.options(
            "/api/ask", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in {k.lower() for k in pre.headers}
        # document listings carry file names, not server paths
        body = json.dumps(resp.json(), ensure_ascii=False)
        assert str(built_index.documents) not in body and str(built_index.index) not in body


@pytest.mark.unit
def test_no_model_download_or_remote_code() -> None:
    """Models load from local files only (no hub access at run time)."""
    src = (REPO / "qa" / "encoders" / "sentence_transformers.py").read_text(encoding="utf-8")
    assert "local_files_only=True" in src and "HF_HUB_OFFLINE" in src
