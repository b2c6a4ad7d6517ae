"""Helpers for the tests of the two store backends (issue 17): a knowledge base on milvus-lite, real text.

Plain functions; the fixtures that use them live in the test modules. Every Milvus knowledge base here is
a fresh milvus.db folder under the test's temporary directory, released (its embedded server stopped and
its lock freed) when the test is done.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import DOCUMENTS

from qa.config import Settings
from qa.index.builder import UpdateReport, update_index

REPO = Path(__file__).resolve().parent.parent
NATIONAL = REPO / "corpora" / "national"
STORES = ("embedded", "milvus")


def require_milvus() -> None:
    """Skip a Milvus test when the milvus extra is missing, or fail it where it must run (CI sets
    QA_REQUIRE_MILVUS=1, as QA_REQUIRE_BROWSER for the browser tests)."""
    if importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None:
        why = "the milvus extra is missing: pip install 'zhengzhou-qa[milvus]'"
        if os.environ.get("QA_REQUIRE_MILVUS") == "1":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


@dataclass
class Corpus:
    """A knowledge base for a test: its documents copy, index folder, settings and first build."""

    documents: Path
    index: Path
    settings: Settings
    report: UpdateReport
    kb: str = "default"


def copy_documents(dest: Path, source: Path = DOCUMENTS, pattern: str = "*.txt") -> Path:
    """A copy of a documents folder (its texts and catalog), so tests never touch the repository's."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in [*source.glob(pattern), source / "catalog.toml", source / "lexicon.toml"]:
        if f.is_file():
            shutil.copy2(f, dest / f.name)
    return dest


def store_settings(base: Settings, store: str, root: Path) -> Settings:
    """`base` on the given backend; a milvus-lite folder of its own under root."""
    return base.with_(store=store, milvus_uri=str(root / "milvus.db"), kb_dir=str(root / "kbs"))


@contextmanager
def built_corpus(
    root: Path, settings: Settings, encoder: Any, store: str, source: Path = DOCUMENTS, pattern: str = "*.txt"
) -> Iterator[Corpus]:
    """documents copied under root and indexed on `store`; the Milvus folder is released afterwards."""
    s = store_settings(settings, store, root)
    docs = copy_documents(root / "documents", source, pattern)
    report = update_index(docs, root / "index", s, encoder=encoder)
    try:
        yield Corpus(docs, root / "index", s, report)
    finally:
        release_milvus(s)


def release_milvus(settings: Settings) -> None:
    """Stop the embedded milvus-lite server of these settings (no-op for the embedded store)."""
    if settings.store == "milvus":
        from qa.index.milvus import release

        release(settings.milvus_uri)
