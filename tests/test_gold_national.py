"""The national dev gold set: 27 reports (1954–1999), every answer really in its report and reachable."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from helpers import unreachable_answers

from qa.eval import QUESTION_TYPES, check_gold, load_gold
from qa.eval import normalize_for_eval as normalize_for_match

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
NATIONAL_DEV = REPO / "eval" / "gold" / "national-dev.jsonl"
NATIONAL_DOCS = REPO / "corpora" / "national"


@pytest.fixture(scope="module")
def gold():
    return load_gold(NATIONAL_DEV)


def test_set_size_and_unanswerable_questions(gold) -> None:
    answerable = [q for q in gold if q.answerable]
    unanswerable = [q for q in gold if not q.answerable]
    assert len(answerable) >= 150
    assert len(unanswerable) >= 15
    assert all(q.type == "unanswerable" and q.doc is None and q.answers == [] for q in unanswerable)
    assert all(q.type != "unanswerable" for q in answerable)


def test_ids_unique_and_types_valid(gold) -> None:
    ids = [q.id for q in gold]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"n\d{3}", i) for i in ids), ids
    assert {q.type for q in gold} <= set(QUESTION_TYPES)
    assert {q.difficulty for q in gold} <= {"easy", "medium", "hard"}
    # a real mix: every answerable type is used
    assert {q.type for q in gold} == set(QUESTION_TYPES)


def test_every_answer_and_evidence_occurs_in_its_report(gold) -> None:
    assert check_gold(gold, NATIONAL_DOCS) == []


def test_evidence_holds_an_answer(gold) -> None:
    # evidence is the snippet around the answer, so a reader can check the gold by eye
    for q in gold:
        if q.answerable:
            assert q.evidence, q.id
            ev = normalize_for_match(q.evidence)
            assert any(normalize_for_match(a) in ev for a in q.answers), q.id


def test_every_report_is_covered_and_a_third_is_hard(gold) -> None:
    per_doc = Counter(q.doc for q in gold if q.doc)
    reports = {p.name for p in NATIONAL_DOCS.glob("*.txt")}
    assert len(reports) == 27
    assert set(per_doc) == reports
    assert min(per_doc.values()) >= 4
    assert sum(q.difficulty == "hard" for q in gold) >= len(gold) / 3


def test_answers_are_short_and_not_copied_questions(gold) -> None:
    for q in gold:
        for a in q.answers:
            assert len(normalize_for_match(a)) <= 60, (q.id, a)
        # a question that contains its own answer verbatim tests nothing
        assert not any(normalize_for_match(a) in normalize_for_match(q.question) for a in q.answers), q.id


def test_every_answer_survives_cleaning_and_chunking(gold) -> None:
    # An answer the cleaner drops or the chunker always cuts can never be retrieved.
    for chunker in ("chinese", "naive"):
        unreachable, errors = unreachable_answers(gold, NATIONAL_DOCS, chunker)
        assert errors == []
        assert unreachable == [], (chunker, unreachable)
