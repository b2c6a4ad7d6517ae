"""Ingest: from files in a documents folder to citable passages.

loaders (bytes -> text) -> clean (noise removed, offset map kept) -> structure (heading paths) ->
chunking (passages) -> metadata (catalog entry, or inferred from the text); `pipeline` wires them.
"""

from __future__ import annotations

from qa.ingest.pipeline import (
    NOT_DOCUMENTS,
    SUPPORTED_SUFFIXES,
    CorpusResult,
    ProcessedDocument,
    document_files,
    load_corpus,
    process_document,
)

__all__ = [
    "NOT_DOCUMENTS",
    "SUPPORTED_SUFFIXES",
    "CorpusResult",
    "ProcessedDocument",
    "document_files",
    "load_corpus",
    "process_document",
]
