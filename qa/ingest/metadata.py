"""Metadata of a document without a catalog entry, read from its own text."""

from __future__ import annotations

from qa.ingest.catalog import guess_info
from qa.types import DocumentInfo

# Bumped when inference changes, so indexes re-read the metadata of uncatalogued files (no re-embedding).
METADATA_VERSION = 1


def infer_info(file_name: str, text: str) -> DocumentInfo:
    """Title, kind, dates and years of a document, guessed from its opening."""
    return guess_info(file_name, text)
