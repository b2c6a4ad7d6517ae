"""Abstention: with reranking switched off for a call, whether a question is refused must not depend on
which questions came before it (the bug of issue 12), and the rules hold on real passages."""

from __future__ import annotations

import json

import pytest
from helpers import REPO, BuiltIndex

from qa import Retriever

GDP = "2023年郑州GDP是多少？"


def _dev_questions(n: int) -> list[str]:
    lines = (REPO / "eval" / "gold" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines[:n]]


@pytest.mark.integration
def test_reranking_off_refuses_the_same_before_and_after_the_reranker_is_loaded(
    built_index: BuiltIndex,
) -> None:
    questions = _dev_questions(60)
    fresh = Retriever.open(built_index.index, built_index.settings)
    before = [fresh.ask(q, rerank=False).abstained for q in questions]
    fresh.ask(GDP)  # a question with the default reranker loads it
    after = [fresh.ask(q, rerank=False).abstained for q in questions]
    changed = [q for q, a, b in zip(questions, before, after, strict=True) if a != b]
    assert changed == []


@pytest.mark.integration
def test_reranking_switched_on_for_one_call_refuses_like_the_default(built_index: BuiltIndex) -> None:
    # reranking configured off, turned on for a call: the calibrated threshold applies as it does by default
    questions = _dev_questions(60)
    off = Retriever.open(built_index.index, built_index.settings.with_(reranker="none"))
    default = Retriever.open(built_index.index, built_index.settings)
    switched = [off.ask(q, rerank=True).abstained for q in questions]
    assert switched == [default.ask(q).abstained for q in questions]
