"""catalog.toml: reading it, and writing one entry (qa catalog set) without disturbing the rest of the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.errors import QAError
from qa.ingest import load_corpus
from qa.ingest.catalog import entry_text, load_catalog, read_catalog, set_entry
from qa.ingest.chunking import ChunkerSettings

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


def test_catalog_fields_record_their_source() -> None:
    info = load_catalog(DOCS)["2020-zhengzhou-government-work-report.txt"]
    assert info.sources == {
        k: "catalog"
        for k in ("title", "kind", "delivered", "looks_back", "plans_for", "year", "issuer", "place")
    }
    assert (info.issuer, info.place) == ("郑州市人民政府", "郑州市")
    # the news feature has a place but no issuer: only the fields the entry gives are sourced
    news = load_catalog(DOCS)["2023-zhengzhou-government-work-report-keywords.txt"]
    assert news.issuer is None and "issuer" not in news.sources and news.sources["place"] == "catalog"


def test_reading_refuses_values_the_pipeline_could_not_use(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("政府工作报告", encoding="utf-8")
    for line, field in [
        ('kind = "报告"', "kind"),
        ('delivered = "last year"', "delivered"),
        ("year = 24", "year"),
        ('looks_back = ["2023"]', "looks_back"),
    ]:
        (tmp_path / "catalog.toml").write_text(
            f'[documents."a.txt"]\ntitle = "报告"\n{line}\n', encoding="utf-8"
        )
        with pytest.raises(QAError, match=field):
            load_catalog(tmp_path)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A copy of documents/ (catalog and its comments included) plus one uncatalogued national report."""
    d = tmp_path / "documents"
    shutil.copytree(DOCS, d)
    shutil.copy(DOCS.parent / "corpora" / "national" / "national-1978-government-work-report.txt", d)
    return d


R2024 = "2024-zhengzhou-government-work-report.txt"


def test_set_entry_changes_only_the_lines_it_sets(docs: Path) -> None:
    before = (docs / "catalog.toml").read_text(encoding="utf-8")
    info = set_entry(docs, R2024, {"looks_back": [2022, 2023], "title": "2024年郑州市人民政府工作报告"})
    after = (docs / "catalog.toml").read_text(encoding="utf-8")
    # the 2024 table's two lines change; every other byte (comments, other tables, its note) stays
    table = before.index(f'[documents."{R2024}"]')
    want = before[:table] + before[table:].replace(
        'title = "2024年郑州市政府工作报告"', 'title = "2024年郑州市人民政府工作报告"', 1
    ).replace("looks_back = [2023]", "looks_back = [2022, 2023]", 1)
    assert after == want and after != before
    assert after.startswith("# Catalog of documents/")  # the comments above the tables are kept
    assert (
        info.looks_back == [2022, 2023]
        and info.delivered == "2024-02-03"
        and info.sources["looks_back"] == "catalog"
    )
    assert load_catalog(docs)[R2024] == info


def test_set_entry_adds_a_table_for_an_uncatalogued_file(docs: Path) -> None:
    name = "national-1978-government-work-report.txt"
    before = (docs / "catalog.toml").read_bytes()
    set_entry(
        docs, name, {"title": "1978年国务院政府工作报告", "delivered": "1978-02-26", "looks_back": [1977]}
    )
    after = (docs / "catalog.toml").read_bytes()
    assert after.startswith(before)  # appended; nothing above it moved
    assert entry_text(docs, name) == (
        f'[documents."{name}"]\ntitle = "1978年国务院政府工作报告"\ndelivered = 1978-02-26\nlooks_back = [1977]\n'
    )
    info = load_catalog(docs)[name]
    assert (info.year, info.delivered, info.looks_back, info.guessed) == (1978, "1978-02-26", [1977], False)
    # a second correction updates the same table instead of adding another
    set_entry(docs, name, {"plans_for": [1978], "year": 1978})
    assert (docs / "catalog.toml").read_text(encoding="utf-8").count(f'[documents."{name}"]') == 1
    assert load_catalog(docs)[name].plans_for == [1978]


def test_set_entry_keeps_a_trailing_comment_and_crlf_line_ends(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("政府工作报告", encoding="utf-8")
    text = (
        '# corrections by hand\r\n[documents."a.txt"]\r\ntitle = "报告"\r\nyear = 2019  # from the cover\r\n'
    )
    (tmp_path / "catalog.toml").write_bytes(text.encode("utf-8"))
    set_entry(tmp_path, "a.txt", {"year": 2020, "kind": "政府工作报告"})
    assert (tmp_path / "catalog.toml").read_bytes().decode("utf-8") == (
        '# corrections by hand\r\n[documents."a.txt"]\r\ntitle = "报告"\r\nyear = 2020  # from the cover\r\n'
        'kind = "政府工作报告"\r\n'
    )


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"kind": "报告"}, "kind"),
        ({"year": 24}, "year"),
        ({"delivered": "2024-13-01"}, "delivered"),
        ({"title": " "}, "title"),
        ({"title": "两行\n标题"}, "title"),
        ({"plans_for": [24]}, "plans_for"),
    ],
)
def test_set_entry_refuses_bad_values_and_leaves_the_file_alone(
    docs: Path, changes: dict, field: str
) -> None:
    before = (docs / "catalog.toml").read_bytes()
    with pytest.raises(QAError, match=field) as err:
        set_entry(docs, R2024, changes)
    assert "\n" not in str(err.value) and str(err.value).endswith(".")
    assert (docs / "catalog.toml").read_bytes() == before


def test_set_entry_refuses_unknown_skipped_and_untitled_files(docs: Path) -> None:
    before = (docs / "catalog.toml").read_bytes()
    with pytest.raises(QAError, match="not a document in"):
        set_entry(docs, "2099-nowhere.txt", {"year": 2099})
    with pytest.raises(QAError, match="skip = true"):
        set_entry(docs, "CORPUS.md", {"year": 2020})
    with pytest.raises(QAError, match="needs a title"):
        set_entry(docs, "national-1978-government-work-report.txt", {"year": 1978})
    assert (docs / "catalog.toml").read_bytes() == before
