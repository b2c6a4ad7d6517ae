"""The dev gold set: every answer and evidence string is really in its document."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from helpers import unreachable_answers

from qa.errors import QAError
from qa.eval import QUESTION_TYPES, check_gold, load_gold, normalize_for_eval

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "eval" / "gold" / "dev.jsonl"


@pytest.fixture(scope="module")
def gold():
    return load_gold(DEV)


def test_dev_set_size_and_unanswerable_count(gold) -> None:
    assert len(gold) >= 200
    unanswerable = [q for q in gold if not q.answerable]
    assert len(unanswerable) == 15
    assert all(q.type == "unanswerable" and q.doc is None and q.answers == [] for q in unanswerable)


def test_ids_unique_and_types_valid(gold) -> None:
    ids = [q.id for q in gold]
    assert len(ids) == len(set(ids))
    assert {q.type for q in gold} <= set(QUESTION_TYPES)
    assert {q.difficulty for q in gold} <= {"easy", "medium", "hard"}


def test_every_answer_and_evidence_occurs_in_its_document(gold, documents_dir: Path) -> None:
    assert check_gold(gold, documents_dir) == []


def test_every_report_is_covered_and_a_third_is_hard(gold, documents_dir: Path) -> None:
    per_doc = Counter(q.doc for q in gold if q.doc)
    assert set(per_doc) == {p.name for p in documents_dir.glob("*.txt")}
    assert min(per_doc.values()) >= 20
    assert sum(q.difficulty == "hard" for q in gold) >= len(gold) / 3


def test_answers_are_short_and_not_copied_questions(gold) -> None:
    for q in gold:
        for a in q.answers:
            assert len(normalize_for_eval(a)) <= 60, (q.id, a)
        # a question that contains its own answer verbatim tests nothing
        assert not any(normalize_for_eval(a) in normalize_for_eval(q.question) for a in q.answers), q.id


def test_check_gold_reports_a_wrong_answer(gold, documents_dir: Path) -> None:
    q = next(q for q in gold if q.answerable)
    broken = type(q)(
        id=q.id, question=q.question, answers=["这句话不在任何报告里"], doc=q.doc, evidence=q.evidence
    )
    problems = check_gold([broken], documents_dir)
    assert len(problems) == 1 and "not found" in problems[0]
    missing = type(q)(id="x", question="?", answers=["郑州"], doc="no-such-report.txt")
    assert "not found in" in check_gold([missing], documents_dir)[0]


def test_answer_split_by_a_hard_line_break_still_matches(documents_dir: Path) -> None:
    # The 2023 feature breaks lines and spaces inside numbers; the rule compares whitespace-free NFKC text.
    raw = (documents_dir / "2023-zhengzhou-government-work-report-keywords.txt").read_text(encoding="utf-8")
    assert "1250亿元" not in unicodedata.normalize("NFKC", raw)
    assert "1250亿元" in normalize_for_eval(raw)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"id": "a", "question": "q", "doc": null}', "missing field 'answers'"),
        ('{"id": "a", "question": "q", "answers": ["x"], "doc": "d.txt", "type": "trivia"}', "unknown type"),
        ('{"id": "a", "question": "q", "answers": ["x"], "doc": null}', "both"),
        (
            '{"id": "a", "question": "q", "answers": [], "doc": null, "difficulty": "extreme"}',
            "unknown difficulty",
        ),
    ],
)
def test_load_gold_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps({"id": "ok", "question": "q", "answers": [], "doc": None}, ensure_ascii=False)
    f = tmp_path / "g.jsonl"
    f.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(QAError) as exc:
        load_gold(f)
    assert f"{f}:2:" in str(exc.value)
    assert message in str(exc.value)


def test_load_gold_rejects_duplicate_ids_and_missing_file(tmp_path: Path) -> None:
    row = json.dumps({"id": "a", "question": "q", "answers": [], "doc": None})
    f = tmp_path / "g.jsonl"
    f.write_text(row + "\n" + row + "\n", encoding="utf-8")
    with pytest.raises(QAError, match="duplicate id"):
        load_gold(f)
    with pytest.raises(QAError, match="does not exist"):
        load_gold(tmp_path / "nope.jsonl")


def test_every_answer_survives_cleaning_and_chunking(gold, documents_dir: Path) -> None:
    # An answer the cleaner drops or the chunker always cuts can never be retrieved.
    for chunker in ("chinese", "naive"):
        unreachable, errors = unreachable_answers(gold, documents_dir, chunker)
        assert unreachable == [], (chunker, unreachable)
