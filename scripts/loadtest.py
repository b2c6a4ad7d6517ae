"""Load test of the HTTP API on 127.0.0.1: concurrent clients asking the dev gold questions, a few uploads.

    .venv/bin/python scripts/loadtest.py                       # starts `qa serve --api-only` on a copy of documents/
    .venv/bin/python scripts/loadtest.py --clients 16 --questions 2000 --uploads 6
    .venv/bin/python scripts/loadtest.py --url http://127.0.0.1:7860 --pid 1234   # an already running server
    .venv/bin/python scripts/loadtest.py --workers 2 --uploads 6 --deletes 3     # `qa serve --workers 2`
    .venv/bin/python scripts/loadtest.py --workers 2 --store milvus ...          # the same over milvus-lite

Bounded in count (--questions) and in time (--max-seconds): it stops by itself and prints latency
percentiles, throughput, errors and the server's RSS sampled across the run (--json for a machine copy).
Uploads are small new documents (expected 200) and one re-upload of the same bytes (expected 409).
Deletes remove earlier uploads (DELETE /api/kb/default/documents/{name}, expected 200); an answer that
cites a deleted document more than a second after its delete returned counts as an error, and so does
one that misses an upload's marker asked more than a second after the upload returned (with several
workers, each checks the live version every 0.5 s). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from qa.serve.process import free_port, stop_process, wait_until_healthy

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "eval" / "gold" / "dev.jsonl"


@dataclass
class LoadResult:
    """What one load run measured."""

    clients: int
    questions_planned: int
    questions_done: int = 0
    uploads_done: int = 0
    deletes_done: int = 0
    workers_seen: int = 0
    stale_checks: int = 0  # answers checked against the uploads and deletes finished a second before
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by_time: bool = False
    latency_ms: dict[str, float] = field(default_factory=dict)
    upload_ms: list[float] = field(default_factory=list)
    throughput_qps: float = 0.0
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MB)
    rss_summary: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for people."""
        lat = self.latency_ms
        rss = self.rss_summary
        return "\n".join(
            [
                f"{self.questions_done}/{self.questions_planned} questions, {self.uploads_done} uploads and "
                f"{self.deletes_done} deletes from {self.clients} clients in {self.seconds:.1f} s"
                + (f", answered by {self.workers_seen} worker processes" if self.workers_seen else "")
                + (" (stopped by the time limit)" if self.stopped_by_time else ""),
                f"errors: {len(self.errors)}" + (f" (first: {self.errors[0]})" if self.errors else ""),
                f"latency ms: p50 {lat.get('p50', 0):.0f}  p95 {lat.get('p95', 0):.0f}  "
                f"p99 {lat.get('p99', 0):.0f}  max {lat.get('max', 0):.0f}",
                f"throughput: {self.throughput_qps:.1f} questions/s; {self.stale_checks} answers checked "
                "against uploads and deletes finished a second earlier",
                f"server RSS MB: start {rss.get('start', 0):.0f}  after warm-up {rss.get('warm', 0):.0f}  "
                f"end {rss.get('end', 0):.0f}  max {rss.get('max', 0):.0f}  "
                f"growth after warm-up {rss.get('growth_after_warm', 0):+.0f}",
            ]
        )


def gold_questions(path: Path = GOLD) -> list[str]:
    """The questions of a gold JSONL file."""
    return [
        json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def _upload_doc(n: int, marker: str | None = None) -> tuple[str, bytes]:
    marker = marker or uuid.uuid4().hex[:8]
    text = (
        f"郑州市负载测试资料第{n}号（{marker}）\n\n"
        f"郑州市在负载测试中新建的第{n}号观测站编号LT{marker}，位于金水区，于2025年投入使用。\n"
    )
    return f"负载测试 {n}-{marker}.txt", text.encode("utf-8")


def run_load(
    base_url: str,
    questions: Sequence[str],
    *,
    clients: int = 16,
    total: int = 2000,
    uploads: int = 4,
    deletes: int = 0,
    max_seconds: float = 900.0,
    server_pid: int | None = None,
    sample_every: float = 0.5,
    timeout: float = 120.0,
) -> LoadResult:
    """Send `total` questions from `clients` threads (plus `uploads` uploads and `deletes` deletes of
    earlier uploads) and measure."""
    res = LoadResult(clients=clients, questions_planned=total)
    lock = threading.Lock()
    next_i = 0
    latencies: list[float] = []
    stop = threading.Event()
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    # uploads go out at evenly spread moments of the first half of the run, so that the second half's
    # answers check what they changed (a fast server ends a short run before a late upload is indexed);
    # the last one re-sends earlier bytes (a 409)
    span = total / 2
    upload_at = {int(span * (j + 1) / (uploads + 1)): j for j in range(uploads)}
    # deletes go out between the uploads, each removing the oldest upload not yet removed
    delete_at = {int(span * (j + 1.5) / (uploads + 1)): j for j in range(min(deletes, max(uploads - 1, 0)))}
    sent_upload: dict[str, bytes] = {}  # name -> bytes of each upload indexed
    uploaded: dict[str, tuple[str, float]] = {}  # name -> (marker, when the upload returned)
    deleted: dict[str, float] = {}  # name -> when the delete returned
    deleting: set[str] = set()

    proc = psutil.Process(server_pid) if server_pid else None

    def rss() -> float:
        # the server and its worker processes (and a milvus-lite server it started)
        assert proc is not None
        total_rss = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total_rss += child.memory_info().rss
        return total_rss / 2**20

    def sampler() -> None:
        while not stop.is_set():
            if proc is not None:
                with contextlib.suppress(psutil.Error):
                    res.rss_mb.append((time.perf_counter() - t0, rss()))
            stop.wait(sample_every)

    def client(cid: int) -> None:
        nonlocal next_i
        with httpx.Client(base_url=base_url, timeout=timeout) as c:
            while True:
                with lock:
                    if next_i >= total or time.perf_counter() > deadline:
                        if next_i < total:
                            res.stopped_by_time = True
                        return
                    i = next_i
                    next_i += 1
                if i in upload_at:
                    j = upload_at[i]
                    marker = uuid.uuid4().hex[:8]
                    with lock:  # the same bytes as an upload still indexed (not one deleted meanwhile)
                        again = [d for n, d in sent_upload.items() if n not in deleted and n not in deleting]
                    if j == uploads - 1 and again:
                        name, data, want = "重复上传.txt", again[-1], 409
                    else:
                        (name, data), want = _upload_doc(j, marker), 200
                    t = time.perf_counter()
                    try:
                        r = c.post("/api/documents", files={"file": (name, data, "text/plain")})
                        ok = r.status_code == want
                        why = f"upload {name}: {r.status_code} {r.text[:200]}"
                        if ok and want == 200:
                            with lock:
                                added = r.json()["added"][0]
                                uploaded[added] = (marker, time.perf_counter())
                                sent_upload[added] = data
                    except httpx.HTTPError as exc:
                        ok, why = False, f"upload {name}: {type(exc).__name__}: {exc}"
                    with lock:
                        res.upload_ms.append((time.perf_counter() - t) * 1000)
                        res.uploads_done += 1
                        if not ok:
                            res.errors.append(why)
                if i in delete_at:
                    waited = time.perf_counter()
                    while True:  # the upload it removes may still be being indexed
                        with lock:
                            gone = next((n for n in uploaded if n not in deleted and n not in deleting), None)
                            if gone is not None:
                                deleting.add(gone)
                        if gone is not None or time.perf_counter() - waited > 60:
                            break
                        time.sleep(0.2)
                    if gone is not None:
                        t = time.perf_counter()
                        try:
                            r = c.delete(f"/api/kb/default/documents/{gone}")
                            ok, why = r.status_code == 200, f"delete {gone}: {r.status_code} {r.text[:200]}"
                        except httpx.HTTPError as exc:
                            ok, why = False, f"delete {gone}: {type(exc).__name__}: {exc}"
                        with lock:
                            res.upload_ms.append((time.perf_counter() - t) * 1000)
                            res.deletes_done += 1
                            if ok:
                                deleted[gone] = time.perf_counter()
                            else:
                                res.errors.append(why)
                # every fifth question asks for the newest upload's marker instead: the check of freshness
                with lock:
                    fresh = [(n, m, at) for n, (m, at) in uploaded.items() if n not in deleted]
                probe = fresh[-1] if fresh and i % 5 == 0 else None
                q = f"观测站编号LT{probe[1]}在哪里？" if probe else questions[i % len(questions)]
                t = time.perf_counter()
                sent = time.perf_counter()
                try:
                    r = c.post("/api/ask", json={"question": q, "k": 5})
                    body = r.json()
                    ok = r.status_code == 200 and bool(body.get("text"))
                    why = f"ask {q!r}: {r.status_code} {r.text[:200]}"
                    cited = {h["passage"]["doc"] for h in body.get("hits", [])}
                except (httpx.HTTPError, ValueError) as exc:
                    ok, why, cited = False, f"ask {q!r}: {type(exc).__name__}: {exc}", set()
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    latencies.append(ms)
                    res.questions_done += 1
                    if not ok:
                        res.errors.append(why)
                    checked = any(sent - at > 1.0 for at in deleted.values())
                    for n in cited:
                        if n in deleted and sent - deleted[n] > 1.0:
                            res.errors.append(
                                f"ask {q!r} cited {n}, deleted {sent - deleted[n]:.1f} s before"
                            )
                    if probe and sent - probe[2] > 1.0 and probe[0] not in deleted:
                        checked = True
                        if probe[0] not in cited:
                            res.errors.append(
                                f"ask {q!r} missed {probe[0]}, uploaded {sent - probe[2]:.1f} s before"
                            )
                    res.stale_checks += checked

    sampler_thread = threading.Thread(target=sampler, daemon=True)
    sampler_thread.start()
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(max(0.0, deadline - time.perf_counter()) + timeout + 5)
    res.seconds = time.perf_counter() - t0
    stop.set()
    sampler_thread.join(5)
    if any(th.is_alive() for th in threads):
        res.stopped_by_time = True
        res.errors.append("some clients were still waiting for a reply at the time limit")
    res.latency_ms = {
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies, default=0.0),
        "mean": statistics.fmean(latencies) if latencies else 0.0,
    }
    res.throughput_qps = res.questions_done / res.seconds if res.seconds else 0.0
    # a fast server can finish the questions before the last upload is indexed: the changes are then
    # checked once more after the run, over fresh connections (so every worker gets asked)
    _check_after_the_run(base_url, uploaded, deleted, res)
    res.workers_seen = _count_workers(base_url)
    if res.rss_mb:
        mbs = [m for _, m in res.rss_mb]
        warm = mbs[min(len(mbs) - 1, max(1, len(mbs) // 10))]  # after the first tenth of the run
        res.rss_summary = {
            "start": mbs[0],
            "warm": warm,
            "end": mbs[-1],
            "max": max(mbs),
            "growth_after_warm": mbs[-1] - warm,
        }
    return res


def _check_after_the_run(
    base_url: str,
    uploaded: dict[str, tuple[str, float]],
    deleted: dict[str, float],
    res: LoadResult,
    rounds: int = 8,
) -> None:
    """A second after the last upload or delete finished: the newest upload still indexed is found and no
    deleted one is cited, asked `rounds` times over fresh connections; each answer counts as a check."""
    if not uploaded:
        return
    last = max([at for _, at in uploaded.values()] + list(deleted.values()))
    time.sleep(max(0.0, last + 1.1 - time.perf_counter()))
    live = [(n, m) for n, (m, _) in uploaded.items() if n not in deleted]
    asks = [(n, m, True) for n, m in live[-1:]] + [
        (n, uploaded[n][0], False) for n in deleted if n in uploaded
    ]
    for _ in range(rounds):
        for name, marker, wanted in asks:
            q = f"观测站编号LT{marker}在哪里？"
            try:
                with httpx.Client(base_url=base_url, timeout=120) as c:
                    r = c.post("/api/ask", json={"question": q, "k": 5})
                cited = {h["passage"]["doc"] for h in r.json().get("hits", [])}
            except (httpx.HTTPError, ValueError) as exc:
                res.errors.append(f"ask {q!r} after the run: {type(exc).__name__}: {exc}")
                continue
            res.stale_checks += 1
            if wanted and name not in cited:
                res.errors.append(f"ask {q!r} after the run missed {name}")
            if not wanted and name in cited:
                res.errors.append(f"ask {q!r} after the run cited {name}, which was deleted")


def _count_workers(base_url: str, tries: int = 40) -> int:
    """How many worker processes answer on the port (GET /api/kb names its worker), over fresh connections."""
    pids = set()
    for _ in range(tries):
        try:
            with httpx.Client(base_url=base_url, timeout=30) as c:
                pids.add(c.get("/api/kb").json()["worker"])
        except (httpx.HTTPError, ValueError, KeyError):
            return 0
    return len(pids)


class Server:
    """`qa serve --api-only` (or app.py with --app) on a free loopback port, in a subprocess."""

    def __init__(
        self,
        documents: Path,
        index: Path,
        log: Path,
        app: bool = False,
        port: int | None = None,
        workers: int = 1,
        store_env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("w", encoding="utf-8")
        args = ["--port", str(self.port), "--documents", str(documents), "--index", str(index)]
        if workers > 1:
            cmd = [sys.executable, "-m", "qa.cli", "serve", "--workers", str(workers), *args]
        elif app:
            cmd = [sys.executable, str(REPO / "app.py"), *args]
        else:
            cmd = [
                sys.executable,
                "-c",
                "import sys; from qa.serve.api import main; sys.exit(main(sys.argv[1:]))",
                *args,
            ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO), **(store_env or {})}
        # all clients come from 127.0.0.1: the per-client rate limit would count them as one
        env.setdefault("QA_RATE_LIMIT_PER_MINUTE", "0")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.log = log

    def wait(self, timeout: float = 900.0) -> None:
        """Until /health answers (the first start builds the index)."""
        wait_until_healthy(self.proc, self.url, timeout, log=self.log)

    def stop(self) -> None:
        """Terminate this server process (only it)."""
        stop_process(self.proc)
        self._log.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: start a server on a copy of documents/ (or use --url), run the load, print figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running server (default: start one)")
    ap.add_argument("--pid", type=int, help="the running server's process id, for RSS sampling")
    ap.add_argument(
        "--app", action="store_true", help="start app.py (web chat + API) instead of the API only"
    )
    ap.add_argument("--documents", default=str(REPO / "documents"), help="copied into a temporary folder")
    ap.add_argument("--index", help="an index to copy (saves the first build); default: build one")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--uploads", type=int, default=4)
    ap.add_argument("--deletes", type=int, default=0, help="deletes of earlier uploads during the run")
    ap.add_argument("--workers", type=int, default=1, help="start `qa serve --workers N` (API only)")
    ap.add_argument("--store", default="embedded", choices=["embedded", "milvus"], help="the index's store")
    ap.add_argument("--max-seconds", type=float, default=1200.0)
    ap.add_argument("--gold", default=str(GOLD))
    ap.add_argument("--json", help="write the result as JSON to this file")
    args = ap.parse_args(argv)
    questions = gold_questions(Path(args.gold))
    server = None
    work = None
    try:
        if args.url:
            url, pid = args.url.rstrip("/"), args.pid
        else:
            work = Path(tempfile.mkdtemp(prefix="qa-load-"))
            docs = work / "documents"
            docs.mkdir()
            for f in Path(args.documents).iterdir():
                if f.is_file():
                    shutil.copy2(f, docs / f.name)
                    (docs / f.name).chmod(0o644)
            if args.index:
                shutil.copytree(args.index, work / "index", symlinks=True)
            store_env = {"QA_STORE": args.store, "QA_MILVUS_URI": str(work / "milvus.db")}
            server = Server(
                docs,
                work / "index",
                work / "server.log",
                app=args.app,
                workers=args.workers,
                store_env=store_env,
            )
            print(f"[load] starting server on {server.url} (log {server.log})", flush=True)
            server.wait()
            url, pid = server.url, server.proc.pid
        # one warm-up question so the model load is not counted as latency
        httpx.post(url + "/api/ask", json={"question": questions[0]}, timeout=300)
        print(
            f"[load] {args.clients} clients, {args.questions} questions, {args.uploads} uploads, "
            f"{args.deletes} deletes, {args.workers} worker(s), {args.store} store",
            flush=True,
        )
        res = run_load(
            url,
            questions,
            clients=args.clients,
            total=args.questions,
            uploads=args.uploads,
            deletes=args.deletes,
            max_seconds=args.max_seconds,
            server_pid=pid,
        )
        print(res.summary(), flush=True)
        if res.errors and server is not None:
            print(
                "[load] end of the server log:\n" + server.log.read_text(encoding="utf-8")[-4000:], flush=True
            )
        if args.json:
            Path(args.json).write_text(
                json.dumps(asdict(res), ensure_ascii=False, indent=1), encoding="utf-8"
            )
        return 1 if res.errors else 0
    finally:
        if server is not None:
            server.stop()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
