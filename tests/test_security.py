"""Security: loopback by default, nothing code-executing is ever loaded from the index, file names and
filters never reach files outside what was indexed, and the API does not open itself to other origins."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from fastapi.testclient import TestClient
from helpers import REPO, BuiltIndex

from qa.config import Settings, load_settings
from qa.errors import IndexProblem, QAError
from qa.index.store import IndexStore
from qa.index.writer import current_version
from qa.ingest.uploads import read_audit
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


def _api_server(copy: BuiltIndex, tmp_path: Path, port: int, **env_extra: str) -> subprocess.Popen[bytes]:
    """`qa serve --api-only` (qa.serve.api.main) over a copy of the built index, default host, settings
    from the environment plus env_extra."""
    env = {k: v for k, v in os.environ.items() if k != "QA_HOST"}
    env.update(PYTHONPATH=str(REPO), QA_CACHE_DIR=copy.settings.cache_dir, **env_extra)
    return subprocess.Popen(
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


@pytest.mark.integration
def test_api_server_listens_on_loopback_only(built_index: BuiltIndex, tmp_path: Path) -> None:
    """`qa serve --api-only` without --host: the listening socket is 127.0.0.1, not every interface."""
    copy = built_index.copy(tmp_path)
    port = free_port()
    proc = _api_server(copy, tmp_path, port)
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
    from qa.search.retriever import Retriever
    from qa.serve.api import create_api

    r = Retriever.open(built_index.index, built_index.settings)
    with _client(create_api(lambda: r)) as c:
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


# ---- issue 16: the attacks on the running app, each replayed on 127.0.0.1 ---------------------------------

TOKEN = "test-admin-token-0123456789abcdef"
BOMB_EXPANDED = 1_290_000_000  # what the attack used: 1.26 MB on disk, 1.29 GB unpacked


class ServerProcess:
    """`app.py` (the chat and the API) on a free loopback port in a subprocess, with its log and its RSS."""

    def __init__(self, copy: BuiltIndex, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.copy = copy
        self.log = log
        self._fh = log.open("w", encoding="utf-8")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
        self.upload_folder = log.parent / "chat-uploads"
        full_env.update(
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(REPO),
            QA_CACHE_DIR=copy.settings.cache_dir,
            GRADIO_TEMP_DIR=str(self.upload_folder),
            **(env or {}),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(self.port), "--documents", str(copy.documents)]
            + ["--index", str(copy.index)],
            cwd=REPO,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        wait_until_healthy(self.proc, self.url, 600, name="app.py", log=log)
        self.ps = psutil.Process(self.proc.pid)

    def rss(self) -> int:
        """The server's resident memory now, in bytes."""
        return int(self.ps.memory_info().rss)

    def peak_rss_during(self, work: Any) -> tuple[Any, int, int]:
        """Run work() while sampling the server's RSS every 20 ms: (result, RSS before, peak RSS)."""
        before = self.rss()
        peak = before
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                with contextlib.suppress(psutil.Error):
                    peak = max(peak, self.rss())
                time.sleep(0.02)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            result = work()
        finally:
            time.sleep(0.2)
            done.set()
            t.join()
        return result, before, peak

    def output(self) -> str:
        """What the server printed."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Stop this server (only it)."""
        stop_process(self.proc)
        self._fh.close()


@pytest.fixture(scope="module")
def attacked(built_index: BuiltIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The app as `make run` starts it (loopback, no token), on a private copy, with small upload limits."""
    root = tmp_path_factory.mktemp("attacked")
    copy = built_index.copy(root)
    server = ServerProcess(copy, root / "app.log", {"QA_MAX_UPLOAD_MB": "2", "QA_UPLOAD_TEMP_MB": "3"})
    try:
        yield server
    finally:
        server.stop()


def _documents(b: BuiltIndex) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in b.documents.iterdir() if p.is_file()}


def _upload_fn(url: str) -> tuple[int, int]:
    """(fn_index, trigger id) of the chat's upload event, read from the page's own config."""
    config = httpx.get(f"{url}/config", timeout=30).json()
    upload = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "qa-upload")
    dep = next(d for d in config["dependencies"] if upload in d["inputs"])
    return int(dep["id"]), int(dep["targets"][0][0])


@pytest.mark.integration
def test_gradio_event_cannot_pull_a_server_file_into_the_index(
    attacked: ServerProcess, tmp_path: Path
) -> None:
    """Attack 1: the upload event called directly with {"path": "/any/server/file.md"} (and a URL, and a
    symlink planted in the upload folder) is refused; nothing is copied, indexed or answerable."""
    marker = f"机密{new_marker_()}"
    secret = tmp_path / "server-secret.md"
    secret.write_text(f"# 内部资料\n\n紫藤湖观测站的机密编号是{marker}，仅限内部使用。\n", encoding="utf-8")
    before = _documents(attacked.copy)
    fn, trigger = _upload_fn(attacked.url)
    folder = attacked.upload_folder
    link = folder / "planted" / "link.md"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    for path in (str(secret), "http://127.0.0.1:9/secret.md", f"/gradio_api/file={secret}", str(link)):
        body = {
            "data": [[{"path": path, "orig_name": "x.md", "meta": {"_type": "gradio.FileData"}}]],
            "fn_index": fn,
            "trigger_id": trigger,
            "session_hash": "attacker1",
            "event_data": None,
        }
        r = httpx.post(f"{attacked.url}/gradio_api/queue/join", json=body, timeout=30)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert "只能提交本页面" in r.json()["error"]
    time.sleep(1)
    assert _documents(attacked.copy) == before
    hits = httpx.post(f"{attacked.url}/api/search", json={"question": marker, "k": 5}, timeout=60).json()[
        "hits"
    ]
    assert all(marker not in h["passage"]["text"] for h in hits)
    copies = [
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and marker.encode() in p.read_bytes()
    ]
    assert copies == [], "the server file was copied into the upload folder"


def new_marker_() -> str:
    """A tag no earlier run can have indexed."""
    return uuid.uuid4().hex[:10].upper()


def bomb_docx(path: Path, expanded: int = BOMB_EXPANDED) -> Path:
    """A valid .docx whose document.xml is `expanded` bytes of one repeated letter (deflate: ~1000:1)."""
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
        '"/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
        'document.main+xml"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", rels)
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0" encoding="UTF-8"?><w:document {w}><w:body><w:p><w:r><w:t>'.encode())
            block = b"A" * (1 << 20)
            for _ in range(expanded // len(block)):
                f.write(block)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return path


@pytest.fixture(scope="session")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The attack's zip bomb: 1.26 MB on disk, 1.29 GB unpacked."""
    return bomb_docx(tmp_path_factory.mktemp("bomb") / "季度报告.docx")


@pytest.mark.integration
def test_zip_bomb_docx_is_refused_before_it_is_unpacked(attacked: ServerProcess, bomb: Path) -> None:
    """Attack 2: the 1.26 MB .docx that unpacks to 1.29 GB is refused from its zip directory; the server's RSS
    (sampled every 20 ms) barely moves (it went from 748 MB to 3.4 GB before), nothing is left behind."""
    assert bomb.stat().st_size < 2 * 1024 * 1024
    before = _documents(attacked.copy)

    def send() -> httpx.Response:
        data = bomb.read_bytes()
        return httpx.post(f"{attacked.url}/api/documents", files={"file": (bomb.name, data)}, timeout=300)

    r, rss0, peak = attacked.peak_rss_during(send)
    print(
        f"\nzip bomb: {r.status_code} {r.json()['error']}; server RSS {rss0 / 2**20:.0f} -> peak {peak / 2**20:.0f} MB"
    )
    assert r.status_code == 422, r.text
    assert "zip bomb" in r.json()["error"] and "max_zip_expanded_mb" in r.json()["error"]
    assert peak - rss0 < 150 * 2**20, f"RSS grew by {(peak - rss0) / 2**20:.0f} MB"
    assert _documents(attacked.copy) == before
    assert not (attacked.copy.documents / ".staging").exists()


def _raw_post(url: str, path: str, headers: dict[str, str], body_bytes: int, chunked: bool = False) -> str:
    """POST over a raw socket, sending up to `body_bytes` of body in 256 kB pieces; the status line answered."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if chunked:
            head += "Transfer-Encoding: chunked\r\n"
        s.sendall((head + "\r\n").encode())
        piece = b'{"question": "' + b"x" * (256 * 1024)
        sent = 0
        with contextlib.suppress(OSError):
            while sent < body_bytes:
                s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
                s.settimeout(0.05)
                with contextlib.suppress(TimeoutError, BlockingIOError):
                    if s.recv(1, socket.MSG_PEEK):
                        break  # the server answered already
                s.settimeout(30)
        s.settimeout(30)
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", 1)[0].decode("latin-1")


@pytest.mark.integration
def test_oversized_json_bodies_are_refused_before_parsing(attacked: ServerProcess) -> None:
    """Attack 5: eight 108 MB /api/ask bodies at once (declared, and chunked without a length) get 413 after at
    most the 256 kB limit is read; the server's RSS does not follow (it went from 670 MB to 2.3 GB)."""
    size = 108 * 1024 * 1024

    def eight() -> list[str]:
        out: list[str] = []
        threads = [
            threading.Thread(
                target=lambda i=i: out.append(
                    _raw_post(
                        attacked.url,
                        "/api/ask",
                        {} if i % 2 else {"Content-Length": str(size)},
                        size,
                        chunked=bool(i % 2),
                    )
                )
            )
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return out

    statuses, rss0, peak = attacked.peak_rss_during(eight)
    print(f"\n8 x 108 MB bodies: {statuses}; server RSS {rss0 / 2**20:.0f} -> peak {peak / 2**20:.0f} MB")
    assert len(statuses) == 8 and all(" 413 " in s for s in statuses), statuses
    assert peak - rss0 < 50 * 2**20
    ok = httpx.post(f"{attacked.url}/api/ask", json={"question": "2023年郑州GDP是多少？"}, timeout=60)
    assert ok.status_code == 200  # and the server still answers


@pytest.mark.integration
def test_cross_origin_and_rebinding_writes_are_refused(attacked: ServerProcess) -> None:
    """Attack 4 without a browser (the browser's own no-cors fetch is in test_app_browser.py): a write from
    another origin, a null origin, a cross-site fetch without Origin, or under another Host name is refused."""
    before = _documents(attacked.copy)
    doc = ("郑州GDP说明\n\n2023年郑州市地区生产总值总量是9.99万亿元。\n").encode()
    for headers in (
        {"Origin": "http://127.0.0.1:9"},
        {"Origin": "null"},
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": f"evil.example:{attacked.port}"},
    ):
        r = httpx.post(
            f"{attacked.url}/api/documents", files={"file": ("gdp.txt", doc)}, headers=headers, timeout=30
        )
        assert r.status_code in (403, 421), (headers, r.status_code, r.text)
        assert r.json()["error"]
    assert _documents(attacked.copy) == before
    answer = httpx.post(
        f"{attacked.url}/api/ask", json={"question": "2023年郑州GDP是多少？"}, timeout=60
    ).json()
    assert "9.99" not in answer["text"]


@pytest.mark.integration
def test_gradio_upload_folder_has_a_quota_and_no_url_fetching(attacked: ServerProcess) -> None:
    """Attack 6: /gradio_api/upload cannot fill the disk: the chat's upload folder (its own, per process) has a
    quota (upload_temp_mb = 3 here) and each file the max_upload_mb limit; the server fetches no URL for anyone."""
    folder = attacked.upload_folder
    statuses = []
    for n in range(5):
        data = os.urandom(1024 * 1024 + 512 * 1024)  # 1.5 MB each
        r = httpx.post(
            f"{attacked.url}/gradio_api/upload", files={"files": (f"fill-{n}.txt", data)}, timeout=60
        )
        statuses.append(r.status_code)
        if r.status_code != 200:
            assert "upload_temp_mb" in r.json()["error"], r.text
    assert statuses[:2] == [200, 200] and 507 in statuses, statuses
    used = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert used <= 3 * 1024 * 1024 + 1024 * 1024 + 512 * 1024, used
    for p in folder.rglob("*"):  # empty it again (the server sweeps files left for 10 minutes itself)
        if p.is_file():
            p.unlink()
    big = httpx.post(
        f"{attacked.url}/gradio_api/upload",
        files={"files": ("big.txt", os.urandom(3 * 1024 * 1024))},
        timeout=60,
    )
    assert big.status_code == 413 and "max_upload_mb" in big.json()["error"]
    r = httpx.get(f"{attacked.url}/gradio_api/file=http://127.0.0.1:{attacked.port}/health", timeout=30)
    assert r.status_code == 403 and r.json()["error"]


# ---- who may change the corpus (in-process, the real app with a token) --------------------------------


@pytest.fixture(scope="module")
def token_app(built_index: BuiltIndex, real_encoder: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The chat and the API (create_app) over a private copy, with an admin token configured."""
    from qa.search.retriever import Retriever
    from qa.serve.chat import create_app

    copy = built_index.copy(tmp_path_factory.mktemp("token-app"))
    settings = copy.settings.with_(
        admin_token=TOKEN,
        documents_dir=str(copy.documents),
        index_dir=str(copy.index),
        rate_limit_per_minute=0,
    )
    r = Retriever.open(copy.index, settings, documents_dir=copy.documents, encoder=real_encoder)
    return create_app(r, settings), copy


def _client(app: Any) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:7860", raise_server_exceptions=False)


def _doc(marker: str) -> bytes:
    return f"紫藤湖观测站简介\n\n紫藤湖观测站的记录编号是{marker}，位于郑州市。\n".encode()


@pytest.mark.integration
def test_writes_need_the_admin_token_when_one_is_configured(token_app: Any) -> None:
    """Upload, delete, reindex and the chat's upload folder: 401 without or with a wrong token; reading stays
    open; with the token (Bearer or the sign-in cookie) each works and lands in the audit log."""
    app, copy = token_app
    marker = new_marker_()
    with _client(app) as c:
        assert c.get("/api/documents").status_code == 200
        assert c.post("/api/ask", json={"question": "2023年郑州GDP是多少？"}).status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}):
            r = c.post("/api/documents", files={"file": ("a.txt", _doc(marker))}, headers=headers)
            assert r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer", r.text
            assert "令牌" in r.json()["error"]
            assert c.post("/api/reindex", headers=headers).status_code == 401
            assert c.delete(f"/api/documents/{R2024_}", headers=headers).status_code == 401
            assert (
                c.post("/gradio_api/upload", files={"files": ("a.txt", b"x")}, headers=headers).status_code
                == 401
            )
        assert not (copy.documents / "a.txt").exists()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = c.post("/api/documents", files={"file": ("a.txt", _doc(marker))}, headers=auth)
        assert r.status_code == 200, r.text
        (added,) = r.json()["added"]
        assert c.delete(f"/api/documents/{added}", headers=auth).json()["removed"] == [added]
        assert c.post("/api/reindex", headers=auth).status_code == 200
        # the chat's sign-in: a form post sets an HttpOnly, SameSite=Strict cookie; a wrong token does not
        bad = c.post("/admin/login", data={"token": "nope"}, follow_redirects=False)
        assert bad.status_code == 401 and "qa_admin" not in bad.headers.get("set-cookie", "")
        ok = c.post("/admin/login", data={"token": TOKEN}, follow_redirects=False)
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict"), cookie
        r = c.post("/api/documents", files={"file": ("b.txt", _doc(marker + "B"))})  # the cookie alone
        assert r.status_code == 200, r.text
        c.post("/admin/logout")
        c.cookies.clear()
        assert c.post("/api/documents", files={"file": ("c.txt", _doc(marker + "C"))}).status_code == 401
    log = read_audit(copy.index)
    mine = [e for e in log if e["via"] == "api"]
    assert [(e["action"], e["actor"]) for e in mine] == [
        ("add", "admin (token)"),
        ("remove", "admin (token)"),
        ("add", "admin (session)"),
    ], mine
    assert mine[0]["sha256"] == hashlib.sha256(_doc(marker)).hexdigest()
    assert all(e["client"] and e["time"].endswith("Z") and e["index_version"].startswith("v-") for e in mine)


R2024_ = "2024-zhengzhou-government-work-report.txt"


@pytest.mark.unit
def test_uploads_are_off_on_a_public_address_without_a_token() -> None:
    """Binding to anything but loopback without a token turns writing off (uploads=on overrides, off wins)."""
    from qa.serve.security import Access

    assert Access.from_settings(Settings(host="127.0.0.1")).uploads_on
    off = Access.from_settings(Settings(host="0.0.0.0"))
    assert not off.uploads_on and "QA_ADMIN_TOKEN" in off.why_off
    assert off.refusal({}) == (403, off.why_off)
    assert Access.from_settings(Settings(host="0.0.0.0", admin_token=TOKEN)).uploads_on
    assert Access.from_settings(Settings(host="0.0.0.0", uploads="on")).uploads_on
    assert not Access.from_settings(Settings(host="127.0.0.1", uploads="off", admin_token=TOKEN)).uploads_on
    with pytest.raises(QAError):
        Access.from_settings(Settings(uploads="maybe"))
    with pytest.raises(QAError):
        Access.from_settings(Settings(admin_token="short"))
    a = Access.from_settings(Settings(admin_token=TOKEN))
    assert a.valid_session(a.session_value()) and not a.valid_session(
        a.session_value(now=time.time() - 86400)
    )
    assert not Access.from_settings(Settings(admin_token=TOKEN)).valid_session(a.session_value()), (
        "a session of another process (another secret) is not valid"
    )
    assert "admin_token" not in repr(Settings(admin_token=TOKEN)) or TOKEN not in repr(
        Settings(admin_token=TOKEN)
    )


@pytest.mark.integration
def test_rate_limit_per_client(built_index: BuiltIndex, real_encoder: Any) -> None:
    """Over rate_limit_per_minute questions a minute, a client gets 429 with Retry-After and one sentence."""
    from qa.search.retriever import Retriever
    from qa.serve.api import create_api

    settings = built_index.settings.with_(rate_limit_per_minute=5)
    r = Retriever.open(built_index.index, settings, encoder=real_encoder)
    with _client(create_api(lambda: r, settings)) as c:
        codes = [c.post("/api/search", json={"question": "郑州GDP", "k": 1}).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429], codes
        last = c.post("/api/search", json={"question": "郑州GDP", "k": 1})
        assert int(last.headers["retry-after"]) >= 1 and "每分钟最多 5 次" in last.json()["error"]
        assert c.get("/api/documents").status_code == 200  # reading a list is not counted


# ---- the client behind a reverse proxy (trusted_proxies) -----------------------------------------------


@pytest.mark.unit
def test_client_address_trusts_forwarded_for_only_from_a_trusted_proxy() -> None:
    """The peer is the client unless it is a trusted proxy; then X-Forwarded-For is walked from the right to
    the first address that is not a trusted proxy, skipping malformed entries."""
    from qa.serve.security import client_address, trusted_networks

    proxies = trusted_networks("10.0.0.0/8, 192.168.1.5 2001:db8::/32")
    assert client_address("203.0.113.7", ["198.51.100.1"], proxies) == "203.0.113.7"  # an untrusted peer
    assert client_address("10.1.2.3", ["198.51.100.1"], ()) == "10.1.2.3"  # nobody is trusted by default
    assert client_address("10.1.2.3", [], proxies) == "10.1.2.3"  # the proxy's own request (a health check)
    assert client_address("10.1.2.3", ["198.51.100.1"], proxies) == "198.51.100.1"
    # what the client sent comes first, the proxy appends the address it saw: the rightmost untrusted counts
    assert client_address("10.1.2.3", ["6.6.6.6, 198.51.100.1"], proxies) == "198.51.100.1"
    assert client_address("10.1.2.3", ["6.6.6.6, 198.51.100.1, 192.168.1.5"], proxies) == "198.51.100.1"
    assert client_address("10.1.2.3", ["6.6.6.6", "198.51.100.1"], proxies) == "198.51.100.1"  # two lines
    # malformed entries are skipped, never taken as the client
    assert client_address("10.1.2.3", ["198.51.100.1, not-an-ip, "], proxies) == "198.51.100.1"
    assert client_address("10.1.2.3", ["nonsense"], proxies) == "10.1.2.3"
    # ports, brackets, IPv6, an IPv4-mapped peer; every entry trusted: the farthest
    assert client_address("10.1.2.3", ["198.51.100.1:4711"], proxies) == "198.51.100.1"
    assert client_address("2001:db8::1", ["[2001:db9::5]:443"], proxies) == "2001:db9::5"
    assert client_address("::ffff:10.0.0.1", ["198.51.100.1"], proxies) == "198.51.100.1"
    assert client_address("10.1.2.3", ["10.9.9.9, 192.168.1.5"], proxies) == "10.9.9.9"
    assert client_address("testclient", ["198.51.100.1"], proxies) == "testclient"  # not an address


@pytest.mark.unit
def test_forwarded_scheme_only_from_a_trusted_proxy() -> None:
    from qa.serve.security import forwarded_scheme, trusted_networks

    proxies = trusted_networks("10.0.0.0/8")
    assert forwarded_scheme("10.1.2.3", ["https"], proxies) == "https"
    assert forwarded_scheme("10.1.2.3", ["http, https"], proxies) == "https"  # the proxy nearest us appends
    assert forwarded_scheme("10.1.2.3", ["HTTP"], proxies) == "http"
    assert forwarded_scheme("203.0.113.7", ["https"], proxies) == ""  # not a proxy: ignored
    assert forwarded_scheme("10.1.2.3", ["https"], ()) == ""  # nobody is trusted by default
    assert forwarded_scheme("10.1.2.3", ["gopher"], proxies) == ""
    assert forwarded_scheme("10.1.2.3", [], proxies) == ""


@pytest.mark.integration
def test_the_sign_in_cookie_is_secure_only_when_a_trusted_proxy_says_https(built_index: BuiltIndex) -> None:
    """X-Forwarded-Proto from any other peer no longer marks a plain-HTTP sign-in as HTTPS (and a proxy
    that terminates TLS still gets a Secure cookie)."""
    from qa.search.retriever import Retriever
    from qa.serve.api import create_api

    settings = built_index.settings.with_(
        admin_token=TOKEN, trusted_proxies="127.0.0.2", rate_limit_per_minute=0
    )
    r = Retriever.open(built_index.index, settings)
    app = create_api(lambda: r, settings)

    def cookie(peer: str, headers: dict[str, str]) -> str:
        with TestClient(app, base_url="http://127.0.0.1:7860", client=(peer, 50000)) as c:
            ok = c.post("/admin/login", data={"token": TOKEN}, headers=headers, follow_redirects=False)
            assert ok.status_code == 303, ok.text
            return ok.headers["set-cookie"]

    https = {"X-Forwarded-Proto": "https"}
    assert "secure" in cookie("127.0.0.2", https).lower()
    assert "secure" not in cookie("127.0.0.2", {}).lower()
    assert "secure" not in cookie("127.0.0.3", https).lower()  # not the proxy: its header is ignored


@pytest.mark.unit
def test_trusted_proxies_from_qa_toml_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TOML array or a comma-separated string; QA_TRUSTED_PROXIES beats the file; a bad entry is named in
    one sentence when the server's security settings are read."""
    from qa.serve.security import Access

    assert Access.from_settings(Settings()).proxies == ()
    toml = tmp_path / "qa.toml"
    toml.write_text('trusted_proxies = ["10.0.0.5", "192.168.0.0/16"]\n', encoding="utf-8")
    proxies = Access.from_settings(load_settings(toml)).proxies
    assert [str(n) for n in proxies] == ["10.0.0.5/32", "192.168.0.0/16"]
    monkeypatch.setenv("QA_TRUSTED_PROXIES", "127.0.0.1, ::1")
    proxies = Access.from_settings(load_settings(toml)).proxies
    assert [str(n) for n in proxies] == ["127.0.0.1/32", "::1/128"]
    monkeypatch.setenv("QA_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.300")
    with pytest.raises(QAError) as exc:
        Access.from_settings(load_settings(toml))
    message = str(exc.value)
    assert "'10.0.0.300'" in message and "QA_TRUSTED_PROXIES" in message, message
    assert "\n" not in message and message.endswith("."), message


@pytest.mark.integration
@pytest.mark.parametrize("module", ["qa.serve.api", "qa.serve.workers", "qa.serve.chat"])
def test_a_bad_trusted_proxy_stops_the_server_with_one_sentence(module: str, tmp_path: Path) -> None:
    """`qa serve --api-only`, `qa serve --workers N` and app.py refuse to start, before any index is built."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(PYTHONPATH=str(REPO), QA_TRUSTED_PROXIES="127.0.0.1, proxy.example.org")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; from {module} import main; sys.exit(main(sys.argv[1:]))",
            "--port",
            str(free_port()),
            "--index",
            str(tmp_path / "index"),
            "--documents",
            str(tmp_path / "documents"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "'proxy.example.org'" in lines[0] and "trusted_proxies" in lines[0], lines
    assert not (tmp_path / "index").exists()


def _leaving_from(address: str, base: str) -> httpx.Client:
    """An HTTP client whose connections leave from `address` (every 127.x address is this machine)."""
    return httpx.Client(base_url=base, timeout=120, transport=httpx.HTTPTransport(local_address=address))


@pytest.mark.integration
def test_rate_limit_and_audit_behind_a_trusted_proxy(built_index: BuiltIndex, tmp_path: Path) -> None:
    """`qa serve --api-only` with trusted_proxies = 127.0.0.2 and 2 requests a minute: a client that is not
    the proxy is one client whatever X-Forwarded-For it sends (uvicorn's own trust of loopback is off);
    through the proxy each forwarded client has its own bucket, the address the proxy appended counts, and
    the audit log names that client."""
    copy = built_index.copy(tmp_path)
    port = free_port()
    proc = _api_server(copy, tmp_path, port, QA_TRUSTED_PROXIES="127.0.0.2", QA_RATE_LIMIT_PER_MINUTE="2")
    base = f"http://127.0.0.1:{port}"

    def search(c: httpx.Client, forwarded: str | None = None) -> int:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        body = {"question": "2023年郑州GDP是多少？", "k": 1}
        return c.post("/api/search", json=body, headers=headers).status_code

    marker = new_marker_()
    try:
        wait_until_healthy(proc, base, 300, name="the API server")
        with _leaving_from("127.0.0.3", base) as warm:
            assert search(warm) == 200  # loads the query encoder, in a bucket of its own
        with _leaving_from("127.0.0.1", base) as direct, _leaving_from("127.0.0.2", base) as proxy:
            # not the proxy: a new X-Forwarded-For each time is still one client
            assert [search(direct, f"198.51.100.{i}") for i in (1, 2, 3)] == [200, 200, 429]
            # through the proxy: one bucket per forwarded client
            assert [search(proxy, "198.51.100.1") for _ in range(3)] == [200, 200, 429]
            assert search(proxy, "198.51.100.2") == 200
            # "what the client sent, the address the proxy saw": the second counts
            assert search(proxy, "198.51.100.2, 198.51.100.1") == 429
            assert search(proxy, "198.51.100.1, 198.51.100.2") == 200
            r = proxy.post(
                "/api/documents",
                files={"file": ("proxy.txt", _doc(marker))},
                headers={"X-Forwarded-For": "203.0.113.50, 198.51.100.9"},
            )
            assert r.status_code == 200, r.text
            (added,) = r.json()["added"]
        with _leaving_from("127.0.0.4", base) as other:
            r = other.delete(f"/api/documents/{added}", headers={"X-Forwarded-For": "198.51.100.10"})
            assert r.status_code == 200 and r.json()["removed"] == [added], r.text
    finally:
        stop_process(proc)
    mine = [(e["action"], e["client"]) for e in read_audit(copy.index) if e["file"] == added]
    assert mine == [("add", "198.51.100.9"), ("remove", "127.0.0.4")], mine


@pytest.mark.unit
def test_security_headers_forbid_outside_resources(built_index: BuiltIndex) -> None:
    from qa.search.retriever import Retriever
    from qa.serve.api import create_api

    r = Retriever.open(built_index.index, built_index.settings)
    with _client(create_api(lambda: r)) as c:
        h = c.get("/health").headers
    csp = h["content-security-policy"]
    assert (
        "default-src 'self'" in csp
        and "img-src 'self' data: blob:" in csp
        and "frame-ancestors 'none'" in csp
    )
    assert "http" not in csp and "*" not in csp
    assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"


# ---- limits, each a sentence, each before the work ----------------------------------------------------


@pytest.mark.unit
def test_loader_limits_refuse_before_the_work(tmp_path: Path) -> None:
    """Zip parts and unpacked size from the zip directory; PDF pages before any text; characters of text."""
    from helpers import minimal_pdf

    from qa.errors import DocumentError
    from qa.ingest.loaders import Limits, load_file, use_limits

    small_bomb = bomb_docx(tmp_path / "bomb.docx", expanded=40 * 1024 * 1024)
    with use_limits(Limits(zip_expanded_bytes=8 * 1024 * 1024)), pytest.raises(DocumentError) as exc:
        load_file(small_bomb)
    assert "max_zip_expanded_mb" in str(exc.value) and "\n" not in str(exc.value)
    many = tmp_path / "many.docx"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(60):
            z.writestr(f"p{i}.xml", "<a/>")
    with use_limits(Limits(zip_entries=50)), pytest.raises(DocumentError) as exc:
        load_file(many)
    assert "max_zip_entries" in str(exc.value)
    pdf = tmp_path / "pages.pdf"
    pdf.write_bytes(minimal_pdf([["Zhengzhou GDP page"]] * 5))
    with use_limits(Limits(pdf_pages=4)), pytest.raises(DocumentError) as exc:
        load_file(pdf)
    assert "max_pdf_pages" in str(exc.value)
    with use_limits(Limits(pdf_pages=5)):
        assert "Zhengzhou" in load_file(pdf).text
    txt = tmp_path / "long.txt"
    txt.write_text("郑州市政府工作报告。" * 2000, encoding="utf-8")
    with use_limits(Limits(text_chars=10_000)), pytest.raises(DocumentError) as exc:
        load_file(txt)
    assert "max_text_chars" in str(exc.value)
    with use_limits(Limits(text_chars=30_000)):
        assert len(load_file(txt).text) == 20_000


@pytest.mark.unit
def test_a_zip_part_that_lies_about_its_size_unpacks_no_more_than_it_says(tmp_path: Path) -> None:
    """The limit trusts the zip directory's sizes; a part declaring 1 kB but holding 50 MB fails its CRC check
    after 1 kB instead of being unpacked whole."""
    import io

    from qa.errors import DocumentError
    from qa.ingest.loaders import load_file

    honest = bomb_docx(tmp_path / "honest.docx", expanded=50 * 1024 * 1024)
    data = bytearray(honest.read_bytes())
    # patch the central directory's uncompressed size of word/document.xml down to 1 kB
    name = b"word/document.xml"
    at = data.rfind(b"PK\x01\x02", 0, data.rfind(name))
    assert at > 0 and data[at + 46 : at + 46 + len(name)] == name
    data[at + 24 : at + 28] = (1024).to_bytes(4, "little")
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        assert z.getinfo("word/document.xml").file_size == 1024
    liar = tmp_path / "liar.docx"
    liar.write_bytes(bytes(data))
    peak_before = psutil.Process().memory_info().rss
    with pytest.raises(DocumentError) as exc:
        load_file(liar)
    assert "docx" in str(exc.value)
    assert psutil.Process().memory_info().rss - peak_before < 40 * 2**20


@pytest.mark.unit
def test_the_chat_upload_folder_is_swept(tmp_path: Path) -> None:
    """Files no event used go after 10 minutes, Gradio's empty leftovers after one; folders of dead servers
    go at the next start; a file the handler has read is removed with its folder."""
    from qa.serve.security import remove_stale_upload_folders, remove_uploaded, sweep_upload_folder

    folder = tmp_path / "qa-chat-uploads-1"
    (folder / "abc").mkdir(parents=True)
    old, fresh, empty, spool = (
        folder / "abc" / "old.txt",
        folder / "fresh.txt",
        folder / "tmpempty",
        folder / "tmpnew",
    )
    for p in (old, fresh):
        p.write_text("x")
    empty.write_bytes(b"")
    spool.write_bytes(b"")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(folder / "abc", (hour_ago, hour_ago))
    os.utime(empty, (time.time() - 120,) * 2)
    assert sweep_upload_folder(folder) == 2
    assert not old.exists() and not empty.exists() and fresh.exists() and spool.exists()
    (folder / "h").mkdir()
    (folder / "h" / "doc.txt").write_text("y")
    remove_uploaded(folder, [folder / "h" / "doc.txt"])
    assert not (folder / "h").exists()
    dead = tmp_path / "qa-chat-uploads-999999999"
    dead.mkdir()
    mine = tmp_path / f"qa-chat-uploads-{os.getpid()}"
    mine.mkdir()
    remove_stale_upload_folders(tmp_path, "qa-chat-uploads-")
    assert not dead.exists() and mine.exists()
