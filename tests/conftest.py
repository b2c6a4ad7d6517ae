"""Shared fixtures: the real documents folder, and the session index built once from it.

The session index fixtures (session_settings, real_encoder, built_index, private_index) copy the real
documents/ folder into a temporary directory and index it once per session with the real default model;
the plain helpers they use are in helpers.py.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.indexer import update_index

# helpers.py holds asserts (one_sentence_with_fix, real_excerpt): rewrite them as pytest does in test modules
pytest.register_assert_rewrite("helpers")

from helpers import DOCUMENTS, BuiltIndex, _seed_cache, _share_embeddings  # noqa: E402

REPORT_FILES = sorted(p.name for p in DOCUMENTS.glob("*.txt"))


@pytest.fixture(scope="session")
def documents_dir() -> Path:
    """The real corpus shipped in documents/."""
    return DOCUMENTS


_SESSION: dict[str, Any] = {}


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings with a session cache directory."""
    if "settings" not in _SESSION:
        cache = tmp_path_factory.mktemp("qa-cache")
        _seed_cache(cache)
        _SESSION["settings"] = Settings(cache_dir=str(cache))
    return _SESSION["settings"]


@pytest.fixture(scope="session")
def real_encoder(session_settings: Settings) -> Any:
    """The real default encoder, loaded once."""
    if "encoder" not in _SESSION:
        from qa.encoders import load_encoder

        _SESSION["encoder"] = load_encoder(session_settings)
    return _SESSION["encoder"]


@pytest.fixture(scope="session")
def built_index(
    tmp_path_factory: pytest.TempPathFactory, session_settings: Settings, real_encoder: Any
) -> BuiltIndex:
    """documents/ copied into a temporary folder and indexed once per session (treat as read-only)."""
    if "built" not in _SESSION:
        root = tmp_path_factory.mktemp("built")
        docs = root / "documents"
        shutil.copytree(DOCUMENTS, docs)
        t0 = time.perf_counter()
        report = update_index(docs, root / "index", session_settings, encoder=real_encoder)
        seconds = time.perf_counter() - t0
        if report.passages_embedded:
            _share_embeddings(session_settings.resolved_cache_dir())
        print(f"\nsession index: {report.summary()} timings={report.timings}")
        _SESSION["built"] = BuiltIndex(root / "index", docs, session_settings, report, seconds)
    return _SESSION["built"]


@pytest.fixture
def private_index(built_index: BuiltIndex, tmp_path: Path) -> BuiltIndex:
    """A copy of the session index and its documents that a test may change."""
    return built_index.copy(tmp_path)
