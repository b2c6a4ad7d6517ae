"""catalog.toml: reading it (metadata of files without an entry is tested in test_metadata.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.chunking import ChunkerSettings
from qa.errors import QAError
from qa.ingest import load_corpus
from qa.ingest.catalog import load_catalog, read_catalog

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parent.parent / "documents"


def test_catalog_covers_the_five_reports() -> None:
    cat = load_catalog(DOCS)
    assert sorted(cat) == sorted(p.name for p in DOCS.glob("*.txt"))
    plan = cat["2021-zhengzhou-14th-five-year-plan-outline.txt"]
    assert plan.kind == "五年规划纲要" and plan.delivered == "2021-06-10"
    assert plan.looks_back == [2016, 2017, 2018, 2019, 2020] and plan.plans_for == [
        2021,
        2022,
        2023,
        2024,
        2025,
        2035,  # the vision year (远景目标)
    ]
    r2021 = cat["2021-zhengzhou-government-work-report.txt"]
    assert r2021.delivered == "2021-01-30" and 2020 in r2021.looks_back and 2016 in r2021.looks_back
    assert r2021.plans_for == [2021]
    r2024 = cat["2024-zhengzhou-government-work-report.txt"]
    assert (r2024.year, r2024.looks_back, r2024.plans_for, r2024.guessed) == (2024, [2023], [2024], False)
    assert "CORPUS.md" in read_catalog(DOCS).skip


def test_catalog_entry_for_missing_file_is_ignored_with_warning(tmp_path: Path) -> None:
    shutil.copy(DOCS / "2020-zhengzhou-government-work-report.txt", tmp_path)
    (tmp_path / "catalog.toml").write_text(
        '[documents."2020-zhengzhou-government-work-report.txt"]\ntitle = "2020年郑州市政府工作报告"\nyear = 2020\n'
        '[documents."gone.txt"]\ntitle = "不存在的报告"\n',
        encoding="utf-8",
    )
    cat = read_catalog(tmp_path)
    assert list(cat.infos) == ["2020-zhengzhou-government-work-report.txt"]
    assert any("gone.txt" in w for w in cat.warnings)
    result = load_corpus(tmp_path, ChunkerSettings())
    assert len(result.docs) == 1 and not result.docs[0].info.guessed
    assert any("gone.txt" in w for w in result.warnings)


def test_malformed_catalog_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "catalog.toml").write_text('[documents."a.txt"\ntitle = ', encoding="utf-8")
    with pytest.raises(QAError, match="catalog.toml"):
        load_catalog(tmp_path)
    (tmp_path / "a.txt").write_text("政府工作报告", encoding="utf-8")
    (tmp_path / "catalog.toml").write_text('[documents."a.txt"]\nyear = 2020\n', encoding="utf-8")
    with pytest.raises(QAError, match="title"):
        load_catalog(tmp_path)
