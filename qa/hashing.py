"""Content hashes of bytes, files and texts: the one place the package computes them."""

from __future__ import annotations

import hashlib
from pathlib import Path

_FILE_CACHE: dict[tuple[str, int, float], str] = {}


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file_cached(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) for the life of the process."""
    st = Path(path).stat()
    key = (str(path), st.st_size, st.st_mtime)
    if key not in _FILE_CACHE:
        _FILE_CACHE[key] = sha256_file(Path(path))
    return _FILE_CACHE[key]
