"""Starting a qa server in another process: a free loopback port, and waiting until its /health answers.

Used by scripts/loadtest.py and the tests that start `app.py` or the API in a subprocess; stopping it too.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at this moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_healthy(
    proc: subprocess.Popen[Any],
    url: str,
    timeout: float,
    *,
    started: float | None = None,
    name: str = "server",
    log: Path | None = None,
) -> float:
    """Poll `url`/health until it answers 200; seconds since `started` (a perf_counter; default: now).

    Raises RuntimeError, with the end of `log`, when the process exits first or `timeout` seconds after
    `started` pass. The first start of a server may build the index, so callers give generous timeouts.
    """
    import httpx  # a dev dependency (gradio brings it too); only scripts and tests start servers

    t0 = time.perf_counter() if started is None else started
    deadline = t0 + timeout
    health = url.rstrip("/") + "/health"

    def tail() -> str:
        return log.read_text(encoding="utf-8", errors="replace")[-5000:] if log is not None else ""

    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail()}")
        try:
            if httpx.get(health, timeout=5).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} not ready after {timeout:.0f} s:\n{tail()}")


def stop_process(proc: subprocess.Popen[Any], grace: float = 20.0) -> None:
    """Terminate a server started by us (only it), and kill it if it has not exited after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
