"""From files in documents/ to citable passages: load, clean (with offset map), structure, chunk, metadata.

Which files are documents: every file in the folder with a suffix in SUPPORTED_SUFFIXES, except
files named README.md and files whose catalog entry says `skip = true` (CORPUS.md is marked so).
catalog.toml itself has an unsupported suffix and is never read as a document.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import DocumentError, QAError
from qa.ingest.catalog import read_catalog
from qa.ingest.chunking import Chunk, ChunkerSettings, chunk_text, naive_chunks, text_hash
from qa.ingest.clean import CleanText, LineIndex, clean_text
from qa.ingest.loaders import SUPPORTED_SUFFIXES, RawDocument, load_file
from qa.ingest.metadata import infer_info
from qa.ingest.structure import find_sections
from qa.types import DocumentInfo, Passage, SourceSpan

__all__ = [
    "NOT_DOCUMENTS",
    "CorpusResult",
    "ProcessedDocument",
    "SUPPORTED_SUFFIXES",
    "document_files",
    "load_corpus",
    "process_document",
    "read_info",
]

CHUNKERS = ("chinese", "naive")
NOT_DOCUMENTS = {"readme.md"}
EMBED_HEADING_CHARS = 40


@dataclass
class ProcessedDocument:
    """One document after ingest: its metadata, passages and the texts they point into."""

    info: DocumentInfo
    sha256: str  # of the raw file bytes
    passages: list[Passage]
    original_text: str
    clean: CleanText
    encoding: str = "utf-8"
    pages: list[tuple[int, int]] | None = None


@dataclass
class CorpusResult:
    """All documents that loaded, and one DocumentError per file that did not."""

    docs: list[ProcessedDocument] = field(default_factory=list)
    errors: list[DocumentError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passages(self) -> list[Passage]:
        """Every passage of every document, in document order."""
        return [p for d in self.docs for p in d.passages]


def _page_of(pages: list[tuple[int, int]] | None, offset: int) -> int | None:
    if not pages:
        return None
    starts = [s for s, _ in pages]
    k = bisect.bisect_right(starts, offset) - 1
    return pages[max(k, 0)][1]


def embed_text_for(section: list[str], text: str) -> str:
    """Text given to the encoder: the nearest heading(s), '：', then the passage text."""
    if not section:
        return text
    heading = section[-1]
    if len(section) >= 2 and len(section[-2]) + len(heading) <= EMBED_HEADING_CHARS:
        heading = f"{section[-2]} {heading}"
    return f"{heading}：{text}"


def _doc_key(path: Path) -> str:
    """Id prefix of a document's passages: its file stem, made safe for ids."""
    stem = re.sub(r"[^\w\u4e00-\u9fff-]+", "_", path.stem).strip("_")
    return stem or hashlib.sha256(path.name.encode()).hexdigest()[:8]


def _passages(
    path: Path,
    info: DocumentInfo,
    chunks: list[Chunk],
    original: str,
    clean: CleanText | None,
    pages: list[tuple[int, int]] | None,
) -> list[Passage]:
    lines = LineIndex(original)
    key = _doc_key(path)
    out: list[Passage] = []
    for n, ch in enumerate(chunks):
        if clean is not None:
            start_char, end_char = clean.span_of(ch.start, ch.end)
        else:
            start_char, end_char = ch.start, ch.end
        span = SourceSpan(
            start_line=lines.line_of(start_char),
            end_line=lines.line_of(max(start_char, end_char - 1)),
            start_char=start_char,
            end_char=end_char,
            page_start=_page_of(pages, start_char),
            page_end=_page_of(pages, max(start_char, end_char - 1)),
        )
        out.append(
            Passage(
                id=f"{key}-{text_hash(ch.text)}-{n}",
                doc=path.name,
                title=info.title,
                year=info.year,
                section=list(ch.path),
                text=ch.text,
                embed_text=embed_text_for(ch.path, ch.text),
                span=span,
            )
        )
    return out


def process_document(
    path: Path,
    info: DocumentInfo | None,
    settings: ChunkerSettings,
    chunker: str = "chinese",
    progress: Callable[[float], None] | None = None,
) -> ProcessedDocument:
    """Load, clean, structure and chunk one file; DocumentError if it cannot be read.

    `progress(fraction)` reports the cleaning of a long text block by block (0.9 = cleaned).
    """
    if chunker not in CHUNKERS:
        raise QAError(f"Unknown chunker '{chunker}'; use one of: {', '.join(CHUNKERS)}.")
    path = Path(path)
    raw: RawDocument = load_file(path)
    clean = clean_text(raw.text, (lambda f: progress(0.9 * f)) if progress is not None else None)
    if not clean.text.strip():
        raise DocumentError(path.name, "nothing is left after removing page numbers, watermarks and noise")
    if info is None:
        info = infer_info(path.name, clean.text)
    if chunker == "naive":
        chunks = naive_chunks(raw.text, settings)
        passages = _passages(path, info, chunks, raw.text, None, raw.pages)
    else:
        chunks = chunk_text(clean.text, find_sections(clean.text), settings)
        passages = _passages(path, info, chunks, raw.text, clean, raw.pages)
    if not passages:
        raise DocumentError(path.name, "no passages could be made from its text")
    return ProcessedDocument(info, raw.sha256, passages, raw.text, clean, raw.encoding, raw.pages)


def read_info(path: Path) -> DocumentInfo:
    """The metadata a file's own text gives (as for a file without a catalog entry); DocumentError if unreadable."""
    raw = load_file(Path(path))
    return infer_info(Path(path).name, clean_text(raw.text).text)


def document_files(documents_dir: Path, skip: set[str] | None = None) -> list[Path]:
    """The files of documents_dir that are documents (supported suffix, not README, not skipped)."""
    skip = skip or set()
    return sorted(
        p
        for p in Path(documents_dir).iterdir()
        if p.is_file()
        and p.suffix.lower() in SUPPORTED_SUFFIXES
        and p.name.lower() not in NOT_DOCUMENTS
        and p.name not in skip
        and not p.name.startswith(".")
    )


def load_corpus(
    documents_dir: Path,
    settings: ChunkerSettings,
    chunker: str = "chinese",
    files: list[Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> CorpusResult:
    """Process every document of documents_dir (or `files`); unreadable files land in .errors."""
    documents_dir = Path(documents_dir)
    if not documents_dir.is_dir():
        raise QAError(
            f"The documents folder {documents_dir} does not exist; create it or pass another folder."
        )
    catalog = read_catalog(documents_dir)
    result = CorpusResult(warnings=list(catalog.warnings))
    paths = [Path(f) for f in files] if files is not None else document_files(documents_dir, catalog.skip)
    for path in paths:
        if progress is not None:
            progress(path.name)
        try:
            result.docs.append(process_document(path, catalog.infos.get(path.name), settings, chunker))
        except DocumentError as exc:
            result.errors.append(exc)
    return result
