"""The answer-line metrics of the eval suite, and the calibration of the answer model on held-out folds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO, BuiltIndex

from qa import Retriever
from qa.eval.gold import GoldQuestion, load_gold
from qa.eval.metrics import QuestionResult, answer_curve, compute_metrics, line_has_answer
from qa.eval.report import TABLE_COLUMNS, render_report, write_run
from qa.search.answer import AnswerModel

GDP = GoldQuestion("q1", "2023年郑州GDP是多少？", ["1.36万亿元"], "r.txt", type="fact_number")
JOBS = GoldQuestion("q2", "2023年新增城镇就业多少？", ["12.1万人"], "r.txt", type="fact_number")
RATE = GoldQuestion("q3", "2023年失业率？", ["5.5%"], "r.txt", type="policy_goal")
NONE = GoldQuestion("q4", "2022年郑州GDP是多少？", [], None, type="unanswerable")


def _r(
    answer: str, abstained: bool = False, unsure: bool = False, conf: float | None = None
) -> QuestionResult:
    return QuestionResult(ranked=[], abstained=abstained, answer=answer, unsure=unsure, confidence=conf)


@pytest.mark.unit
def test_the_line_holds_an_answer_whatever_the_width_and_spacing() -> None:
    assert line_has_answer("总量超过１．３６万亿 元[1]", GDP)  # NFKC and whitespace-insensitive
    assert not line_has_answer("总量超过1.2万亿元[1]", GDP)
    assert not line_has_answer("1.36万亿元", NONE)


@pytest.mark.unit
def test_answer_acc_wrong_and_unsure_overall_and_by_type() -> None:
    gold = [GDP, JOBS, RATE, NONE]
    results = [
        _r("总量超过1.36万亿元[1]", conf=0.9),  # right, stated
        _r("新增城镇就业14万人[1]", conf=0.4),  # wrong, stated
        _r(
            "失业率5.5%左右[1]（最接近的资料，未能确认它回答了所问的问题）", unsure=True, conf=0.6
        ),  # right, unsure
        _r("资料中没有找到…", abstained=True),
    ]
    m = compute_metrics(gold, results)
    o = m["overall"]
    assert o["answer_acc"] == pytest.approx(2 / 3)
    assert o["answer_wrong"] == pytest.approx(1 / 3)
    assert o["answer_unsure"] == pytest.approx(1 / 3)
    assert o["abstain_unanswerable"] == 1.0
    assert m["by_type"]["fact_number"]["answer_acc"] == 0.5
    assert m["by_type"]["policy_goal"]["answer_wrong"] == 0.0  # an unsure line is not stated wrongly
    # a refusal of an answerable question is neither right nor a wrong line
    refused = compute_metrics([GDP], [_r("资料中没有找到…1.36万亿元", abstained=True)])["overall"]
    assert refused["answer_acc"] == 0.0 and refused["answer_wrong"] == 0.0
    # the curve: most confident first, accuracy among those answered
    assert [p[1] for p in m["answer_curve"]] == [1.0, 1.0, pytest.approx(2 / 3, abs=1e-3)]
    assert answer_curve([(GDP, _r("x"))]) == []  # no confidences, no curve
    assert {"answer_acc", "answer_wrong", "answer_unsure"} <= set(TABLE_COLUMNS)


@pytest.mark.unit
def test_the_report_shows_the_curve_and_the_wrong_lines(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    gold = [GDP, JOBS]
    results = [_r("总量超过1.36万亿元[1]", conf=0.9), _r("新增城镇就业14万人[1]", conf=0.4)]
    m = compute_metrics(gold, results)
    rows = [
        {
            "id": g.id,
            "question": g.question,
            "answers": g.answers,
            "answer": r.answer,
            "abstained": False,
            "unsure": False,
            "passages": [],
            "hit_rank": 1,
            "gold_doc": g.doc,
        }
        for g, r in zip(gold, results, strict=True)
    ]
    write_run(tmp_path, m, rows, title="t")
    assert (tmp_path / "answer_curve.png").stat().st_size > 1000
    report = render_report(m, rows, "t")
    assert "answer_curve.png" in report and "| answer_acc | answer_wrong | answer_unsure |" in report
    assert "stated answer line lacks the answer (1)" in report and "`q2`" in report


@pytest.mark.integration
def test_calibration_on_held_out_folds_writes_a_model_the_retriever_reads(
    built_index: BuiltIndex, tmp_path: Path
) -> None:
    pytest.importorskip("scipy")
    from qa.eval.calibrate import calibrate, collect

    gold = load_gold(REPO / "eval" / "gold" / "dev.jsonl")[:80]
    r = Retriever.open(built_index.index, built_index.settings)
    records = collect(r, gold, "dev")
    cal = calibrate(records, folds=3)
    held = cal.report["heldout"]["dev"]
    assert 0.5 < held["answer_acc"] <= 1.0 and held["answer_wrong"] <= 0.1
    assert cal.model.calibrated and 0.0 <= cal.model.unsure_below <= 1.0
    assert cal.report["curve"]["dev"] and all(0 <= a <= 1 for _, a in cal.report["curve"]["dev"])
    path = tmp_path / "answer.json"
    cal.model.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["meta"]["report"]["heldout"]
    loaded = AnswerModel.load(path)
    assert loaded.weights == cal.model.weights and loaded.unsure_below == cal.model.unsure_below
    other = Retriever.open(built_index.index, built_index.settings.with_(answer_weights=str(path)))
    assert other.ask("2023年郑州GDP是多少？").confidence is not None


@pytest.mark.unit
def test_a_missing_answer_weights_file_is_one_sentence() -> None:
    from qa.errors import QAError

    with pytest.raises(QAError, match="does not exist; write it with"):
        AnswerModel.load("/nonexistent/answer.json")
