"""Shared fixtures: the real documents folder and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = REPO / "documents"
REPORT_FILES = sorted(p.name for p in DOCUMENTS.glob("*.txt"))


@pytest.fixture(scope="session")
def documents_dir() -> Path:
    """The real corpus shipped in documents/."""
    return DOCUMENTS
