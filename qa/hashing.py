"""Content hashes of bytes and files: one copy for the encoders, the index and ingest (standard library only)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_BLOCK = 1 << 22  # 4 MiB per read: files are streamed, never held whole
_SAMPLE = 1 << 20  # bytes read from each end of a file by sampled_file_identity

_CACHED: dict[tuple[str, int, int], str] = {}


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, suffix: bytes = b"") -> str:
    """Hex sha256 of a file's bytes, streamed, followed by `suffix` (e.g. a format version tag)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    h.update(suffix)
    return h.hexdigest()


def sha256_file_cached(path: Path) -> str:
    """sha256_file(path), remembered per (path, size, mtime) for the life of the process."""
    st = Path(path).stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _CACHED:
        _CACHED[key] = sha256_file(path)
    return _CACHED[key]


def sampled_file_identity(path: Path) -> str:
    """Cheap identity of a (possibly multi-GB) file: hex sha256 of its size, first MiB and last MiB.

    Not a content hash: two files that differ only in the middle share it. Good enough to tell model
    weight files apart without reading gigabytes at every start.
    """
    size = Path(path).stat().st_size
    h = hashlib.sha256(str(size).encode())
    with Path(path).open("rb") as fh:
        h.update(fh.read(_SAMPLE))
        if size > 2 * _SAMPLE:
            fh.seek(-_SAMPLE, os.SEEK_END)
            h.update(fh.read(_SAMPLE))
    return h.hexdigest()
