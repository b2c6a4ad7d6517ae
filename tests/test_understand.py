"""Query understanding without a model: years and periods, traditional characters, routing through the
real catalog, follow-ups, cleaning and filter validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.errors import QAError
from qa.ingest.catalog import load_catalog
from qa.search.understand import clean_question, extract_years, resolve_followup, understand
from qa.text.normalize import normalize_for_matching as normalize
from qa.types import DocumentInfo

pytestmark = pytest.mark.unit

R2020 = "2020-zhengzhou-government-work-report.txt"
R2021 = "2021-zhengzhou-government-work-report.txt"
PLAN = "2021-zhengzhou-14th-five-year-plan-outline.txt"
R2024 = "2024-zhengzhou-government-work-report.txt"


@pytest.fixture(scope="module")
def catalog(documents_dir) -> list[DocumentInfo]:
    """The real catalog of documents/."""
    return list(load_catalog(documents_dir).values())


def years(text: str) -> list[int]:
    return extract_years(normalize(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023年郑州GDP是多少？", [2023]),
        ("二〇二三年郑州市的地区生产总值", [2023]),
        ("二〇二四年二月三日", [2024]),
        ("十四五期间郑州要建成哪些国家级平台？", [2021, 2022, 2023, 2024, 2025]),
        ("十三五时期的成就", [2016, 2017, 2018, 2019, 2020]),
        ("2021-2025年的目标", [2021, 2022, 2023, 2024, 2025]),
        ("2021—2025年", [2021, 2022, 2023, 2024, 2025]),
        ("２０２３年", [2023]),  # full-width digits
    ],
)
def test_years_and_periods(text: str, expected: list[int]) -> None:
    assert years(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "完成投资2000亿元",
        "新增就业2000人",
        "建成2025个项目",
        "面积2019平方公里",
        "增长2020%",
    ],
)
def test_amounts_are_not_years(text: str) -> None:
    assert years(text) == []


def test_amount_beside_a_year() -> None:
    assert years("2023年完成投资2000亿元") == [2023]


def test_traditional_characters_are_normalised(catalog) -> None:
    query, _ = understand("鄭州市2023年地區生產總值是多少？", catalog)
    assert "郑州市" in query.normalized
    assert "地区生产总值" in query.normalized
    assert query.years == [2023]


def test_result_question_routes_to_the_report_that_looks_back(catalog) -> None:
    query, routes = understand("2023年郑州GDP是多少？", catalog)
    want = query.intent
    # "是多少" alone does not say result or target; a report looking back on the year still comes first
    assert want == ""
    assert routes[0].doc == R2024
    want_done = understand("2023年郑州新认定了多少家高新技术企业？", catalog)[0].intent
    assert want_done == "result"
    assert routes[0].why == "回顾"
    assert query.docs[0] == R2024
    assert any(n.startswith("按2023年检索：") and "2024年郑州市政府工作报告" in n for n in query.notes)


def test_target_question_routes_to_the_report_that_plans(catalog) -> None:
    q_, routes = understand("2024年的主要预期目标是什么？", catalog)
    want = q_.intent
    assert want == "target"
    assert routes[0].doc == R2024
    assert routes[0].why == "计划"


def test_2019_routes_to_the_2020_report(catalog) -> None:
    _, routes = understand("2019年地区生产总值是多少？", catalog)
    assert routes[0].doc == R2020 and routes[0].weight == 1.0
    # the five-year plan reviews 2016-2020 as a whole: a weaker pointer to one of those years
    plan = [r for r in routes if r.doc == PLAN]
    assert plan and plan[0].weight < 1.0


def test_fourteenth_plan_routes_to_the_outline(catalog) -> None:
    query, routes = understand("十四五期间郑州的发展目标", catalog)
    assert routes[0].doc == PLAN
    assert query.years == [2021, 2022, 2023, 2024, 2025]
    assert any("2021–2025年" in n for n in query.notes)


def test_uncovered_year_is_reported(catalog) -> None:
    query, routes = understand("2010年郑州GDP是多少？", catalog)
    assert query.uncovered_years == [2010]
    assert routes == []
    assert "资料未覆盖2010年" in query.notes


def test_followup_replaces_the_year(catalog) -> None:
    assert resolve_followup("那2024年呢？", ["2023年郑州GDP是多少？"]) == "2024年郑州GDP是多少？"
    query, _ = understand("那2024年呢？", catalog, history=["你好", "2023年郑州GDP是多少？"])
    assert query.text == "2024年郑州GDP是多少？"
    assert query.years == [2024]
    assert "追问理解为：2024年郑州GDP是多少？" in query.notes
    assert query.docs[0] == R2024


def test_followup_with_a_new_topic_keeps_the_year() -> None:
    out = resolve_followup("那人口呢？", ["2023年郑州GDP是多少？"])
    assert out is not None and out.startswith("2023年") and "人口" in out


def test_not_a_followup() -> None:
    assert resolve_followup("2024年郑州GDP是多少？", ["2023年郑州GDP是多少？"]) is None
    assert resolve_followup("那2024年呢？", []) is None


@pytest.mark.parametrize("blank", ["", "   ", "\n\t  \u3000", "\x00\x01"])
def test_empty_question_is_refused(catalog, blank: str) -> None:
    with pytest.raises(QAError, match="请输入问题"):
        understand(blank, catalog)


def test_long_question_is_cut_with_a_note(catalog) -> None:
    question = "2023年郑州市地区生产总值是多少？" * 600
    assert len(question) > 10_000
    query, _ = understand(question, catalog, max_chars=500)
    assert len(query.text) == 500
    assert any("问题过长" in n and "500" in n for n in query.notes)


def test_control_characters_and_surrogates_are_cleaned() -> None:
    text, notes = clean_question("2023年\x00郑州\x07GDP\u200b是多少\ud800？\x1b", 500)
    assert not any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF or c == "\u200b" for c in text)
    text.encode("utf-8")  # a lone surrogate would make this raise
    assert "郑州" in text and "GDP" in text and notes == []


def test_non_string_question_is_refused() -> None:
    with pytest.raises(QAError):
        clean_question(None, 500)  # type: ignore[arg-type]


def test_explicit_filters_are_validated(catalog) -> None:
    query, _ = understand("地区生产总值", catalog, filters={"doc": R2024, "year": ["2023"]})
    assert query.filters == {"doc": [R2024], "year": [2023]}
    assert any(n.startswith("限定文件：") for n in query.notes)
    with pytest.raises(QAError, match="没有这个文件"):
        understand("地区生产总值", catalog, filters={"doc": ["2099-nowhere.txt"]})
    with pytest.raises(QAError, match="年份"):
        understand("地区生产总值", catalog, filters={"year": ["去年"]})


def test_target_question_asking_how_much_is_a_target(catalog) -> None:
    q_, routes = understand("2020年地区生产总值的预期增长目标是多少？", catalog)
    want = q_.intent
    assert want == "target"
    assert routes[0].doc == "2020-zhengzhou-government-work-report.txt"


@pytest.mark.unit
def test_relative_years_resolve_only_against_one_named_document(catalog) -> None:
    q, _ = understand("今年的GDP增长目标是多少？", catalog, filters={"doc": [R2024]})
    assert q.years == [2024]
    assert any("理解为2024年" in n for n in q.notes)
    q, _ = understand("明年的GDP增长目标是多少？", catalog, filters={"doc": [R2024]})
    assert q.years == [2025]
    q, _ = understand("今年的GDP增长目标是多少？", catalog)
    assert q.years == []
    assert any("无法确定" in n for n in q.notes)


# ---- a corpus without a catalog: the 27 national reports, metadata read from their text ------------------

NATIONAL = Path(__file__).resolve().parent.parent / "corpora" / "national"


@pytest.fixture(scope="module")
def national() -> list[DocumentInfo]:
    from qa.ingest.clean import clean_text
    from qa.ingest.loaders import load_file
    from qa.ingest.metadata import infer_info

    return [infer_info(p.name, clean_text(load_file(p).text).text) for p in sorted(NATIONAL.glob("*.txt"))]


def _nat(year: int) -> str:
    return f"national-{year}-government-work-report.txt"


def test_a_year_routes_to_the_report_that_reviews_it_and_the_one_that_plans_it(national) -> None:
    _, routes = understand("1957年粮食产量是多少？", national)
    docs = {r.doc: r for r in routes}
    assert docs[_nat(1958)].back and docs[_nat(1958)].weight == 1.0  # the 1958 report reviews 1957
    assert docs[_nat(1957)].plan  # the 1957 report plans for it
    q, routes = understand("1981年计划基本建设总投资额控制在多少？", national)
    assert routes[0].doc == _nat(1981) or _nat(1981) in q.docs


def test_a_report_named_by_its_year_is_the_one_asked_about(national) -> None:
    q, routes = understand("1981年的报告提到我国在哪些地方试办了经济特区？", national)
    assert routes[0].doc == _nat(1981) and routes[0].why == "报告"
    assert q.reports == [1981] and q.years == []  # 1981 names the report, it is not asked about
    assert any(n.startswith("按所问的报告检索") for n in q.notes)
    q, routes = understand("第四届全国人大政府工作报告把什么定为首要任务？", national)
    assert routes[0].doc == _nat(1975)
    # "当年" in a question naming its report is that report's year
    q, _ = understand("1980年政府工作报告提出的当年基本建设投资是多少？", national)
    assert q.years == [1980]


def test_a_five_year_plan_named_by_its_number_routes_to_its_years(national) -> None:
    q, routes = understand("一五计划规定工业总产值每年平均要递增多少？", national)
    assert q.years == [1953, 1954, 1955, 1956, 1957]
    assert _nat(1955) in q.docs  # the 1955 report presents the first five-year plan
    q, _ = understand("六五期间国民收入要增长多少？", national)
    assert q.years == list(range(1981, 1986))
    assert extract_years("第七个五年计划") == list(range(1986, 1991))
    assert extract_years("十五个重点项目") == []  # a number, not the tenth plan
    assert extract_years("一九五八年") == [1958]
