"""Writing index versions atomically, the one-writer lock, and pruning old versions.

A build writes a new version into a temporary directory, renames it into place and only then points
CURRENT at it, so a build killed at any moment leaves the previous version loadable.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexProblem
from qa.hashing import sha256_file
from qa.index.dense import DenseIndex
from qa.index.lexical import LexicalIndex
from qa.index.manifest import FORMAT_VERSION, DocEntry, Manifest
from qa.types import DocumentInfo, Passage

Progress = Callable[[str, float | None], None]

FIX_HINT = "run `qa index --force` to rebuild it"
_HASHED_FILE_LIMIT = 64 * 1024 * 1024  # verify sha256 of files up to this size on open; sizes always


def no_progress(_msg: str, _frac: float | None = None) -> None:
    """A progress callback that reports nothing."""


@dataclass
class BuildInput:
    """A document ready to be written: its info, hash, passages and original text."""

    info: DocumentInfo
    sha256: str
    passages: list[Passage]
    original_text: str
    vectors: np.ndarray | None = None  # reused from the previous version when unchanged


@dataclass(frozen=True)
class ModelRecord:
    """What the manifest records about the embedding model."""

    model: str  # what the user asked for ("default", a hub id or a path)
    model_id: str
    fingerprint: str
    dim: int


@dataclass(frozen=True)
class VersionRecord:
    """What the manifest of a new version records besides its documents and files, for either store."""

    model: ModelRecord
    chunker: dict[str, Any]
    chunker_fingerprint: str
    faiss_index: str
    lexicon: dict[str, Any]  # the corpus's lexicon.toml, as parsed
    metadata_version: int  # version of the reader that inferred the metadata of uncatalogued files
    build_seconds: float
    timings: dict[str, float] | None = None


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Write bytes and fsync them."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


_held = threading.local()  # the index folders whose lock this thread holds (the lock is re-entrant)


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock for the one process that writes an index directory.

    Re-entrant within a thread: a caller that must keep other processes out of a longer change (an
    upload saved into the documents folder and indexed, with several workers) takes it around the build,
    and the build's own `writer_lock` passes through."""
    index_dir.mkdir(parents=True, exist_ok=True)
    key = str(index_dir.resolve())
    held: set[str] = getattr(_held, "dirs", set())
    _held.dirs = held
    if key in held:
        yield
        return
    with open(index_dir / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def current_version(index_dir: Path) -> Path | None:
    """The live version directory, or None when there is no index yet."""
    cur = index_dir / "CURRENT"
    if not cur.exists():
        return None
    name = cur.read_text(encoding="utf-8").strip()
    if not name or "/" in name or name.startswith("."):
        raise IndexProblem(f"The index at {index_dir} has a damaged CURRENT file; {FIX_HINT}.")
    return index_dir / name


def version_manifest(
    docs: Sequence[BuildInput], record: VersionRecord, *, files: dict[str, dict[str, Any]]
) -> Manifest:
    """The manifest of a new version of either store (stamped with the time it is made); `files` lists
    the version's files with their sizes and checksums (none for a Milvus version)."""
    model = record.model
    return Manifest(
        format_version=FORMAT_VERSION,
        model=model.model,
        model_id=model.model_id,
        model_fingerprint=model.fingerprint,
        dim=int(model.dim),
        chunker=record.chunker,
        chunker_fingerprint=record.chunker_fingerprint,
        faiss_index=record.faiss_index,
        documents={d.info.file: DocEntry(d.sha256, len(d.passages), d.info.to_dict()) for d in docs},
        passages=sum(len(d.passages) for d in docs),
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        build_seconds=round(record.build_seconds, 3),
        files=files,
        timings=record.timings or {},
        lexicon=record.lexicon,
        metadata_version=record.metadata_version,
    )


def write_version(
    index_dir: Path,
    docs: Sequence[BuildInput],
    vectors: np.ndarray,
    record: VersionRecord,
    *,
    progress: Progress = no_progress,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a complete new version and atomically make it the live one.

    `record`: what its manifest records besides the documents and files.
    `extra_files`: more files of the version (name -> bytes), listed and checksummed like the others.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        passages = [p for d in docs for p in d.passages]
        assert vectors.shape[0] == len(passages)
        progress("写入段落与向量", None)
        write_file(
            tmp / "passages.jsonl",
            "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in passages).encode("utf-8"),
        )
        progress("建立 FAISS 索引", None)
        DenseIndex.build(vectors, record.faiss_index).save(tmp)
        progress("建立 BM25 词法索引", None)
        # the heading travels with every passage of its section into the lexical index
        LexicalIndex.build([p.embed_text for p in passages]).save(tmp / "lexical")
        (tmp / "sources").mkdir()
        for d in docs:
            write_file(tmp / "sources" / f"{d.sha256}.txt", d.original_text.encode("utf-8"))
        for name, data in (extra_files or {}).items():
            write_file(tmp / name, data)
        files: dict[str, dict[str, Any]] = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                size = p.stat().st_size
                rel = str(p.relative_to(tmp))
                files[rel] = {"size": size}
                if size <= _HASHED_FILE_LIMIT:
                    files[rel]["sha256"] = sha256_file(p)
        manifest = version_manifest(docs, record, files=files)
        write_file(tmp / "manifest.json", manifest.to_json().encode("utf-8"))
        fsync_dir(tmp)
        final = index_dir / f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        os.rename(tmp, final)
        fsync_dir(index_dir)
        cur_tmp = index_dir / f".CURRENT.{os.getpid()}.tmp"
        try:
            write_file(cur_tmp, final.name.encode("utf-8"))
            os.replace(cur_tmp, index_dir / "CURRENT")
        except BaseException:
            # CURRENT still names the previous version: the new one must not linger as a stray copy
            with contextlib.suppress(OSError):
                cur_tmp.unlink()
            shutil.rmtree(final, ignore_errors=True)
            raise
        fsync_dir(index_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # disk full, a size limit, permissions: the live version was never touched
        # numpy reports a short write without an errno ("N requested and M written"): a full disk
        why = exc.strerror if exc.errno and exc.strerror else f"{exc}; the disk is probably full"
        raise IndexProblem(
            f"Writing the new index into {index_dir} failed ({why}), so the previous "
            f"index is still the one in use; free some disk space and run `qa index` again."
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune_versions(index_dir)
    return final


def prune_versions(index_dir: Path, keep: int = 2) -> None:
    """Remove old versions (keeping the live one and the one before it) and dead temporaries."""
    live = current_version(index_dir)
    versions = sorted((p for p in index_dir.glob("v-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    stale = [v for v in versions if v != live][: max(0, len(versions) - keep)]
    for v in stale:
        shutil.rmtree(v, ignore_errors=True)
    for tmp in index_dir.glob(".building-*"):
        try:
            pid = int(tmp.name.split("-")[1])
        except (IndexError, ValueError):
            pid = -1
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            alive = pid > 0
        except OSError:
            alive = False
        if not alive:
            shutil.rmtree(tmp, ignore_errors=True)
    for cur_tmp in index_dir.glob(".CURRENT.*.tmp"):
        with contextlib.suppress(OSError):
            cur_tmp.unlink()
