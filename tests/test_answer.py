"""The answer line on real report text: which sentence and which clause answer, the year a figure is
for, the unit asked, and the refusals (rules, nonsense, another year) with and without a reranker."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, BuiltIndex

from qa import Retriever
from qa.config import Settings
from qa.index.builder import update_index
from qa.search.abstain import judge, rule_refusal
from qa.search.answer import (
    AnswerModel,
    abstain_text,
    answer_sentences,
    as_of_years,
    asked_unit_pattern,
    asked_years,
    candidate_spans,
    choose_clause,
    compose,
    implicit_years,
    quantities,
    question_form,
    slot_terms,
    stated_years,
)
from qa.search.features import Candidate
from qa.search.understand import understand
from qa.text.lexicon import genre_lexicon
from qa.text.normalize import normalize_for_matching
from qa.text.sentences import split_sentences
from qa.types import DocumentInfo, Hit, Passage, SourceSpan

DOCS = Path(__file__).resolve().parent.parent / "documents"
NATIONAL = DOCS.parent / "corpora" / "national"
R2020 = "2020-zhengzhou-government-work-report.txt"
R2024 = "2024-zhengzhou-government-work-report.txt"
LINES_2024 = (DOCS / R2024).read_text(encoding="utf-8").splitlines()
# the review paragraph with 2023's figures, and the paragraph with 2024's targets
REVIEW = next(line for line in LINES_2024 if "总量超过1.36万亿元" in line)
TARGETS = next(line for line in LINES_2024 if line.startswith("经济社会发展主要预期目标是"))
LEX = genre_lexicon().for_corpus(["郑州市"], ["2024年郑州市政府工作报告"])
INFO_2024 = DocumentInfo(R2024, "2024年郑州市政府工作报告", looks_back=[2023], plans_for=[2024], year=2024)


def _q(text: str):  # noqa: ANN202 - a Query
    return understand(text, [], lexicon=LEX)[0]


# ---- reading text, no index -----------------------------------------------------------------------------


@pytest.mark.unit
def test_answer_sentences_use_the_one_splitter_and_leave_out_headings() -> None:
    text = "一、2023年工作回顾\n" + REVIEW
    got = answer_sentences(text)
    assert got[0].startswith("过去一年")
    assert "一、2023年工作回顾" not in got  # a short heading line answers nothing
    assert set(got) <= {s.strip() for s in split_sentences(text)}


@pytest.mark.unit
def test_figures_are_read_in_arabic_and_chinese_numerals_with_their_units() -> None:
    def found(text: str) -> list[str]:
        n = normalize_for_matching(text)
        return [n[q.start : q.end] + "/" + q.unit for q in quantities(n)]

    assert found("新增城镇就业12.1万人，增长7.4%") == ["12.1万人/人", "7.4%/%"]
    # the 1950s reports: traditional characters and numbers written out
    assert found("在恢復期間工業總産值平均每年遞增百分之三十六點九") == ["百分之三十六点九/%"]
    assert found("拟定为一百四十五亿七千七百万元，增长四倍") == ["一百四十五亿七千七百万元/元", "四倍/倍"]
    # words that only look like figures: 一个 国家, 三项 任务, 2023年 (a date), 五十年代, 几十年
    assert found("一个国家，三项任务，2023年，五十年代，几十年来") == []
    # a magnitude after 多 (五十多万人), a count that needs no unit, old units and currencies
    assert found("安置五十多万人，人口已经超过十亿") == ["五十多万人/人", "十亿/"]
    assert found("可蓄水二十三亿立方公尺，共计十四亿零六百万新卢布") == [
        "二十三亿立方公尺/立方公尺",
        "十四亿零六百万新卢布/新卢布",
    ]
    assert found("亿万人民，千万不能，百万人口") == []


@pytest.mark.unit
def test_the_unit_asked_follows_the_question() -> None:
    assert question_form(normalize_for_matching("2023年郑州新增城镇就业多少万人？")).units == (
        "人",
        "名",
        "位",
    )
    assert question_form(normalize_for_matching("2019年郑州旅游总共挣了多少钱？")).units[0] == "元"
    pct = question_form(normalize_for_matching("2020年郑州民生支出占一般公共预算支出的比重是多少？"))
    assert pct.percent and "%" in pct.units
    # a rate asked through the verb that moves it is a share too
    for moved in ("1979年国民收入中积累率降到了多少？", "城镇登记失业率控制在多少？"):
        assert question_form(normalize_for_matching(moved)).percent, moved
    assert not question_form(normalize_for_matching("郑州机场货邮吞吐量是多少？")).percent
    # a share named in a why-question is not asked for
    assert not question_form(normalize_for_matching("为什么要把轻工业产值比重从44%提高到45%？")).percent
    listing = question_form(normalize_for_matching("一五计划集中力量发展的重工业包括哪几个行业？"))
    assert listing.listing and not listing.number and not listing.units  # 哪几个: a list, not a count of 个
    # the reranker's signal keeps its own reading
    unit = asked_unit_pattern("新增城镇就业多少万人")
    assert unit is not None and unit.search("城镇新增就业12.1万人") and not unit.search("增长7.4%")


@pytest.mark.unit
def test_the_year_a_sentence_is_about() -> None:
    assert stated_years("一九五八年的基本建设总投资额，比一九五七年增加了二十二亿元") == {
        1958
    }  # 比…: compared
    assert stated_years("“十三五”时期") == set(range(2016, 2021)) and stated_years("“十三五”末") == {2020}
    assert stated_years("第一个五年计划") == set(range(1953, 1958))
    # implicit: 过去一年 in the 2024 report is 2023; a target sentence is about the year the report plans for
    assert implicit_years("过去一年，我们…", "", INFO_2024)[0] == {2023}
    assert implicit_years("力争新认定高企1000家", "", INFO_2024)[0] == {2024}
    assert implicit_years("新认定高企1980家", "一、2023年工作回顾", INFO_2024) == ({2023}, "heading")
    # 现在 / 目前: the time of the report, the year it is delivered in or the one just closed (a count "到1964年底"
    # is answered by the report of December 1964)
    info_1964 = DocumentInfo(file="r1964.txt", title="1964年国务院政府工作报告", year=1964, looks_back=[1963])
    assert implicit_years("现在，同我国建交的国家已经增加到五十个", "", info_1964) == (
        {1963, 1964},
        "relative",
    )
    # a year named as the ground a figure was reached from is compared to (the 1980 report on 1979's harvest)
    assert (
        stated_years("粮食产量33，212万吨，比上年增加2，737万吨，这是在1978年粮食丰收的基础上实现的") == set()
    )
    # a five-year plan outline speaks of the years it plans for, also where a task reads "完成…", except in
    # its review of the last plan
    outline = DocumentInfo(
        file="outline.txt",
        title="郑州市国民经济和社会发展第十四个五年规划和二〇三五年远景目标纲要",
        kind="五年规划纲要",
        year=2021,
        looks_back=list(range(2016, 2021)),
        plans_for=list(range(2021, 2026)),
    )
    task = "推进机场三期建设，完成北货运区和第三跑道建设，终端区达到“五进五出”能力"
    assert implicit_years(task, "第八章 完善国际物流枢纽体系", outline)[0] == set(range(2021, 2026))
    review = "五年累计建成公园、微公园、小游园超千个"
    assert implicit_years(review, "第一章 站在高质量发展新起点", outline)[0] != set(range(2021, 2026))


@pytest.mark.unit
def test_the_year_asked_is_not_the_year_that_names_the_report() -> None:
    assert asked_years(_q("1983年政府工作报告说，1982年全国农民平均每人纯收入是多少？")) == {1982}
    assert asked_years(_q("1995年政府工作报告说我国人口已经达到多少？")) == set()
    assert asked_years(_q("1998年作报告的这一届政府是什么时候就职的？")) == set()
    assert asked_years(_q("十四五规划纲要中，2020年郑州万人发明专利拥有量是多少件？")) == {2020}
    assert asked_years(_q("2020年郑州空气好的日子比2019年多了几天？")) == {2020}


@pytest.mark.unit
def test_abstention_sentence_names_what_was_asked() -> None:
    q = _q("2010年郑州GDP是多少？")
    q.uncovered_years = [2010]
    assert "2010年" in abstain_text(q)
    assert "郑州的航天发射场在哪里" in abstain_text(_q("郑州的航天发射场在哪里？"))


# ---- on the indexed documents ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retriever(built_index: BuiltIndex) -> Retriever:
    """A retriever over the session index with the shipped answer model."""
    return Retriever.open(built_index.index, built_index.settings)


def _passage(retriever: Retriever, doc: str, needle: str) -> Passage:
    return next(p for p in retriever.store.passages if p.doc == doc and needle in p.text)


def _hit(p: Passage, rank: int = 1) -> Hit:
    return Hit(p, 1.0 / rank, rank)


@pytest.mark.integration
def test_a_figure_for_another_year_is_not_the_answer(retriever: Retriever) -> None:
    # the example: the 2024 report's 29.43亿斤 is 2023's figure; the 2020 report states 2019's
    ans = retriever.ask("郑州2019年粮食产量是多少？")
    assert not ans.abstained and "149.7万吨" in ans.text and "29.43" not in ans.text, ans.text
    # with only the 2024 report's passage to go on, the reply refuses and says which year that figure is for
    q = retriever.understand("郑州2019年粮食产量是多少？")
    p2024 = _passage(retriever, R2024, "29.43亿斤")
    line = compose(q, [_hit(p2024)], retriever.corpus, AnswerModel.load())
    assert line.year_conflict and line.other_years == [2023] and line.asked_years == [2019]


@pytest.mark.integration
def test_a_result_is_taken_from_the_review_not_the_plan(retriever: Retriever) -> None:
    # 2024's target (新认定高企1000家) and 2023's result (1980家) sit in the same report
    q = retriever.understand("2023年郑州新认定了多少家高新技术企业？")
    plan = _passage(retriever, R2024, "新认定高企1000家")
    review = _passage(retriever, R2024, "新认定高企1980家")
    line = compose(q, [_hit(plan, 1), _hit(review, 2)], retriever.corpus, AnswerModel.load())
    assert "1980家" in line.text and line.text.endswith("[2]"), line.text


@pytest.mark.integration
def test_the_clause_with_the_figure_asked_is_cut_from_a_multi_figure_sentence(retriever: Retriever) -> None:
    targets = _passage(retriever, R2024, "固定资产投资增长8%以上")
    for question, want, other in (
        ("2024年郑州固定资产投资增长目标是多少？", "固定资产投资增长8%以上", "7%左右"),
        ("2024年郑州城镇调查失业率要控制在多少？", "城镇调查失业率控制在5.5%左右", "8%以上"),
    ):
        q = retriever.understand(question)
        line = compose(q, [_hit(targets)], retriever.corpus, AnswerModel.load())
        assert line.text == f"{want}[1]", line.text
        assert other not in line.text
    # a sentence with one figure asked is shown whole
    review = _passage(retriever, R2024, "总量超过1.36万亿元")
    q = retriever.understand("2023年郑州GDP是多少？")
    span = next(
        s for s in compose(q, [_hit(review)], retriever.corpus, AnswerModel.load()).ranked if "1.36" in s.text
    )
    assert "1.36万亿元" in choose_clause(q, retriever.corpus, span)


@pytest.mark.integration
def test_a_table_row_answers_for_the_years_its_header_names(retriever: Retriever) -> None:
    # the outline's 专栏1 ("指标名称单位2015年 / 2020年目标…“十三五”完成情况") gives 2015's GDP only in a row:
    # the row is a candidate, about its header's years, and the 2024 report's 2023 figure is not the answer
    table = _passage(retriever, "2021-zhengzhou-14th-five-year-plan-outline.txt", "7311.5")
    review = _passage(retriever, R2024, "总量超过1.36万亿元")
    assert "单位2015年" in table.text
    rows = [s for s in answer_sentences(table.text) if "7311.5" in s]
    assert rows == ["经济发展地区生产总值亿元7311.5———中高速增长12003 6.8"]
    assert "专栏1：“十三五”规划主要目标完成情况指标名称" not in answer_sentences(
        table.text
    )  # its heading is not
    q = retriever.understand("2015年郑州地区生产总值是多少亿元？")
    line = compose(q, [_hit(review), _hit(table, 2)], retriever.corpus, AnswerModel.load())
    assert "7311.5" in line.text and line.text.endswith("[2]") and not line.year_conflict, line.text
    assert line.span is not None and 2015 in line.span.years


@pytest.mark.integration
def test_a_cut_keeps_the_later_clause_that_still_speaks_of_what_was_asked(retriever: Retriever) -> None:
    # '2020年优良天数达到230天' answers 'how many days'; the question asks how many more than in 2015, which
    # the next clause says: the cut may not stop before it
    p = _passage(retriever, "2021-zhengzhou-14th-five-year-plan-outline.txt", "比2015年增加90天")
    q = retriever.understand("十四五规划纲要里，2020年郑州优良天数比2015年多了多少天？")
    span = next(
        s for s in compose(q, [_hit(p)], retriever.corpus, AnswerModel.load()).ranked if "230天" in s.text
    )
    shown = choose_clause(q, retriever.corpus, span)
    assert "增加90天" in shown and shown in span.text, shown


@pytest.mark.integration
def test_a_cut_keeps_the_run_of_bare_items_that_shares_its_lead_in(retriever: Retriever) -> None:
    # the 1955 report: "…可以扩大到年产生铁二百五十万吨，钢三百二十二万吨，钢材二百四十八万吨。" The steel figure
    # is the second item of the list; the stretch that wins has the lead-in and the first item
    p = _national_passage("national-1955-government-work-report.txt", 121, 1955)
    q = retriever.understand("鞍山钢铁联合企业改建完成以后，钢的年产规模可以扩大到多少？")
    span = next(
        s for s in compose(q, [_hit(p)], retriever.corpus, AnswerModel.load()).ranked if "钢材" in s.text
    )
    shown = choose_clause(q, retriever.corpus, span)
    assert (
        "扩大到年产生铁二百五十万吨，钢三百二十二万吨，钢材二百四十八万吨" in shown and shown in span.text
    ), shown
    # clauses with a verb of their own are not items of the run: the cut still stops at the one asked
    targets = _passage(retriever, R2024, "固定资产投资增长8%以上")
    line = compose(
        retriever.understand("2024年郑州固定资产投资增长目标是多少？"),
        [_hit(targets)],
        retriever.corpus,
        AnswerModel.load(),
    )
    assert line.text == "固定资产投资增长8%以上[1]", line.text


@pytest.mark.integration
def test_a_cut_keeps_the_breakdown_of_what_was_asked(retriever: Retriever) -> None:
    # the 1954 report: the share of state organs (defence and administration) fell to 30.7%, "其中国防费…降低到
    # 百分之二十一点一": a question about defence wants the 其中 clause, which the cut may not drop
    p = _national_passage("national-1954-government-work-report.txt", 73, 1954)
    q = retriever.understand("1954年预算中国防费占财政支出的比重降到了多少？")
    span = next(
        s
        for s in compose(q, [_hit(p)], retriever.corpus, AnswerModel.load()).ranked
        if "其中國防費" in s.text
    )
    shown = choose_clause(q, retriever.corpus, span)
    assert shown.endswith("其中國防費從百分之四十一點五降低到百分之二十一點一") and shown in span.text, shown
    assert "行政管理費從" not in shown  # the breakdown's other item is not asked


@pytest.mark.integration
def test_an_open_question_answered_by_a_short_restatement_gets_the_sentence_after_it(
    retriever: Retriever,
) -> None:
    # the 1979 national report: the sentence that best matches "why" only restates the question; the reason
    # is the next one
    line = (
        (NATIONAL / "national-1979-government-work-report.txt").read_text(encoding="utf-8").splitlines()[94]
    )
    text = line.strip()[: line.strip().index("我们一定要")]
    assert text.startswith("采取坚决有力的措施，加快轻纺工业的发展。轻纺工业投资少，积累快。")
    p = Passage(
        "n1979-95",
        "national-1979-government-work-report.txt",
        "1979年国务院政府工作报告",
        1979,
        [],
        text,
        text,
        SourceSpan(95, 95, 0, len(text)),
    )
    q = retriever.understand("为什么要加快发展轻纺工业？")
    answer = compose(q, [_hit(p)], retriever.corpus, AnswerModel.load())
    assert answer.text.startswith("采取坚决有力的措施，加快轻纺工业的发展。[1]轻纺工业投资少，积累快。[1]"), (
        answer.text
    )
    # a question for a figure keeps its one sentence
    q = retriever.understand("轻纺工业投资是多少？")
    assert compose(q, [_hit(p)], retriever.corpus, AnswerModel.load()).text.count("[1]") == 1


@pytest.mark.integration
def test_a_plan_period_figure_answers_its_last_year_only(retriever: Retriever) -> None:
    # the outline's "加快推进460个社区公园和微公园（小游园）建设" is about 2021-2025 as a whole: a target for
    # the period's end ("到2025年"), no figure for 2023
    p = _passage(retriever, "2021-zhengzhou-14th-five-year-plan-outline.txt", "460个社区公园")
    model = AnswerModel.load()
    end = compose(
        retriever.understand("到2025年郑州要建设多少个社区公园和微公园？"), [_hit(p)], retriever.corpus, model
    )
    assert "460个" in end.text and not end.year_conflict, end.text
    inside = compose(
        retriever.understand("2023年郑州要建设多少个社区公园和微公园？"), [_hit(p)], retriever.corpus, model
    )
    assert inside.year_conflict and 2025 in inside.other_years, inside.other_years


@pytest.mark.integration
def test_the_figure_in_the_unit_asked_wins(retriever: Retriever) -> None:
    # one passage, figures in 万人, 亿元 and %: the question's unit picks the sentence
    p = _passage(retriever, "2021-zhengzhou-government-work-report.txt", "新增城镇就业14万人")
    q = retriever.understand("2020年郑州城镇新增就业了多少人？")
    line = compose(q, [_hit(p)], retriever.corpus, AnswerModel.load())
    assert "14万人" in line.text, line.text


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "figure"),
    [
        ("2019年郑州粮食一共收了多少？", "149.7万吨"),
        ("2019年郑州旅游总共挣了多少钱？", "1598.9亿元"),
    ],
)
def test_paraphrases_are_answered(retriever: Retriever, question: str, figure: str) -> None:
    ans = retriever.ask(question)
    assert not ans.abstained and figure in ans.text, ans.text


@pytest.mark.integration
@pytest.mark.parametrize(
    "question", ["' OR 1=1; DROP TABLE passages;--", "{{7*7}}", "<script>alert(1)</script>"]
)
def test_nonsense_is_refused(retriever: Retriever, question: str) -> None:
    for rerank in (None, False):
        ans = retriever.ask(question, rerank=rerank)
        assert ans.abstained and ans.text.startswith("资料中没有找到"), ans.text


@pytest.mark.integration
def test_the_asking_words_are_not_unknown_terms(retriever: Retriever) -> None:
    # 哪几条 / 哪几个 are how a list is asked for: the rule on terms the reports never use reads the rest
    q = retriever.understand("2024年郑州将建成通车哪几条地铁线？")
    hits = retriever.search("2024年郑州将建成通车哪几条地铁线？")
    top = Candidate(0, hits[0].passage, features=dict(hits[0].signals))
    assert rule_refusal(q, top, retriever.corpus) == ""
    # a question about another city's project still meets it
    other = retriever.understand("2024年开封将建成通车哪几条城际铁路？")
    assert rule_refusal(other, top, retriever.corpus) != ""


@pytest.mark.integration
def test_a_line_without_the_unit_of_measure_asked_for_is_no_answer(retriever: Retriever) -> None:
    # the 2024 report gives 2023's income only as a growth rate: 多少元 is not answered by "增长6.7%"
    model = AnswerModel.load()
    p = _passage(retriever, R2024, "居民人均可支配收入增长6.7%")
    q = retriever.understand("2023年郑州城镇居民人均可支配收入是多少元？")
    # end to end the reply is a refusal
    assert retriever.ask(q.text).abstained
    # the line about income (the model may prefer the passage's GDP sentence, which has 元 but is about
    # something else, and then refuses by its confidence) is refused for its unit
    income = [s for s in candidate_spans(q, [_hit(p)], retriever.corpus) if "人均可支配收入" in s.text]
    line = compose(q, [_hit(p)], retriever.corpus, model, spans=income)
    assert "元" not in line.shown and line.unit_conflict and line.missing_unit == "元", line.text
    verdict = judge(line, model, calibrated=True)
    assert verdict.refuse and verdict.reason == "another unit"
    # the same passage answers the rate, and an amount in 元 (万亿元 is of the family)
    for question, figure in (
        ("2023年郑州居民人均可支配收入增长了多少？", "6.7%"),
        ("2023年郑州地区生产总值是多少亿元？", "1.36万亿元"),
    ):
        line = compose(retriever.understand(question), [_hit(p)], retriever.corpus, model)
        assert figure in line.shown and not line.unit_conflict, (question, line.text)
    # a unit of the same dimension is the figure asked for: 多少万吨 is answered by "粮食产量29.43亿斤"
    grain = _passage(retriever, R2024, "29.43亿斤")
    line = compose(
        retriever.understand("2023年郑州粮食产量是多少万吨？"), [_hit(grain)], retriever.corpus, model
    )
    assert "29.43亿斤" in line.shown and not line.unit_conflict, line.text
    # a count is not held to its unit: 第几个年头 is answered by 十周年
    ans = retriever.ask("2023年是郑州航空港区获批建设的第几个年头？")
    assert not ans.abstained and "十周年" in ans.text, ans.text


@pytest.mark.integration
def test_a_change_is_no_answer_to_the_level_of_a_rate(retriever: Retriever) -> None:
    # the 2020 report gives 2019's R&D spending only as growth ("全社会研发投入增长16.8%"): the intensity (a share
    # of GDP) is not there, so the reply is a refusal; the same passage answers how much it grew
    model = AnswerModel.load()
    p2020 = _passage(retriever, R2020, "全社会研发投入增长16.8%")
    line = compose(
        retriever.understand("2019年郑州全社会研发投入强度是多少？"), [_hit(p2020)], retriever.corpus, model
    )
    assert "增长16.8%" in line.shown and line.rate_conflict, line.text
    verdict = judge(line, model, calibrated=True)
    assert verdict.refuse and verdict.reason == "a change, not the level"
    grew = compose(
        retriever.understand("2019年郑州全社会研发投入增长了多少？"), [_hit(p2020)], retriever.corpus, model
    )
    assert "16.8%" in grew.shown and not grew.rate_conflict, grew.text
    # a level reached ("强度达到2.67%") answers the intensity
    p2024 = _passage(retriever, R2024, "全社会研发投入强度达到2.67%")
    level = compose(
        retriever.understand("2023年郑州全社会研发投入强度是多少？"), [_hit(p2024)], retriever.corpus, model
    )
    assert "2.67%" in level.shown and not level.rate_conflict, level.text


def _national_passage(report: str, line_no: int, year: int) -> Passage:
    text = (NATIONAL / report).read_text(encoding="utf-8").splitlines()[line_no - 1].strip()
    return Passage(
        f"n{year}-{line_no}",
        report,
        f"{year}年国务院政府工作报告",
        year,
        [],
        text,
        text,
        SourceSpan(line_no, line_no, 0, len(text)),
    )


@pytest.mark.integration
def test_a_figure_about_home_is_no_answer_to_a_question_about_another_country(retriever: Retriever) -> None:
    # the 1955 report names 美国 in the sentence before its figure for 我国's steel (汉阳钢铁厂, 八千五百多吨):
    # the passage names the country asked about, the line does not, so the reply is a refusal
    model = AnswerModel.load()
    p1955 = _national_passage("national-1955-government-work-report.txt", 181, 1955)
    assert "美国" in p1955.text and "汉阳钢铁厂" in p1955.text
    q = retriever.understand("美国的钢产量是多少？")
    assert q.other_places == ["美国"]
    line = compose(q, [_hit(p1955)], retriever.corpus, model)
    assert line.text and "美国" not in line.shown and line.place_conflict, line.text
    verdict = judge(line, model, calibrated=True)
    assert verdict.refuse and verdict.reason == "another place"
    # the 1959 report states Britain's own figure in the sentence it names Britain in: that is an answer
    p1959 = _national_passage("national-1959-government-work-report.txt", 46, 1959)
    q = retriever.understand("报告里拿英国作比较，英国在1880年的钢产量是多少？")
    line = compose(q, [_hit(p1959)], retriever.corpus, model)
    assert "一百三十一万吨" in line.shown and not line.place_conflict, line.text


@pytest.mark.integration
def test_a_result_for_a_year_no_report_looks_back_on_is_refused(retriever: Retriever) -> None:
    ans = retriever.ask("郑州2025年实际完成的地区生产总值是多少？")
    assert ans.abstained, ans.text


@pytest.mark.integration
def test_reranking_off_refuses_by_the_rules_and_the_year_only(retriever: Retriever) -> None:
    # abstain.py: without the default reranker no calibrated threshold applies; a reply is refused by the
    # rules or for a year that does not match, and never marked unsure
    lines = (REPO / "eval" / "gold" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(x)["question"] for x in lines[:80]] + ["{{7*7}}", "广州地铁有几条线路？"]
    view = retriever.corpus
    model = AnswerModel.load()
    refused = 0
    for question in questions:
        ans = retriever.ask(question, rerank=False)
        assert not ans.unsure, question
        top = Candidate(0, ans.hits[0].passage, features=dict(ans.hits[0].signals)) if ans.hits else None
        qvec = retriever.question_vector(ans.query)
        line = compose(ans.query, ans.hits, view, model, None, qvec=qvec) if ans.hits else None
        expected = (
            bool(rule_refusal(ans.query, top, view))
            or line is None
            or not line.text
            or line.year_conflict
            or line.place_conflict
            or line.unit_conflict
            or line.rate_conflict
        )
        assert ans.abstained == expected, (question, ans.text)
        refused += ans.abstained
    assert 2 <= refused < len(questions) // 2


@pytest.mark.integration
def test_unsure_lines_say_so_and_cite_verbatim(retriever: Retriever) -> None:
    lines = (REPO / "eval" / "gold" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    seen = 0
    for raw in lines[:120]:
        ans = retriever.ask(json.loads(raw)["question"])
        if ans.unsure:
            seen += 1
            assert not ans.abstained and ans.text.endswith("（最接近的资料，未能确认它回答了所问的问题）")
            quoted, n = ans.text.split("[", 1)[0], int(ans.text.split("[", 1)[1].split("]", 1)[0])
            assert quoted in ans.hits[n - 1].passage.text
        assert ans.confidence is None or 0.0 <= ans.confidence <= 1.0
    assert seen >= 1


@pytest.mark.integration
def test_the_chat_says_unsure_before_the_line(retriever: Retriever) -> None:
    from qa.serve.chat import render_answer

    lines = (REPO / "eval" / "gold" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    answers = [retriever.ask(json.loads(raw)["question"]) for raw in lines[:60]]
    unsure = next(a for a in answers if a.unsure)
    html = render_answer(retriever, unsure)
    assert "qa-unsure" in html and html.index("最接近的资料") < html.index('class="qa-cite"')
    assert html.count("未能确认它回答了所问的问题") == 1
    stated = next(a for a in answers if not a.unsure and not a.abstained)
    assert "qa-unsure" not in render_answer(retriever, stated)


# ---- a state "as of" a year: stated by the report delivered in it -----------------------------------------


@pytest.fixture(scope="module")
def as_of_reports(
    tmp_path_factory: pytest.TempPathFactory, session_settings: Settings, real_encoder: Any
) -> Retriever:
    """The 1975 and 1998 national reports (no catalog), indexed: each reviews the year before its own."""
    root = tmp_path_factory.mktemp("as-of")
    docs = root / "documents"
    docs.mkdir()
    for year in (1975, 1998):
        name = f"national-{year}-government-work-report.txt"
        shutil.copy(NATIONAL / name, docs / name)
    update_index(docs, root / "index", session_settings, encoder=real_encoder)
    return Retriever.open(root / "index", session_settings, documents_dir=docs, encoder=real_encoder)


def test_as_of_years_are_read_from_the_question(retriever: Retriever) -> None:
    assert as_of_years(retriever.understand("到1975年同我国建立外交关系的国家有多少？")) == {1975}
    assert as_of_years(retriever.understand("截至2023年郑州有多少家高新技术企业？")) == {2023}
    assert as_of_years(retriever.understand("1997年时全国有多少户国有小企业？")) == {1997}
    assert as_of_years(
        retriever.understand("How many countries had diplomatic ties with China as of 1975?")
    ) == {1975}
    assert as_of_years(retriever.understand("1997年时期的国有企业改革有什么特点？")) == set()
    # the close of a year is that year's review; a plan's horizon is a target, not a state
    assert as_of_years(retriever.understand("到1964年底同我国建交的国家有多少个？")) == set()
    assert as_of_years(retriever.understand("到2025年郑州人均公园绿地面积要达到多少？")) == set()


@pytest.mark.integration
@pytest.mark.parametrize(
    "question, answer",
    [
        # the 1975 report reviews 1974, and states the count as it stands when delivered
        ("到1975年同我国建立外交关系的国家有多少？", "近百个"),
        ("到1998年我国已经加入了多少个国际人权公约？", "国际人权公约"),
    ],
)
def test_a_state_as_of_a_year_is_answered_by_the_report_delivered_in_it(
    as_of_reports: Retriever, question: str, answer: str
) -> None:
    info = {i.year: i for i in as_of_reports.corpus.catalog}
    assert 1974 in info[1975].looks_back and 1975 not in info[1975].looks_back
    ans = as_of_reports.ask(question)
    assert not ans.abstained and answer in ans.text, ans.text
    assert "最接近的资料是" not in ans.text  # not turned away as another year's figure


# ---- the document a question names ------------------------------------------------------------------------

OUTLINE = "2021-zhengzhou-14th-five-year-plan-outline.txt"


def _cited_doc(ans: Any) -> str | None:
    m = re.search(r"\[(\d+)\]", ans.text)
    return ans.hits[int(m.group(1)) - 1].passage.doc if m else None


@pytest.mark.integration
def test_a_question_that_names_its_document_is_answered_from_it(retriever: Retriever) -> None:
    # the 2021 report and the outline both state 2020's 优良天数 "比2015年增加90天"; the question names the
    # outline (十四五规划纲要里), so the line comes from the outline
    question = "十四五规划纲要里，2020年郑州优良天数比2015年多了多少天？"
    ans = retriever.ask(question)
    assert not ans.abstained and "增加90天" in ans.text and _cited_doc(ans) == OUTLINE, ans.text
    spans = candidate_spans(ans.query, ans.hits, retriever.corpus, 5, retriever.question_vector(ans.query))
    docs = {s.hit: ans.hits[s.hit].passage.doc for s in spans}
    assert spans and all(
        (s.features["doc_named"], s.features["doc_not_named"])
        == ((1.0, 0.0) if docs[s.hit] == OUTLINE else (0.0, 1.0))
        for s in spans
    )
    # a report named by its year: 2021年政府工作报告中 is the 2021 report, not the outline of the same year
    q = retriever.understand("2021年政府工作报告中，2020年郑州地区生产总值是多少？")
    assert q.reports == [2021]
    ans = retriever.ask(q.text)
    assert _cited_doc(ans) == "2021-zhengzhou-government-work-report.txt" and "12003亿元" in ans.text, (
        ans.text
    )
    # a question that names no document gets neither signal
    ans = retriever.ask("2020年郑州优良天数比2015年多了多少天？")
    spans = candidate_spans(ans.query, ans.hits, retriever.corpus, 5)
    assert spans and all(s.features["doc_named"] == s.features["doc_not_named"] == 0.0 for s in spans)


def test_the_terms_next_to_the_question_word() -> None:
    def near(question: str) -> list[str]:
        q = _q(question)
        return slot_terms(q.normalized, q.terms)

    assert near("建筑业改革的关键是推行什么制度？") == ["推行", "制度"]
    assert near("郑开同城化先行示范区南北两区以什么为界？") == ["两区", "为界"]
    assert "粮食产量" in " ".join(near("2019年郑州粮食产量是多少？"))
    assert near("What was Zhengzhou's GDP in 2023?") == []


@pytest.mark.integration
def test_the_sentence_that_fills_the_question_word_beats_the_one_that_restates_the_topic(
    retriever: Retriever,
) -> None:
    # the 1984 report: "建筑业的改革，要围绕缩短工期…来进行。关键是要推行投资包干制和招标承包制。" The first
    # sentence has the topic (建筑业, 改革), the second what the question word asks for beside 推行
    p1984 = _national_passage("national-1984-government-work-report.txt", 68, 1984)
    q = retriever.understand("建筑业改革的关键是推行什么制度？")
    spans = candidate_spans(q, [_hit(p1984)], retriever.corpus)
    by_text = {s.text[:6]: s.features["slot"] for s in spans}
    assert by_text["关键是要推行"] > 0.0 and by_text["建筑业的改革"] == 0.0, by_text
    line = compose(q, [_hit(p1984)], retriever.corpus, AnswerModel.load())
    assert "投资包干制和招标承包制" in line.shown, line.text


@pytest.mark.integration
def test_a_restatement_whose_runner_up_fills_the_question_word_is_shown_with_it(retriever: Retriever) -> None:
    # a scorer that reads coverage only prefers the sentence that restates the topic (建筑业, 改革); the
    # sentence after it, the runner-up, holds the terms beside the question word: the line shows both
    p1984 = _national_passage("national-1984-government-work-report.txt", 68, 1984)
    cov_only = AnswerModel({"cov": 1.0})
    q = retriever.understand("建筑业改革的关键是推行什么制度？")
    line = compose(q, [_hit(p1984)], retriever.corpus, cov_only)
    assert line.shown.startswith("建筑业的改革"), line.text
    assert line.text.endswith("关键是要推行投资包干制和招标承包制。[1]"), line.text
    # when the best sentence holds the terms beside the question word itself, it stands alone
    q = retriever.understand("建筑业的改革要围绕什么来进行？")
    line = compose(q, [_hit(p1984)], retriever.corpus, cov_only)
    assert line.shown.startswith("建筑业的改革") and line.text.count("[1]") == 1, line.text
