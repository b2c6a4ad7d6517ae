"""The reranker's signals on real passages of the session index, and the public first stage."""

from __future__ import annotations

import re

import pytest
from helpers import R2024, BuiltIndex

from qa import Retriever
from qa.search.features import FEATURES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def retriever(built_index: BuiltIndex) -> Retriever:
    return Retriever.open(built_index.index, built_index.settings)


def test_every_candidate_carries_every_feature_in_first_stage_order(retriever: Retriever) -> None:
    cands = retriever.candidates("2023年郑州GDP是多少？", k=10)
    assert len(cands) >= 50
    assert all(set(c.features) == set(FEATURES) for c in cands)
    scores = [c.score for c in cands]
    assert scores == sorted(scores, reverse=True)


def test_the_gdp_passage_has_the_signals_of_an_answer(retriever: Retriever) -> None:
    cands = retriever.candidates("2023年郑州GDP是多少？", k=10)
    gdp = next(c for c in cands if "总量超过1.36万亿元" in c.text)
    f = gdp.features
    assert gdp.doc == R2024
    assert f["coverage"] == 1.0  # "gdp" found through its report wording 生产总值
    assert f["sentence"] == 1.0 and f["sentence_num"] == 1.0
    assert f["route"] == 1.0 and f["route_none"] == 0.0  # the 2024 report looks back on 2023
    assert f["numeric_q"] == 1.0
    other_year = [c for c in cands if c.doc != R2024 and c.features["route"] == 0.0]
    assert other_year and all(c.features["route_none"] == 1.0 for c in other_year)


def test_unit_and_numbers_signals(retriever: Retriever) -> None:
    cands = retriever.candidates("2024年郑州计划新增城镇就业多少万人？", k=10)
    # a number with the unit asked for (12万人), not the unit alone (上万人)
    with_unit = re.compile(r"\d\s*万人")
    jobs = [c for c in cands if with_unit.search(c.text)]
    assert jobs and all(c.features["unit"] == 1.0 for c in jobs)
    assert all(c.features["unit"] == 0.0 for c in cands if "万人" not in c.text)
    with_number = retriever.candidates("郑州有多少个1000亿元级产业集群？", k=10)
    assert any(c.features["numbers"] == 1.0 for c in with_number if "1000亿" in c.text)


def test_dense_gap_and_scaled_signals_are_relative_to_the_best_candidate(retriever: Retriever) -> None:
    cands = retriever.candidates("十四五期间要建成哪些国家级平台？", k=10)
    assert max(c.features["dense_gap"] for c in cands) == 0.0
    assert max(c.features["rrf"] for c in cands) == pytest.approx(1.0)
    assert max(c.features["bm25"] for c in cands) == pytest.approx(1.0)
    assert any(c.features["kind"] == 1.0 for c in cands)  # 十四五 names the plan outline
