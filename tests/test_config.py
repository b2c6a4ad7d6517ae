"""Settings: defaults < qa.toml < QA_* environment < explicit overrides; bad input is one sentence."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qa.config import Settings, load_settings

pytestmark = pytest.mark.unit


def test_the_suite_never_uses_the_users_cache(session_settings: Settings) -> None:
    # conftest.py gives the session a temporary HOME and XDG_CACHE_HOME: models and embeddings land there
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    cache = Settings().resolved_cache_dir()
    assert cache.is_relative_to(Path(tempfile.gettempdir())), cache
    assert not cache.is_relative_to(real_home / ".cache") and Path.home() != real_home
    assert load_settings().resolved_cache_dir() == cache == session_settings.resolved_cache_dir()
    # servers and scripts a test starts inherit the same cache
    out = subprocess.run(
        [sys.executable, "-c", "from qa.config import Settings; print(Settings().resolved_cache_dir())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()) == cache
