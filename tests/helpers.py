"""Plain helpers shared by the test modules: repository paths, the session index record, real-text builders.

The pytest fixtures built on them (session_settings, real_encoder, built_index, private_index) are in
conftest.py. pytest puts tests/ on sys.path when it loads that conftest, so `from helpers import ...` works.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
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
    """The real encoder, counting the texts it is asked to embed as passages (`batches`: one list per call;
    a build embeds its new passages first, then the answer line's new sentences, qa.index.sentences)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.fingerprint = inner.fingerprint
        self.calls = 0
        self.texts: list[str] = []
        self.batches: list[list[str]] = []

    def reset(self) -> None:
        """Forget the counts."""
        self.calls = 0
        self.texts = []
        self.batches = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Delegate (not counted)."""
        return self.inner.encode_queries(texts)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Delegate and count."""
        self.calls += 1
        self.texts.extend(texts)
        self.batches.append(list(texts))
        return self.inner.encode_documents(texts, batch_size=batch_size, progress=progress)


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


def unreachable_answers(
    gold: Sequence[Any], documents_dir: Path, chunker: str
) -> tuple[list[str], list[str]]:
    """(ids of answerable gold questions whose answer is in no passage of their document, load errors) after
    cleaning and chunking documents_dir with `chunker`: such a question can never be answered."""
    from qa.index.spec import IndexSpec
    from qa.ingest import load_corpus
    from qa.text.normalize import normalize_for_eval

    cs = IndexSpec.from_settings(Settings(chunker=chunker)).chunker_settings
    corpus = load_corpus(documents_dir, cs, chunker)
    by_doc: dict[str, list[str]] = {}
    for d in corpus.docs:
        for p in d.passages:
            by_doc.setdefault(p.doc, []).append(normalize_for_eval(p.text))
    missing = [
        q.id
        for q in gold
        if q.answerable
        and not any(normalize_for_eval(a) in t for a in q.answers for t in by_doc.get(q.doc or "", []))
    ]
    return missing, [str(e) for e in corpus.errors]


def load_loadtest() -> Any:
    """scripts/loadtest.py as a module (scripts/ is not a package; the tests drive its run_load)."""
    spec = importlib.util.spec_from_file_location("loadtest", REPO / "scripts" / "loadtest.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["loadtest"] = mod  # its dataclasses look their module up while being defined
    spec.loader.exec_module(mod)
    return mod
