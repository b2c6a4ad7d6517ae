"""Fusion of the first stage's rankings."""

from __future__ import annotations

import pytest

from qa.search.fusion import first_stage_score, reciprocal_rank_fusion

pytestmark = pytest.mark.unit


def test_rrf_rewards_agreement_and_counts_a_missing_rank_as_last() -> None:
    dense = {10: 0, 11: 1}
    lexical = {11: 0, 12: 1}
    scores = reciprocal_rank_fusion([10, 11, 12], [dense, lexical], k=60, missing_rank=110)
    assert scores[11] == pytest.approx(1 / 61 + 1 / 60)
    assert scores[10] == pytest.approx(1 / 60 + 1 / 170)
    assert scores[12] == pytest.approx(1 / 170 + 1 / 61)
    assert max(scores, key=scores.__getitem__) == 11  # found by both sides
    assert reciprocal_rank_fusion([10], [dense], k=60, missing_rank=110) == {10: pytest.approx(1 / 60)}


def test_routing_prior_nudges_only_when_routing_is_prior() -> None:
    assert first_stage_score(0.02, 1.0, "prior") == pytest.approx(0.03)
    assert first_stage_score(0.02, 0.0, "prior") == pytest.approx(0.02)
    assert first_stage_score(0.02, 1.0, "filter") == 0.02
    assert first_stage_score(0.02, 1.0, "off") == 0.02
