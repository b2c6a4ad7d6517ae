"""Uploaded files: the one place that checks them (name, type, size, content) and saves them.

The HTTP API, the web chat and `Retriever.add_upload` all go through here, so an upload is refused
for the same reasons, with the same sentence, whichever way it arrives.
"""

from __future__ import annotations

import re
from pathlib import Path

from qa.errors import QAError
from qa.ingest.loaders import SUPPORTED_SUFFIXES
from qa.ingest.pipeline import NOT_DOCUMENTS

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
MAX_NAME_BYTES = 200


class UploadRefused(QAError):
    """An upload that cannot be taken; `status` is the HTTP status that fits it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def safe_filename(name: str) -> str:
    """A file name safe to write into the documents folder (no directories, no traversal)."""
    name = name.replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".")
    name = re.sub(r"\s+", " ", name)
    if not name or name in {".", ".."}:
        return ""
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, suffix = Path(name).stem, Path(name).suffix
        name = stem[:60] + suffix
    return name


def check_name(filename: str) -> str:
    """The safe name to store an upload under; UploadRefused (415/422) for a bad name or file type."""
    name = safe_filename(filename)
    if not name:
        raise UploadRefused(f"{filename}: 文件名无效，请改名后再上传。", 422)
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UploadRefused(
            f"{name}: 不支持的文件类型 {suffix or '(无后缀)'}；可上传 {' '.join(SUPPORTED_SUFFIXES)}。", 415
        )
    if name.lower() in NOT_DOCUMENTS:
        # a name the documents folder reserves for notes (README.md) would never be indexed
        name = f"{Path(name).stem}-upload{suffix}"
    return name


def check_size(name: str, size: int, max_upload_mb: int) -> None:
    """UploadRefused (413) when an upload is larger than the limit."""
    if size > max_upload_mb * 1024 * 1024:
        raise UploadRefused(f"{name}: 文件太大（{size / 1e6:.1f} MB），上限 {max_upload_mb} MB。", 413)


def check_upload(filename: str, data: bytes, max_upload_mb: int) -> str:
    """All checks of an upload; returns the name to store it under."""
    name = check_name(filename)
    check_size(name, len(data), max_upload_mb)
    if not data.strip():
        raise UploadRefused(f"{name}: 文件是空的。", 422)
    return name


def save_upload(documents_dir: Path, name: str, data: bytes) -> Path:
    """Write the upload into the documents folder under a free name (never over an existing file)."""
    documents_dir.mkdir(parents=True, exist_ok=True)
    target = documents_dir / name
    stem, suffix, n = target.stem, target.suffix, 1
    while target.exists():
        n += 1
        target = documents_dir / f"{stem}-{n}{suffix}"
    tmp = target.with_name(f".upload-{target.name}")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target
