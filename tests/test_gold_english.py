"""The English gold sets: English questions whose answers are verbatim Chinese from the reports."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import unreachable_answers

from qa.eval import QUESTION_TYPES, check_gold, load_gold
from qa.eval import normalize_for_eval as normalize_for_match

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "eval" / "gold"
EN_DEV = GOLD / "en-dev.jsonl"
EN_NATIONAL = GOLD / "en-national.jsonl"
NATIONAL = REPO / "corpora" / "national"

# CJK ideographs (unified, extension A, compatibility): a question with one of these is a mixed question.
CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@pytest.fixture(scope="module")
def en_dev() -> list[Any]:
    return load_gold(EN_DEV)


@pytest.fixture(scope="module")
def en_national() -> list[Any]:
    return load_gold(EN_NATIONAL)


@pytest.fixture(scope="module", params=["en-dev", "en-national"])
def gold_and_corpus(request, en_dev, en_national, documents_dir: Path) -> tuple[list[Any], Path]:
    return (en_dev, documents_dir) if request.param == "en-dev" else (en_national, NATIONAL)


def _answerable(gold: list[Any]) -> list[Any]:
    return [q for q in gold if q.answerable]


def test_sizes_and_unanswerable_counts(en_dev, en_national) -> None:
    assert len(_answerable(en_dev)) >= 60
    assert len(_answerable(en_national)) >= 30
    for gold, floor in ((en_dev, 6), (en_national, 4)):
        unanswerable = [q for q in gold if not q.answerable]
        assert len(unanswerable) >= floor
        assert all(q.type == "unanswerable" and q.doc is None and q.answers == [] for q in unanswerable)


def test_ids_unique_across_both_sets_and_apart_from_the_chinese_sets(en_dev, en_national) -> None:
    ids = [q.id for q in en_dev + en_national]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"e\d{3}", q.id) for q in en_dev)
    assert all(re.fullmatch(r"en\d{3}", q.id) for q in en_national)
    chinese = [p for p in GOLD.glob("*.jsonl") if not p.name.startswith("en-")]
    assert chinese, "the Chinese dev set should be beside the English ones"
    chinese_ids = {q.id for p in chinese for q in load_gold(p)}
    assert chinese_ids.isdisjoint(ids)


def test_types_and_difficulties_valid_and_a_third_hard(gold_and_corpus) -> None:
    gold, _ = gold_and_corpus
    assert {q.type for q in gold} <= set(QUESTION_TYPES)
    assert {q.difficulty for q in gold} <= {"easy", "medium", "hard"}
    assert sum(q.difficulty == "hard" for q in gold) >= len(gold) / 3


def test_every_answer_and_evidence_occurs_in_its_document(gold_and_corpus) -> None:
    gold, corpus = gold_and_corpus
    assert check_gold(gold, corpus) == []
    assert all(q.evidence for q in _answerable(gold))


def test_questions_are_english_with_a_few_mixed(gold_and_corpus) -> None:
    gold, _ = gold_and_corpus
    mixed = [q.id for q in gold if CJK.search(q.question)]
    assert len(mixed) <= 0.15 * len(gold), mixed
    # every question, mixed or not, is mostly English words
    assert all(re.search(r"[A-Za-z]{3,}", q.question) for q in gold)


def test_answers_are_short_chinese_and_not_in_the_question(gold_and_corpus) -> None:
    gold, _ = gold_and_corpus
    for q in gold:
        for a in q.answers:
            assert len(normalize_for_match(a)) <= 60, (q.id, a)
            # the answer line quotes the report, so a gold answer is never an English gloss
            assert CJK.search(a) or not re.search("[A-Za-z]", a), (q.id, a)
            assert normalize_for_match(a) not in normalize_for_match(q.question), q.id


def test_dev_set_covers_every_report_and_national_set_many(en_dev, en_national, documents_dir: Path) -> None:
    per_doc = Counter(q.doc for q in en_dev if q.doc)
    assert set(per_doc) == {p.name for p in documents_dir.glob("*.txt")}
    assert min(per_doc.values()) >= 8
    national_docs = {q.doc for q in en_national if q.doc}
    assert len(national_docs) >= 20
    assert national_docs <= {p.name for p in NATIONAL.glob("*.txt")}


def test_national_set_reaches_traditional_script_and_full_width_digits(en_national) -> None:
    # The 1954 report is in traditional characters; answers keep its script (no conversion when matching).
    raw = {q.doc: (NATIONAL / q.doc).read_text(encoding="utf-8") for q in en_national if q.doc}
    assert any("萬" in a or "個" in a for q in en_national for a in q.answers)
    assert any(re.search("[０-９]", raw[q.doc]) for q in en_national if q.doc)


def test_every_answer_survives_cleaning_and_chunking(gold_and_corpus) -> None:
    # An answer the cleaner drops or the chunker always cuts can never be retrieved.
    gold, corpus_dir = gold_and_corpus
    for chunker in ("chinese", "naive"):
        unreachable, _ = unreachable_answers(gold, corpus_dir, chunker)
        assert unreachable == [], (chunker, unreachable)
