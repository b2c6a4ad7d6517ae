"""Uploaded files: the one place that checks them (name, type, size, content), stages them and records
every change to the corpus.

The HTTP API, the web chat and `Retriever.add_upload` all go through here, so an upload is refused
for the same reasons, with the same sentence, whichever way it arrives.

Staging: an upload is written into ``documents/.staging/<pid>-<random>/`` (on the documents folder's own
file system, so committing it is one rename), indexed from there, and moved into ``documents/`` only by the
index build that took it in (`qa.index.builder.update_index(staged=...)`). A file that cannot be indexed
never enters ``documents/``; what a killed process left in ``.staging`` is removed by `clean_stale_staging`
at the next start.

Audit log: every change to the corpus (added, updated, removed) is appended to ``<index>/audit.jsonl`` as
one JSON object per line: time, action, file, sha256, who and how.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.ingest.loaders import SUPPORTED_SUFFIXES
from qa.ingest.pipeline import NOT_DOCUMENTS

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
MAX_NAME_BYTES = 200
STAGING = ".staging"
AUDIT_LOG = "audit.jsonl"


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


def _shown(filename: str) -> str:
    """A name as it may appear in a message: printable and short."""
    shown = _UNSAFE.sub("_", filename.replace("\\", "/").split("/")[-1])
    return shown if len(shown) <= 80 else shown[:60] + "…" + shown[-10:]


def check_name(filename: str) -> str:
    """The safe name to store an upload under; UploadRefused (415/422) for a bad name or file type."""
    base = filename.replace("\\", "/").split("/")[-1].strip()
    if (
        base
        and Path(base.strip(".")).suffix == ""
        and base.lower().lstrip(".") in {s[1:] for s in SUPPORTED_SUFFIXES}
    ):
        # "...txt" or ".txt": only dots and a type, no name in front of it
        raise UploadRefused(
            f"{_shown(filename)}: 文件名只有后缀、没有名字，请改成例如“报告{Path('x.' + base.lstrip('.')).suffix}”再上传。",
            422,
        )
    name = safe_filename(filename)
    if not name:
        raise UploadRefused(f"{_shown(filename)}: 文件名无效，请改名后再上传。", 422)
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


def free_name(documents_dir: Path, name: str, taken: Iterable[str] = ()) -> str:
    """`name`, or `stem-2.suffix`, `stem-3.suffix`, … : the first that is neither in the folder nor in `taken`."""
    taken = set(taken)
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while candidate in taken or (documents_dir / candidate).exists():
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    return candidate


def save_upload(documents_dir: Path, name: str, data: bytes) -> Path:
    """Write the upload straight into the documents folder under a free name (never over an existing file).

    The server stages uploads instead (`staging`); this is for callers that index the folder themselves.
    """
    documents_dir.mkdir(parents=True, exist_ok=True)
    target = documents_dir / free_name(documents_dir, name)
    tmp = target.with_name(f".upload-{target.name}")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


@contextlib.contextmanager
def staging(documents_dir: Path) -> Iterator[Path]:
    """A fresh staging folder for this process inside ``documents/.staging``; removed with what is left in it.

    OSError when the documents folder cannot be written.
    """
    root = documents_dir / STAGING
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            root.rmdir()  # only when empty: another upload may be staging


def stage_file(folder: Path, name: str, data: bytes) -> Path:
    """Write an upload's bytes into a staging folder under its name, flushed to disk."""
    path = folder / name
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_staging(documents_dir: Path) -> list[str]:
    """Remove what dead processes left: staging folders and half-written ``.upload-*`` files; their names."""
    removed: list[str] = []
    root = documents_dir / STAGING
    if root.is_dir():
        for folder in root.iterdir():
            try:
                pid = int(folder.name.split("-", 1)[0])
            except ValueError:
                pid = -1
            if pid == os.getpid() or _pid_alive(pid):
                continue
            removed += [f"{STAGING}/{folder.name}/{p.name}" for p in folder.glob("*")] or [
                f"{STAGING}/{folder.name}"
            ]
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folder.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            root.rmdir()
    if documents_dir.is_dir():
        for tmp in documents_dir.glob(".upload-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp.name)
    return removed


# ---- the audit log ------------------------------------------------------------------------------------


def audit_record(
    action: str, file: str, sha256: str, *, actor: str, via: str, client: str = "", **extra: Any
) -> dict[str, Any]:
    """One audit entry: what happened to which file (and its hash), who did it, how, and when (UTC)."""
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "action": action,
        "file": file,
        "sha256": sha256,
        "actor": actor,
        "via": via,
        "client": client,
        **extra,
    }


def append_audit(index_dir: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Append records to ``<index>/audit.jsonl`` (one JSON object per line, fsynced); how many were written."""
    lines = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records)
    if not lines:
        return 0
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / AUDIT_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, lines.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return lines.count("\n")


def read_audit(index_dir: Path) -> list[dict[str, Any]]:
    """Every record of ``<index>/audit.jsonl``, oldest first ([] when there is none)."""
    path = index_dir / AUDIT_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_changes(
    before: Mapping[str, str],
    after: Mapping[str, str],
    *,
    actor: str,
    via: str,
    client: str = "",
    **extra: Any,
) -> list[dict[str, Any]]:
    """Audit records for the difference between two {file: sha256} maps of an index's documents."""
    out = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        action = "add" if old is None else "remove" if new is None else "update"
        out.append(audit_record(action, name, new or old or "", actor=actor, via=via, client=client, **extra))
    return out
