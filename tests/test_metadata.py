"""Metadata read from a document's own text (qa.ingest.metadata.infer_info), for files without a catalog entry.

Real openings: the 27 State Council reports of corpora/national/ (greeting first, one title line, one in
traditional characters) and the five Zhengzhou files read as if uncatalogued, compared with catalog.toml.
Two short openings written the way a 2000s national report and another city's report open check the genre
beyond these files. Texts go through the cleaner first, as process_document passes them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers import DOCUMENTS, REPO

from qa.ingest import load_corpus
from qa.ingest.catalog import load_catalog
from qa.ingest.chunking import ChunkerSettings
from qa.ingest.clean import clean_text
from qa.ingest.loaders import load_file
from qa.ingest.metadata import find_dates, infer_info
from qa.text.periods import plan_period
from qa.types import DocumentInfo

pytestmark = pytest.mark.unit

NATIONAL = REPO / "corpora" / "national"
NATIONAL_FILES = sorted(NATIONAL.glob("national-*-government-work-report.txt"))


def clean(path: Path) -> str:
    """The text process_document hands to infer_info: the file loaded and cleaned."""
    return clean_text(load_file(path).text).text


def national(year: int, name: str | None = None) -> DocumentInfo:
    """infer_info on one national report, under its own file name or another one."""
    path = NATIONAL / f"national-{year}-government-work-report.txt"
    return infer_info(name or path.name, clean(path))


def test_a_greeting_first_report_gets_a_built_title_not_a_heading() -> None:
    info = national(1958)  # opens 各位代表：… then （一）一九五七年经济战线上的胜利; no title line
    assert info.title == "1958年国务院政府工作报告"
    assert (info.issuer, info.place, info.kind) == ("国务院", "全国", "政府工作报告")
    assert (
        1957 in info.looks_back and 1958 in info.plans_for
    )  # 关于一九五八年度国民经济计划 / the 1957 review
    assert info.guessed and info.sources["title"] == "text"


def test_1978_is_dated_by_its_session_not_by_a_date_inside_it() -> None:
    # the first date in the text is 1976年10月6日 (a date in the review); the report is made
    # 向第五届全国人民代表大会 — its first sitting met in 1978
    info = national(1978, name="report.txt")
    assert (info.year, info.delivered, info.sources["year"]) == (1978, "1978", "text")
    assert info.title == "1978年国务院政府工作报告"
    assert (info.looks_back, info.plans_for) == ([1977], [1978])


def test_a_report_without_a_title_line_never_takes_a_body_fragment() -> None:
    info = national(1979)  # the old guess took "》和《农村人民公社工作条例（试行草案）"
    assert info.title == "1979年国务院政府工作报告"
    assert national(1979, name="report.txt").year == 1979  # 从去年三月第五届…第一次会议闭幕到我们这次会议


def test_traditional_characters_and_full_width_digits() -> None:
    info = national(1954, name="report.txt")  # 我們第一届全國人民代表大會第一次會議 … 我代表中央人民政府
    assert (info.year, info.issuer, info.place, info.title) == (
        1954,
        "国务院",
        "全国",
        "1954年国务院政府工作报告",
    )
    info = national(1956, name="report.txt")  # 关于１９５５年国家决算和１９５６年国家预算的报告
    assert (info.year, info.looks_back, info.plans_for) == (1956, [1955], [1956])


def test_1957_date_line_and_title_line() -> None:
    info = national(1957)
    assert (info.delivered, info.year) == ("1957-06-26", 1957)
    assert info.title == "1957年国务院政府工作报告"  # the title line 政府工作报告, made specific
    assert info.sources["title"] == "title line" and info.sources["delivered"] == "text"


def test_years_from_the_text_when_the_file_name_has_none() -> None:
    got = {y: national(y, name="report.txt") for y in (1985, 1986, 1988, 1993, 1999)}
    assert got[1985].year == 1985  # 刚刚过去的１９８４年
    assert got[1986].year == 1986  # 今年是实行“七五”计划的头一年
    assert got[1988].year == 1988  # 过去五年 … 第六届全国人民代表大会期间
    assert got[1993].year == 1993  # 从第七届…第一次会议，到这次大会的召开，已经整整过去了五年
    assert got[1999].year == 1999  # 一、1998年工作回顾和1999年工作的总体要求
    assert all(i.sources["year"] == "text" for i in got.values())


def test_file_name_year_is_used_and_recorded_when_the_text_has_none() -> None:
    info = national(1984)  # 我代表国务院向大会作政府工作报告: no session, no date line
    assert (info.year, info.sources["year"], info.sources["delivered"]) == (1984, "file name", "file name")


def test_what_a_report_reviews_and_plans_is_read_from_its_opening() -> None:
    assert national(1983).looks_back == [1978, 1979, 1980, 1981, 1982]  # 过去五年的回顾
    r1986 = national(1986)  # 关于…第七个五年计划的报告; the sixth plan has just ended
    assert r1986.plans_for == plan_period(7) == [1986, 1987, 1988, 1989, 1990]
    assert r1986.looks_back == plan_period(6)
    assert national(1980).plans_for == [1980, 1981]  # 关于1980、1981年国民经济计划安排的报告
    assert national(1992).looks_back == [1991]


@pytest.mark.parametrize("path", NATIONAL_FILES, ids=lambda p: p.name[9:13])
def test_every_national_report(path: Path) -> None:
    year = int(path.name[9:13])
    info = infer_info(path.name, clean(path))
    assert info.title == f"{year}年国务院政府工作报告"
    assert (info.issuer, info.place, info.kind, info.year) == ("国务院", "全国", "政府工作报告", year)
    # tight lists: the year before and the year itself, a five-year window at most, a plan at most
    assert (
        year - 1 in info.looks_back and all(y < year for y in info.looks_back) and len(info.looks_back) <= 6
    )
    assert year in info.plans_for and all(y >= year - 2 for y in info.plans_for) and len(info.plans_for) <= 8
    assert set(info.sources) == {
        "title",
        "issuer",
        "place",
        "kind",
        "delivered",
        "year",
        "looks_back",
        "plans_for",
    }
    # without the year in its name the year comes from the text or stays unknown; it is never wrong
    blind = infer_info("report.txt", clean(path))
    assert blind.year in (year, None)


CATALOG = load_catalog(DOCUMENTS)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_zhengzhou_files_read_without_their_catalog_match_it(name: str) -> None:
    want = CATALOG[name]
    for file_name in (name, "copy.txt"):  # with and without the year in the file name
        got = infer_info(file_name, clean(DOCUMENTS / name))
        assert (got.kind, got.year, got.delivered) == (want.kind, want.year, want.delivered), file_name
        assert (got.looks_back, got.plans_for) == (want.looks_back, want.plans_for), file_name
        assert got.place == "郑州市"
        if want.kind == "新闻稿":  # the feature has no title line: the title says what it is about
            assert got.title == "2023年郑州市政府工作报告相关报道" and got.issuer is None
        else:
            assert got.title == want.title and got.issuer == "郑州市人民政府"


def test_the_outline_is_titled_by_the_notice_that_issues_it() -> None:
    info = infer_info("outline.txt", clean(DOCUMENTS / "2021-zhengzhou-14th-five-year-plan-outline.txt"))
    # 关于印发郑州市国民经济和社会发展第十四个五年规划和二〇三五年远景目标纲要的通知
    assert info.title == "郑州市国民经济和社会发展第十四个五年规划和二〇三五年远景目标纲要"
    assert info.sources["title"] == "title line" and info.sources["kind"] == "title line"


# Written the way a national report of the 2000s opens (title line, date line, byline, greeting,
# the first heading of a term-end report).
NATIONAL_2008 = """政府工作报告
——2008年3月5日在第十一届全国人民代表大会第一次会议上
国务院总理  温家宝

各位代表：

现在，我代表国务院，向大会报告过去五年政府工作，并对今年工作提出建议，请予审议，并请全国政协委员提出意见。

一、过去五年政府工作回顾

本届政府任期的五年，是我国改革开放和社会主义现代化建设取得重大进展的五年。
"""

# Written the way a city's report opens (another city than the corpus's own), with a Chinese-numeral date.
CITY_2024 = """政府工作报告
——二〇二四年一月二十二日在武汉市第十五届人民代表大会第四次会议上
武汉市人民政府市长  盛阅春

各位代表：

现在，我代表市人民政府向大会报告工作，请予审议，并请市政协委员和其他列席人员提出意见。

一、2023年工作回顾

过去一年，我们坚持稳中求进工作总基调，全市经济运行持续回升向好。
"""


@pytest.mark.parametrize("cleaned", [False, True], ids=["raw", "cleaned"])
def test_a_2000s_national_report_opening(cleaned: bool) -> None:
    text = clean_text(NATIONAL_2008).text if cleaned else NATIONAL_2008
    info = infer_info("report.txt", text)
    assert info.title == "2008年国务院政府工作报告"
    assert (info.issuer, info.place, info.kind) == ("国务院", "全国", "政府工作报告")
    assert (info.delivered, info.year) == ("2008-03-05", 2008)
    assert (info.looks_back, info.plans_for) == ([2003, 2004, 2005, 2006, 2007], [2008])


def test_a_date_line_run_into_the_byline_by_cleaning() -> None:
    # without the dash the cleaner joins the date line and the byline into one line
    text = clean_text(NATIONAL_2008.replace("——2008", "2008")).text
    assert "会议上国务院总理" in text
    info = infer_info("report.txt", text)
    assert (info.title, info.delivered, info.issuer) == ("2008年国务院政府工作报告", "2008-03-05", "国务院")


def test_a_national_report_without_its_title_block() -> None:
    text = NATIONAL_2008.split("各位代表：", 1)[1].replace("过去五年政府工作回顾", "2007年工作回顾")
    info = infer_info("report.txt", "各位代表：" + text)
    assert (info.year, info.issuer, info.title) == (2008, "国务院", "2008年国务院政府工作报告")


@pytest.mark.parametrize("cleaned", [False, True], ids=["raw", "cleaned"])
def test_another_citys_report_opening(cleaned: bool) -> None:
    text = clean_text(CITY_2024).text if cleaned else CITY_2024
    info = infer_info("wuhan.txt", text)
    assert info.title == "2024年武汉市政府工作报告"
    assert (info.issuer, info.place, info.kind) == ("武汉市人民政府", "武汉市", "政府工作报告")
    assert (info.delivered, info.year, info.looks_back, info.plans_for) == (
        "2024-01-22",
        2024,
        [2023],
        [2024],
    )
    # a local congress's sitting cannot date the report: without the date line the year is read elsewhere
    undated = re.sub(r"——.*?日在", "——在", text)
    assert infer_info("wuhan.txt", undated).year == 2024  # 一、2023年工作回顾


def test_find_dates_both_scripts() -> None:
    dates = find_dates(
        "——二〇二四年二月三日在郑州市；2021年1月30日；二〇二一年十二月二十一日；１９５７年６月２６日"
    )
    assert [d.isoformat() for d in dates] == ["2024-02-03", "2021-01-30", "2021-12-21", "1957-06-26"]


def test_uncatalogued_copy_is_indexed_with_inferred_metadata(tmp_path: Path) -> None:
    shutil.copy(DOCUMENTS / "2024-zhengzhou-government-work-report.txt", tmp_path / "zz-report.txt")
    shutil.copy(NATIONAL / "national-1978-government-work-report.txt", tmp_path)
    docs = {d.info.file: d for d in load_corpus(tmp_path, ChunkerSettings()).docs}
    zz, r1978 = docs["zz-report.txt"], docs["national-1978-government-work-report.txt"]
    assert zz.info.guessed and zz.info.title == "2024年郑州市政府工作报告"
    assert (zz.info.delivered, zz.info.looks_back, zz.info.plans_for) == ("2024-02-03", [2023], [2024])
    assert all(p.title == "1978年国务院政府工作报告" and p.year == 1978 for p in r1978.passages)
