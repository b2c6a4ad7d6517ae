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
from qa.errors import QAError
from qa.search.rerank import DEFAULT_WEIGHTS, FeatureReranker, load_reranker

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


def _one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    assert message.rstrip().endswith((".", "。")), message


@pytest.fixture
def qa_toml(tmp_path: Path) -> Path:
    path = tmp_path / "qa.toml"
    path.write_text(
        '[qa]\nchunk_max_chars = 200\ntop_k = 7\nreranker = "none"\nrouting = "filter"\n', encoding="utf-8"
    )
    return path


def test_layers_defaults_then_file_then_environment_then_overrides(
    qa_toml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = Settings()
    s = load_settings(qa_toml)
    assert (s.chunk_max_chars, s.top_k, s.reranker, s.routing) == (200, 7, "none", "filter")
    assert s.candidates == defaults.candidates and s.model == defaults.model  # untouched fields keep defaults

    monkeypatch.setenv("QA_TOP_K", "9")
    monkeypatch.setenv("QA_ROUTING", "off")
    s = load_settings(qa_toml)
    assert (s.chunk_max_chars, s.top_k, s.routing) == (200, 9, "off")  # the environment beats the file

    s = load_settings(qa_toml, top_k=3, routing=None)
    assert (s.top_k, s.routing) == (3, "off")  # an override beats both; None means "not given"


def test_qa_toml_in_the_working_directory_is_read(
    qa_toml: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().top_k == 7
    monkeypatch.chdir(tmp_path.parent)
    assert load_settings().top_k == Settings().top_k


def test_a_bad_value_is_one_sentence_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_TOP_K", "five")
    with pytest.raises(QAError) as exc:
        load_settings()
    assert "top_k='five'" in str(exc.value) and "QA_TOP_K" in str(exc.value)
    _one_sentence(str(exc.value))
    monkeypatch.delenv("QA_TOP_K")

    bad = tmp_path / "bad.toml"
    bad.write_text("[qa]\ncandidates = [1, 2]\n", encoding="utf-8")
    with pytest.raises(QAError) as exc:
        load_settings(bad)
    assert "candidates" in str(exc.value)
    _one_sentence(str(exc.value))

    bad.write_text("[qa\ntop_k = 3\n", encoding="utf-8")
    with pytest.raises(QAError) as exc:
        load_settings(bad)
    assert "not valid TOML" in str(exc.value)
    with pytest.raises(QAError) as exc:
        load_settings(tmp_path / "missing.toml")
    assert "does not exist" in str(exc.value)
    _one_sentence(str(exc.value))


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    typo = tmp_path / "qa.toml"
    typo.write_text("[qa]\ntopk = 3\n", encoding="utf-8")
    with pytest.raises(QAError) as exc:
        load_settings(typo)
    assert "Unknown setting 'topk'" in str(exc.value) and "top_k" in str(exc.value)
    _one_sentence(str(exc.value))
    with pytest.raises(QAError, match="Unknown setting 'rerank_weights'"):
        load_settings(rerank_weights="w.json")


def test_reranker_weights_name_a_file_or_default_to_the_packaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().reranker_weights == ""
    packaged = load_reranker("default", Settings().reranker_weights)
    assert isinstance(packaged, FeatureReranker) and packaged.meta.get("fitted")

    own = tmp_path / "my-reranker.json"
    own.write_text(DEFAULT_WEIGHTS.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "qa.toml").write_text(f'[qa]\nreranker_weights = "{own.name}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_settings().reranker_weights == "my-reranker.json"  # read from the working directory
    mine = load_reranker("default", load_settings().reranker_weights)
    assert isinstance(mine, FeatureReranker) and mine.weights == packaged.weights

    monkeypatch.setenv("QA_RERANKER_WEIGHTS", str(tmp_path / "nowhere.json"))
    with pytest.raises(QAError) as exc:
        load_reranker("default", load_settings().reranker_weights)
    assert "nowhere.json does not exist" in str(exc.value) and "qa fit-reranker --out" in str(exc.value)
    _one_sentence(str(exc.value))
    assert (
        load_reranker("none", load_settings().reranker_weights) is None
    )  # only the default reranker reads it
