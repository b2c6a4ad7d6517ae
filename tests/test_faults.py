"""Faults: builds killed with SIGKILL at many moments, damaged index files not covered by test_store,
readers in another process while the index is rebuilt, and a disk that fills up while the index is written.

Every build here is a forced full rebuild whose embeddings come from the session cache, so one build
takes a few seconds and exercises every phase (scan, chunk, embed lookup, FAISS, BM25, sources, swap).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import R2024, REPO, BuiltIndex, one_sentence_with_fix

from qa.errors import IndexProblem
from qa.index.builder import update_index
from qa.index.store import IndexStore
from qa.index.writer import current_version
from qa.search.retriever import Retriever

pytestmark = pytest.mark.integration

GDP = "2023年郑州市地区生产总值是多少？"

_BUILD = """
import resource, signal, sys
from qa.config import Settings
from qa.errors import QAError
from qa.index.builder import update_index
limit = int(sys.argv[4])
if limit:
    # writes past the limit fail with EFBIG instead of killing the process, like a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    report = update_index(sys.argv[1], sys.argv[2], Settings(cache_dir=sys.argv[3]), force=True)
except QAError as exc:
    print(f"QAERROR {exc}", flush=True)
    sys.exit(3)
print(f"DONE {report.passages_total}", flush=True)
"""


def _build_cmd(b: BuiltIndex, limit: int = 0) -> list[str]:
    return [sys.executable, "-c", _BUILD, str(b.documents), str(b.index), b.settings.cache_dir, str(limit)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _answers(b: BuiltIndex, encoder: Any) -> None:
    """The index opens and answers the headline question from the right report."""
    r = Retriever.open(b.index, b.settings, encoder=encoder)
    hits = r.search(GDP, k=3)
    assert hits and hits[0].passage.doc == R2024


# ---- SIGKILL at many moments --------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_loop(private_index: BuiltIndex, real_encoder: Any) -> None:
    """At least 20 builds killed at moments spread over a whole build; the index always opens and answers."""
    b = private_index
    t0 = time.perf_counter()
    full = subprocess.run(_build_cmd(b), env=_env(), capture_output=True, text=True, timeout=600)
    one_build = time.perf_counter() - t0
    assert full.returncode == 0 and "DONE" in full.stdout, full.stderr[-2000:]
    rng = random.Random(20261122)
    kills, finished, swapped, moments = 0, 0, 0, []
    deadline = time.monotonic() + 240
    attempt = 0
    while kills < 20 and attempt < 40 and time.monotonic() < deadline:
        # spread the moments over the whole build (interpreter start included), with jitter
        delay = one_build * ((attempt % 20) + rng.random()) / 20
        attempt += 1
        before = IndexStore.open(b.index).path
        proc = subprocess.Popen(
            _build_cmd(b), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
            moments.append(f"{delay:.1f}")
        else:
            assert proc.wait(timeout=600) == 0  # finished before the kill landed
            finished += 1
        store = IndexStore.open(b.index)  # never a half-written version
        if store.path != before:
            swapped += 1  # the build got as far as the swap (killed while pruning or exiting, or finished)
        assert store.manifest.passages == len(store.passages) == store.dense.faiss.ntotal > 500
        _answers(b, real_encoder)
    print(
        f"\nkill loop: one build {one_build:.1f} s; {kills} killed at {moments} s, {finished} finished first; "
        f"{swapped} times the new version was already live; {time.perf_counter() - t0:.0f} s in all"
    )
    assert kills >= 20
    report = update_index(b.documents, b.index, b.settings, encoder=real_encoder, force=True)
    assert report.written and not report.errors
    assert not list(b.index.glob(".building-*")), "dead temporaries are cleaned up by the next build"
    assert not list(b.index.glob(".CURRENT.*"))
    assert len(list(b.index.glob("v-*"))) <= 2
    _answers(b, real_encoder)


# ---- damaged indexes test_store does not cover ------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        "empty-current",
        "current-to-missing-version",
        "missing-source-text",
        "missing-lexical",
        "manifest-other-format",
        "manifest-not-an-object",
        "manifest-missing-field",
        "vectors-replaced-by-pickle",
    ],
)
def test_more_damage_is_one_sentence_with_the_fix(private_index: BuiltIndex, damage: str) -> None:
    idx = private_index.index
    v = current_version(idx)
    assert v is not None
    mpath = v / "manifest.json"
    if damage == "empty-current":
        (idx / "CURRENT").write_text("", encoding="utf-8")
    elif damage == "current-to-missing-version":
        (idx / "CURRENT").write_text("v-20990101T000000-abcdef", encoding="utf-8")
    elif damage == "missing-source-text":
        next((v / "sources").iterdir()).unlink()
    elif damage == "missing-lexical":
        shutil.rmtree(v / "lexical")
    elif damage == "manifest-other-format":
        m = json.loads(mpath.read_text(encoding="utf-8"))
        m["format_version"] = 99
        mpath.write_text(json.dumps(m), encoding="utf-8")
    elif damage == "manifest-not-an-object":
        mpath.write_text("[1, 2, 3]", encoding="utf-8")
    elif damage == "manifest-missing-field":
        m = json.loads(mpath.read_text(encoding="utf-8"))
        del m["dim"]
        mpath.write_text(json.dumps(m), encoding="utf-8")
    elif damage == "vectors-replaced-by-pickle":
        # an object array saved with pickle: the loader must refuse it, not run it
        import numpy as np

        p = v / "vectors.npy"
        np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        m = json.loads(mpath.read_text(encoding="utf-8"))
        m["files"]["vectors.npy"] = {"size": p.stat().st_size}  # sizes agree: only the loader can notice
        mpath.write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(IndexProblem) as exc:
        IndexStore.open(idx)
    one_sentence_with_fix(str(exc.value))
    with pytest.raises(IndexProblem):
        Retriever.open(idx, private_index.settings)
    # the fix command works: the next update rebuilds a sound index
    report = update_index(private_index.documents, idx, private_index.settings)
    assert report.written
    assert IndexStore.open(idx).manifest.passages == report.passages_total > 500


# ---- readers in another process during a rebuild ----------------------------------------------------


def test_readers_see_a_complete_index_while_another_process_rebuilds(
    private_index: BuiltIndex, real_encoder: Any
) -> None:
    b = private_index
    r = Retriever.open(b.index, b.settings, encoder=real_encoder)
    first = r.store.path
    proc = subprocess.Popen(
        _build_cmd(b), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    opened, answered, paths = 0, 0, set()
    try:
        while proc.poll() is None:
            store = IndexStore.open(b.index)  # whatever CURRENT names is complete
            assert store.manifest.passages == len(store.passages) == store.dense.faiss.ntotal
            paths.add(store.path)
            opened += 1
            ans = r.ask(GDP, k=3)  # the open Retriever answers from a complete version throughout
            assert ans.hits and ans.hits[0].passage.doc == R2024
            # it follows the live version (issue 17: a version check, no restart), never a partial one
            assert r.store.path == first or r.store.path in paths or (r.store.path / "manifest.json").exists()
            answered += 1
    finally:
        out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0 and "DONE" in out
    print(f"\nduring one rebuild in another process: {opened} opens, {answered} answers")
    assert answered >= 1
    after = IndexStore.open(b.index)
    time.sleep(b.settings.version_check_seconds)
    assert after.path != first and r.store.path == after.path
    assert after.manifest.passages == r.store.manifest.passages
    _answers(b, real_encoder)


# ---- disk full while writing ---------------------------------------------------------------------------


def _tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return res.returncode == 0


@pytest.mark.parametrize("how", ["size-limit", "tmpfs"])
def test_disk_full_while_writing_keeps_the_old_index(
    private_index: BuiltIndex, real_encoder: Any, tmp_path: Path, how: str
) -> None:
    """A build that cannot write its files fails with one sentence; the live version is untouched."""
    b = private_index
    limit = 0
    mounted = None
    if how == "size-limit":
        limit = 400_000  # smaller than passages.jsonl and vectors.npy: the write fails with EFBIG
    else:
        mnt = tmp_path / "small-disk"
        size_kb = sum(p.stat().st_size for p in b.index.rglob("*") if p.is_file()) // 1024
        if not _tmpfs(mnt, f"{size_kb + 1500}k"):  # room for the old index and a little more
            pytest.skip("mounting a tmpfs needs root")
        mounted = mnt
        shutil.copytree(b.index, mnt / "index", symlinks=True)
        b = BuiltIndex(mnt / "index", b.documents, b.settings, b.report, b.seconds)
    try:
        old = IndexStore.open(b.index)
        old_files = {p: p.stat().st_size for p in old.path.rglob("*") if p.is_file()}
        versions = set(b.index.glob("v-*"))
        res = subprocess.run(_build_cmd(b, limit), env=_env(), capture_output=True, text=True, timeout=600)
        assert res.returncode == 3, (res.returncode, res.stdout, res.stderr[-3000:])
        message = res.stdout.split("QAERROR ", 1)[1].strip()
        assert "\n" not in message and "Traceback" not in res.stderr, res.stderr[-3000:]
        assert "qa index" in message and "previous index" in message, message
        print(f"\n{how}: {message}")
        now = IndexStore.open(b.index)
        assert now.path == old.path
        assert {p: p.stat().st_size for p in now.path.rglob("*") if p.is_file()} == old_files
        assert not list(b.index.glob(".building-*")), "the half-written version is removed"
        assert set(b.index.glob("v-*")) == versions, "no stray copy of the failed version"
        _answers(b, real_encoder)
    finally:
        if mounted is not None:
            import gc

            gc.collect()  # the opened stores memory-map vectors.npy; a lazy unmount copes with the rest
            subprocess.run(["umount", "-l", str(mounted)], check=False)


def test_size_limit_is_not_inherited() -> None:
    """Sanity check for the fault above: this process has no file size limit of its own."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    assert soft == resource.RLIM_INFINITY
