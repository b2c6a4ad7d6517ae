"""Metric definitions of issue 6 on small hand-made rankings built from real report text."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.eval import (
    GoldQuestion,
    QuestionResult,
    answer_recall_at_budget,
    compute_metrics,
    contains_answer,
    first_hit_rank,
    hit_at,
    normalize_for_eval,
    percentile,
    reciprocal_rank,
)

pytestmark = pytest.mark.unit

R24 = "2024-zhengzhou-government-work-report.txt"
R20 = "2020-zhengzhou-government-work-report.txt"
# Real lines of the 2024 report, as the file has them (hard line break inside the sentence).
GDP_2023 = "初步核算，地区生产总值增长7.4%、总量超过1.36\n万亿元；规模以上工业增加值增长12.8%"
GRAIN_2019 = "都市型农业提质发展。粮食总产量达到149.7万吨。"
OTHER = "新建改造供水管网167.9公里、燃气管网234.6公里、供热管网44.5公里"

GOLD_GDP = GoldQuestion(
    id="g1",
    question="2023年郑州GDP总量？",
    answers=["1.36万亿元"],
    doc=R24,
    type="fact_number",
    difficulty="hard",
)
GOLD_NONE = GoldQuestion(
    id="u1", question="2019年郑州地铁客流？", answers=[], doc=None, type="unanswerable", difficulty="hard"
)


def test_normalize_removes_all_whitespace_after_nfkc() -> None:
    assert normalize_for_eval("1 2 0 0\n亿元，") == "1200亿元,"
    assert normalize_for_eval("１．３６　万亿元") == "1.36万亿元"


def test_contains_answer_needs_gold_document_and_answer() -> None:
    assert contains_answer(R24, GDP_2023, GOLD_GDP)
    assert contains_answer("documents/" + R24, GDP_2023, GOLD_GDP)  # compared by file name
    assert not contains_answer(R20, GDP_2023, GOLD_GDP)  # right text, wrong report
    assert not contains_answer(R24, OTHER, GOLD_GDP)
    assert not contains_answer(R24, GDP_2023, GOLD_NONE)  # unanswerable questions never hit


def test_hit_positions_and_mrr() -> None:
    ranked = [(R24, OTHER), (R20, GDP_2023), (R24, OTHER), (R24, GDP_2023)] + [(R24, OTHER)] * 8
    assert first_hit_rank(GOLD_GDP, ranked) == 4
    assert not hit_at(GOLD_GDP, ranked, 1)
    assert not hit_at(GOLD_GDP, ranked, 3)
    assert hit_at(GOLD_GDP, ranked, 5)
    assert hit_at(GOLD_GDP, ranked, 10)
    assert reciprocal_rank(GOLD_GDP, ranked) == pytest.approx(0.25)
    late = [(R24, OTHER)] * 10 + [(R24, GDP_2023)]
    assert reciprocal_rank(GOLD_GDP, late, 10) == 0.0  # rank 11 is outside MRR@10
    assert reciprocal_rank(GOLD_GDP, [(R24, GDP_2023)]) == 1.0


def test_answer_recall_budget_boundaries() -> None:
    n_other = len(normalize_for_eval(OTHER))
    gdp = normalize_for_eval(GDP_2023)
    end_of_answer = gdp.index("1.36万亿元") + len("1.36万亿元")
    ranked = [(R24, OTHER), (R24, GDP_2023)]
    # exactly enough budget to read the answer's last character
    assert answer_recall_at_budget(GOLD_GDP, ranked, n_other + end_of_answer)
    # one character short: the answer is cut by the budget and does not count
    assert not answer_recall_at_budget(GOLD_GDP, ranked, n_other + end_of_answer - 1)
    # a long wrong-document passage with the answer does not count, and uses up the budget
    assert not answer_recall_at_budget(GOLD_GDP, [(R20, GDP_2023)], 10_000)
    assert not answer_recall_at_budget(GOLD_GDP, [(R20, GDP_2023 * 30), (R24, GDP_2023)], 500)
    assert answer_recall_at_budget(GOLD_GDP, [(R20, GDP_2023), (R24, GDP_2023)], 500)
    assert not answer_recall_at_budget(GOLD_NONE, ranked, 1500)


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) == 0.0
    assert percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)


def test_compute_metrics_overall_and_breakdowns() -> None:
    grain = GoldQuestion(
        id="g2",
        question="2019年粮食产量？",
        answers=["149.7万吨"],
        doc=R20,
        type="fact_number",
        difficulty="medium",
    )
    gold = [GOLD_GDP, grain, GOLD_NONE]
    results = [
        QuestionResult(ranked=[(R24, OTHER), (R24, GDP_2023)], abstained=False, seconds=0.1),
        ([(R24, OTHER)], True, 0.3),  # plain tuples are accepted too
        QuestionResult(ranked=[(R20, GRAIN_2019)], abstained=True, seconds=0.2),
    ]
    m = compute_metrics(gold, results)
    o = m["overall"]
    assert (o["n"], o["n_answerable"], o["n_unanswerable"]) == (3, 2, 1)
    assert o["hit@1"] == 0.0 and o["hit@5"] == 0.5 and o["hit@10"] == 0.5
    assert o["mrr@10"] == pytest.approx(0.25)
    assert o["ar@500"] == 0.5
    assert o["abstain_unanswerable"] == 1.0
    assert o["wrong_abstain_answerable"] == 0.5
    assert o["latency_p50"] == pytest.approx(0.2)
    assert set(m["by_type"]) == {"fact_number", "unanswerable"}
    assert m["by_difficulty"]["hard"]["n"] == 2 and m["by_difficulty"]["hard"]["hit@5"] == 1.0
    assert m["by_type"]["unanswerable"]["hit@5"] is None  # no answerable questions in that group
    assert m["hit_curve"]["1"] == 0.0 and m["hit_curve"]["2"] == 0.5


def test_compute_metrics_rejects_misaligned_results() -> None:
    with pytest.raises(ValueError):
        compute_metrics([GOLD_GDP], [])


def test_real_report_passage_contains_gold_answer(documents_dir: Path) -> None:
    # End to end on the real file: a window around the evidence holds the answer after normalisation.
    text = (documents_dir / R24).read_text(encoding="utf-8")
    i = text.find("初步核算")
    assert i >= 0
    assert contains_answer(R24, text[i : i + 80], GOLD_GDP)


def test_check_floors_flags_drops_and_rises() -> None:
    from qa.errors import QAError
    from qa.eval import check_floors

    m = {"overall": {"hit@5": 0.91, "hit@1": 0.70, "wrong_abstain_answerable": 0.08, "ar@500": None}}
    assert check_floors(m, {"min": {"hit@5": 0.90}, "max": {"wrong_abstain_answerable": 0.10}}) == []
    problems = check_floors(
        m, {"min": {"hit@1": 0.80, "ar@500": 0.5}, "max": {"wrong_abstain_answerable": 0.05}}
    )
    assert len(problems) == 3
    assert "hit@1 = 0.700 is below the floor 0.800" in problems
    with pytest.raises(QAError):
        check_floors(m, {"at_least": {"hit@5": 0.9}})
