"""Shared fixtures: the real documents folder, and the session index built once from it.

The session index fixtures (session_settings, real_encoder, built_index, private_index) copy the real
documents/ folder into a temporary directory and index it once per session with the real default model;
the plain helpers they use are in helpers.py.

Nothing in the suite may touch the user's home: before anything else, the session gets a fresh HOME and
XDG_CACHE_HOME in a temporary directory (inherited by every subprocess a test starts), and QA_* settings
from the user's shell are dropped. The cost is one model materialisation and one embedding of documents/
per session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings

# Set at import, before any test module or library reads a home-derived path (pytest imports this first).
SESSION_ROOT = Path(tempfile.mkdtemp(prefix="qa-tests-"))
os.environ["HOME"] = str(SESSION_ROOT / "home")
os.environ["XDG_CACHE_HOME"] = str(SESSION_ROOT / "cache")
(SESSION_ROOT / "home").mkdir()
for _f in fields(Settings):
    os.environ.pop(f"QA_{_f.name.upper()}", None)

from qa.index.builder import update_index  # noqa: E402

# helpers.py holds asserts (one_sentence_with_fix, real_excerpt): rewrite them as pytest does in test modules
pytest.register_assert_rewrite("helpers")

from helpers import DOCUMENTS, BuiltIndex  # noqa: E402

REPORT_FILES = sorted(p.name for p in DOCUMENTS.glob("*.txt"))


@pytest.fixture(scope="session")
def documents_dir() -> Path:
    """The real corpus shipped in documents/."""
    return DOCUMENTS


_SESSION: dict[str, Any] = {}


@pytest.fixture(scope="session")
def session_settings() -> Settings:
    """Default settings, their cache named explicitly so subprocesses given QA_CACHE_DIR share it."""
    if "settings" not in _SESSION:
        # the session's fresh XDG_CACHE_HOME: tests that use plain Settings() share this cache too
        _SESSION["settings"] = Settings(cache_dir=str(Settings().resolved_cache_dir()))
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
        print(f"\nsession index: {report.summary()} timings={report.timings}")
        _SESSION["built"] = BuiltIndex(root / "index", docs, session_settings, report, seconds)
    return _SESSION["built"]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's home and cache."""
    shutil.rmtree(SESSION_ROOT, ignore_errors=True)


@pytest.fixture
def private_index(built_index: BuiltIndex, tmp_path: Path) -> BuiltIndex:
    """A copy of the session index and its documents that a test may change."""
    return built_index.copy(tmp_path)
