"""Plain helpers shared by the test modules: repository paths, the session index record, real-text builders.

The pytest fixtures built on them (session_settings, real_encoder, built_index, private_index) are in
conftest.py. pytest puts tests/ on sys.path when it loads that conftest, so `from helpers import ...` works.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.index.builder import UpdateReport

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = REPO / "documents"
R2024 = "2024-zhengzhou-government-work-report.txt"


@dataclass
class BuiltIndex:
    """The session index: where it is, the documents it was built from, and how the build went."""

    index: Path
    documents: Path
    settings: Settings
    report: UpdateReport
    seconds: float

    def copy(self, dest: Path) -> BuiltIndex:
        """A private copy (index + documents) for tests that change things."""
        shutil.copytree(self.index, dest / "index", symlinks=True)
        shutil.copytree(self.documents, dest / "documents")
        return BuiltIndex(dest / "index", dest / "documents", self.settings, self.report, self.seconds)


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed as passages."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.fingerprint = inner.fingerprint
        self.calls = 0
        self.texts: list[str] = []

    def reset(self) -> None:
        """Forget the counts."""
        self.calls = 0
        self.texts = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Delegate (not counted)."""
        return self.inner.encode_queries(texts)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Delegate and count."""
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.encode_documents(texts, batch_size=batch_size, progress=progress)


def _seed_cache(cache: Path) -> None:
    """Reuse the converted model and embeddings the user's cache already holds (keeps the suite fast).

    The session cache is still a fresh directory, so texts a test writes for the first time are really
    embedded (the counts below depend on that); a machine with an empty cache just pays the full build once.
    """
    cache.mkdir(parents=True, exist_ok=True)
    user = Settings().resolved_cache_dir()
    models = user / "models"
    if models.is_dir() and any((m / "conversion.json").exists() for m in models.iterdir()):
        (cache / "models").symlink_to(models, target_is_directory=True)
    db = user / "embeddings.sqlite"
    if db.exists():
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(str(cache / "embeddings.sqlite"))
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()


def _share_embeddings(cache: Path) -> None:
    """Give the user's cache the session's embeddings of documents/, so the next run starts warm.

    Entries are keyed by (model fingerprint, text hash), so adding them never changes what any index holds.
    """
    user_db = Settings().resolved_cache_dir() / "embeddings.sqlite"
    if not user_db.exists():
        return
    db = sqlite3.connect(str(user_db), timeout=30)
    try:
        db.execute("ATTACH DATABASE ? AS s", (str(cache / "embeddings.sqlite"),))
        db.execute("INSERT OR IGNORE INTO emb SELECT fp, key, vec FROM s.emb")
        db.commit()
    except sqlite3.Error:
        pass  # a busy or odd user cache only costs the next run some time
    finally:
        db.close()


def real_excerpt(marker: str, paragraphs: int = 4, start: int = 40, source: str = R2024) -> str:
    """A small document of real report paragraphs, each tagged with `marker` so its passages are new text."""
    lines = [ln.strip() for ln in (DOCUMENTS / source).read_text(encoding="utf-8").splitlines()]
    long = [ln for ln in lines if len(ln) >= 80][start : start + paragraphs]
    assert len(long) == paragraphs
    body = "\n\n".join(f"{p}（{marker}）" for p in long)
    return f"郑州市政府工作报告摘编（{marker}）\n\n{body}\n"


def new_marker() -> str:
    """A tag no earlier run can have embedded."""
    return f"摘编{uuid.uuid4().hex[:8]}"


def one_sentence_with_fix(message: str) -> None:
    """The house rule for index problems: one sentence, naming the command that fixes it."""
    assert "qa index" in message, message
    assert "\n" not in message and "Traceback" not in message, message
    assert message.rstrip().endswith((".", "。")), message


def minimal_pdf(pages: list[list[str]]) -> bytes:
    """A minimal PDF with one Helvetica text line per entry, one page per list."""
    n = len(pages)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(n))}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        body = (
            ("BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({ln}) Tj T*" for ln in lines) + " ET")
            if lines
            else ""
        )
        content = body.encode()
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = b"%PDF-1.4\n"
    offsets = []
    for k, o in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{k} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out
