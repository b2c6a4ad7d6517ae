"""Fusion of the first stage's rankings: reciprocal-rank fusion, and the order used before reranking."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def reciprocal_rank_fusion(
    rows: Iterable[int], rankings: Sequence[Mapping[int, int]], k: int, missing_rank: int
) -> dict[int, float]:
    """RRF score of each row over the given rankings (0-based ranks); a row absent from a ranking counts
    as ranked at `missing_rank`."""
    return {row: sum(1.0 / (k + ranking.get(row, missing_rank)) for ranking in rankings) for row in rows}


def first_stage_score(rrf: float, route_weight: float, routing: str) -> float:
    """The order before reranking: the fused score, nudged by the routing prior when routing is 'prior'."""
    return rrf * (1.0 + 0.5 * route_weight) if routing == "prior" else rrf
