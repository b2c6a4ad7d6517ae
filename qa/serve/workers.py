"""`qa serve --workers N`: N stateless API worker processes on one port over the same index or collection.

The parent builds or updates the default knowledge base once, then uvicorn starts N workers that share
the listening socket. A worker holds nothing another could make stale: each retriever checks its
knowledge base's live version at most every `version_check_seconds` (0.5 s) and reopens when another
worker (or `qa index`, or `qa remove`) wrote a new one, so an update made through any worker is answered
by all of them within a second, without a restart. Writes are serialised across workers by the knowledge
base's writer lock (a file lock in its index folder).

With `store = "milvus"` and a milvus-lite data folder, which only one process may open, the parent first
starts one `milvus-lite server` on 127.0.0.1 (a free port) over that folder and points every worker at it:
the same client code as for a Milvus server. The web chat keeps per-session state in its process, so it
is not served by more than one worker (`qa serve` without --workers serves it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from qa.config import Settings, load_settings
from qa.errors import QAError

if TYPE_CHECKING:
    from fastapi import FastAPI

SETTINGS_ENV = "QA_WORKER_SETTINGS"  # the parent's resolved settings, as JSON, for every worker


def _print_progress(message: str, fraction: float | None) -> None:
    pct = f"{fraction * 100:5.1f}% " if fraction is not None else ""
    print(f"[index] {pct}{message}", flush=True)


class LiteServer:
    """One `milvus-lite server` process on 127.0.0.1 over a local milvus.db, for several workers."""

    def __init__(self, data_dir: str, log: Path | None = None) -> None:
        from qa.serve.process import free_port

        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        path = str(Path(data_dir).expanduser().resolve())
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[str] | None = open(log, "w", encoding="utf-8") if log else None  # noqa: SIM115
        cmd = [
            sys.executable,
            "-c",
            "import sys; from milvus_lite.cmdline import main; sys.exit(main())",
            "server",
            "--data-dir",
            path,
            "--host",
            "127.0.0.1",  # the tool's default is 0.0.0.0
            "--port",
            str(self.port),
        ]
        out = self._log if self._log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 60.0) -> None:
        """Until the server answers a client call."""
        from pymilvus import MilvusClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise QAError(
                    f"The milvus-lite server exited ({self.proc.returncode}); is milvus_uri open in another "
                    "process? Stop it, or point milvus_uri at a Milvus server."
                )
            try:
                MilvusClient(uri=self.uri, timeout=2).list_collections()
                return
            except Exception:
                time.sleep(0.3)
        raise QAError(f"The milvus-lite server on {self.uri} did not answer within {timeout:.0f} s.")

    def stop(self) -> None:
        """Stop the server started here (only it)."""
        from qa.serve.process import stop_process

        stop_process(self.proc)
        if self._log is not None:
            self._log.close()


def serve_workers(settings: Settings, workers: int) -> None:
    """Build/update the default knowledge base, then run `workers` API processes until interrupted."""
    import uvicorn

    from qa.index.builder import update_index
    from qa.index.milvus import is_local
    from qa.serve.security import Access

    Access.from_settings(settings)  # the security settings, checked before the index is built (one sentence)
    lite = None
    if settings.store == "milvus" and is_local(settings.milvus_uri):
        lite = LiteServer(settings.milvus_uri)
        lite.wait()
        print(f"[workers] milvus-lite server on {lite.uri} over {settings.milvus_uri}", flush=True)
        settings = settings.with_(milvus_uri=lite.uri)
    try:
        report = update_index(settings.documents_dir, settings.index_dir, settings, progress=_print_progress)
        print(f"[index] {report.summary()}", flush=True)
        os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings), ensure_ascii=False)
        print(
            f"[workers] {workers} API workers on http://{settings.host}:{settings.port}/ (OpenAPI docs at "
            "/docs); the web chat keeps session state in its process: serve it with `qa serve` (one worker)",
            flush=True,
        )
        uvicorn.run(
            "qa.serve.workers:worker_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="warning",
            proxy_headers=False,  # uvicorn would trust X-Forwarded-For from loopback; trusted_proxies decides
            timeout_worker_healthcheck=120,  # a worker opens the index and loads the encoder first
        )
    finally:
        if lite is not None:
            lite.stop()


def worker_app() -> FastAPI:
    """One worker's app (uvicorn calls this in each worker process): the API over every knowledge base."""
    from qa.search.retriever import Retriever
    from qa.serve.api import create_api
    from qa.serve.kbs import KnowledgeBases

    data: dict[str, Any] = json.loads(os.environ[SETTINGS_ENV])
    settings = Settings(**data)
    retriever = Retriever.open(settings.index_dir, settings, documents_dir=settings.documents_dir)
    retriever.ask("郑州市政府工作报告", k=1)  # load the encoder now, not in the first visitor's question
    return create_api(lambda: retriever, settings, kbs=KnowledgeBases(settings, default=retriever))


def main(argv: Sequence[str] | None = None) -> int:
    """`qa serve --workers N` (the API only)."""
    parser = argparse.ArgumentParser(prog="qa serve --workers N", description="N API worker processes")
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--documents", default=None, help="documents folder")
    parser.add_argument("--index", default=None, help="index folder")
    parser.add_argument("--config", default=None, help="a qa.toml with settings")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        if args.workers < 1:
            raise QAError("--workers must be at least 1.")
        settings = load_settings(
            args.config,
            host=args.host,
            port=args.port,
            documents_dir=args.documents,
            index_dir=args.index,
            workers=args.workers,
        )
        serve_workers(settings, args.workers)
    except QAError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    return 0
