"""The retrieval metrics of issue 6: pure functions of gold questions and ranked passages, no I/O.

Definitions are fixed so numbers compare across systems:

* a passage *contains the answer* when its document equals the gold ``doc`` (by file name) and its
  text contains one of the gold ``answers``, both sides in ``normalize_for_eval`` form;
* hit@k / MRR@10 over the ranked passages;
* AR@B (answer recall within a reading budget of B whitespace-free characters): walk the ranked
  passages in order; a hit when an answer lies wholly inside the part read before the budget runs
  out, in a passage from the gold document;
* abstention rate on unanswerable questions, wrong-abstention rate on answerable ones;
* the answer line (the first line of the reply), on answerable questions: ``answer_acc`` when it is
  not a refusal and contains a gold answer (``normalize_for_eval`` form), ``answer_wrong`` when it is
  stated as the answer (not a refusal, not marked unsure) and contains none, ``answer_unsure`` when
  it is marked unsure (the nearest material, not an answer); the curve of answer accuracy against the
  share of questions answered as a confidence bar rises (``answer_curve``);
* latency p50/p95 per question; everything also broken down by type and difficulty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.eval.gold import GoldQuestion, normalize_for_eval

HIT_KS = (1, 5, 10)
MRR_K = 10
AR_BUDGETS = (500, 1500)


@dataclass
class QuestionResult:
    """What a system returned for one gold question."""

    ranked: list[tuple[str, str]]  # (doc file name, passage text), best first
    abstained: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    answer: str = ""  # the answer line
    unsure: bool = False  # the line is marked as the nearest material, not an answer
    confidence: float | None = None  # calibrated probability that the line holds the answer


def _doc_name(doc: str | None) -> str | None:
    # Documents are compared by file name so absolute and relative paths agree.
    return None if doc is None else Path(doc).name


def _norm_answers(gold: GoldQuestion) -> list[str]:
    return [a for a in (normalize_for_eval(x) for x in gold.answers) if a]


def contains_answer(passage_doc: str, passage_text: str, gold: GoldQuestion) -> bool:
    """True when the passage is from the gold document and its text holds one of the answers."""
    if not gold.answerable or _doc_name(passage_doc) != _doc_name(gold.doc):
        return False
    text = normalize_for_eval(passage_text)
    return any(a in text for a in _norm_answers(gold))


def first_hit_rank(gold: GoldQuestion, ranked: Sequence[tuple[str, str]]) -> int | None:
    """1-based rank of the first passage that contains the answer, or None."""
    for i, (doc, text) in enumerate(ranked, start=1):
        if contains_answer(doc, text, gold):
            return i
    return None


def hit_at(gold: GoldQuestion, ranked: Sequence[tuple[str, str]], k: int) -> bool:
    """True when one of the top k passages contains the answer."""
    return first_hit_rank(gold, ranked[:k]) is not None


def reciprocal_rank(gold: GoldQuestion, ranked: Sequence[tuple[str, str]], k: int = MRR_K) -> float:
    """1/rank of the first answer-bearing passage within the top k, else 0."""
    r = first_hit_rank(gold, ranked[:k])
    return 0.0 if r is None else 1.0 / r


def answer_recall_at_budget(gold: GoldQuestion, ranked: Sequence[tuple[str, str]], budget: int) -> bool:
    """True when an answer lies wholly inside the first `budget` whitespace-free characters read."""
    if not gold.answerable:
        return False
    answers = _norm_answers(gold)
    gdoc = _doc_name(gold.doc)
    left = budget
    for doc, text in ranked:
        if left <= 0:
            break
        norm = normalize_for_eval(text)
        part = norm[:left]  # the prefix read before the budget runs out
        if _doc_name(doc) == gdoc and any(a in part for a in answers):
            return True
        left -= len(norm)
    return False


def line_has_answer(line: str, gold: GoldQuestion) -> bool:
    """True when the answer line contains one of the gold answers (NFKC, whitespace removed)."""
    if not gold.answerable or not line:
        return False
    text = normalize_for_eval(line)
    return any(a in text for a in _norm_answers(gold))


def answer_curve(pairs: Sequence[tuple[GoldQuestion, QuestionResult]]) -> list[tuple[float, float]]:
    """(share of answerable questions answered, answer accuracy among them), most confident first.

    Refused questions come last (they are answered only at a bar of zero); [] when no result carries
    a confidence (a run without the calibrated answer model).
    """
    ans = [(g, r) for g, r in pairs if g.answerable]
    if not ans or all(r.confidence is None for _, r in ans):
        return []
    order = sorted(
        ans, key=lambda gr: (not gr[1].abstained, gr[1].confidence if gr[1].confidence is not None else 0.0)
    )[::-1]
    out: list[tuple[float, float]] = []
    right = 0
    for i, (g, r) in enumerate(order, start=1):
        right += line_has_answer(r.answer, g)
        out.append((round(i / len(ans), 4), round(right / i, 4)))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _mean(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def _as_result(r: Any) -> QuestionResult:
    if isinstance(r, QuestionResult):
        return r
    ranked, abstained, seconds = r
    return QuestionResult(ranked=list(ranked), abstained=bool(abstained), seconds=float(seconds))


def _group_metrics(pairs: Sequence[tuple[GoldQuestion, QuestionResult]]) -> dict[str, Any]:
    ans = [(g, r) for g, r in pairs if g.answerable]
    una = [(g, r) for g, r in pairs if not g.answerable]
    m: dict[str, Any] = {"n": len(pairs), "n_answerable": len(ans), "n_unanswerable": len(una)}
    for k in HIT_KS:
        m[f"hit@{k}"] = _mean(float(hit_at(g, r.ranked, k)) for g, r in ans)
    m[f"mrr@{MRR_K}"] = _mean(reciprocal_rank(g, r.ranked, MRR_K) for g, r in ans)
    for b in AR_BUDGETS:
        m[f"ar@{b}"] = _mean(float(answer_recall_at_budget(g, r.ranked, b)) for g, r in ans)
    m["abstain_unanswerable"] = _mean(float(r.abstained) for _, r in una)
    m["wrong_abstain_answerable"] = _mean(float(r.abstained) for _, r in ans)
    m["answer_acc"] = _mean(float(not r.abstained and line_has_answer(r.answer, g)) for g, r in ans)
    m["answer_wrong"] = _mean(
        float(not r.abstained and not r.unsure and not line_has_answer(r.answer, g)) for g, r in ans
    )
    m["answer_unsure"] = _mean(float(not r.abstained and r.unsure) for _, r in ans)
    secs = [r.seconds for _, r in pairs]
    m["latency_p50"] = percentile(secs, 50) if secs else None
    m["latency_p95"] = percentile(secs, 95) if secs else None
    return m


def compute_metrics(gold: Sequence[GoldQuestion], results: Sequence[Any]) -> dict[str, Any]:
    """All metrics overall and by type and difficulty; results align with gold (QuestionResult or tuples)."""
    if len(gold) != len(results):
        raise ValueError(f"{len(gold)} gold questions but {len(results)} results")
    pairs = [(g, _as_result(r)) for g, r in zip(gold, results, strict=True)]
    out: dict[str, Any] = {"overall": _group_metrics(pairs)}
    for key, attr in (("by_type", "type"), ("by_difficulty", "difficulty")):
        groups: dict[str, list[tuple[GoldQuestion, QuestionResult]]] = {}
        for g, r in pairs:
            groups.setdefault(getattr(g, attr) or "unknown", []).append((g, r))
        out[key] = {name: _group_metrics(ps) for name, ps in sorted(groups.items())}
    # hit@k for every k up to the deepest ranking, for the report's plot
    ans = [(g, r) for g, r in pairs if g.answerable]
    depth = max((len(r.ranked) for _, r in pairs), default=0)
    out["hit_curve"] = {
        str(k): _mean(float(hit_at(g, r.ranked, k)) for g, r in ans) for k in range(1, max(depth, 1) + 1)
    }
    out["answer_curve"] = answer_curve(pairs)
    return out


def stage_latency(results: Sequence[QuestionResult]) -> dict[str, dict[str, float]]:
    """p50 and p95 seconds of every pipeline stage the results report timings for."""
    stages: dict[str, list[float]] = {}
    for r in results:
        for stage, secs in r.timings.items():
            stages.setdefault(stage, []).append(float(secs))
    return {s: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for s, v in sorted(stages.items())}


def check_floors(metrics: dict[str, Any], floors: dict[str, dict[str, float]]) -> list[str]:
    """Gate: problems where an overall metric is under its 'min' floor or over its 'max' ceiling."""
    overall = metrics.get("overall", metrics)
    problems: list[str] = []
    for bound, limits in floors.items():
        if bound.startswith("_"):  # comments
            continue
        if bound not in ("min", "max"):
            raise QAError(f"Unknown floor section '{bound}'; use 'min' and 'max'.")
        for name, limit in limits.items():
            value = overall.get(name)
            if value is None:
                problems.append(f"{name}: not measured")
            elif bound == "min" and value < limit:
                problems.append(f"{name} = {value:.3f} is below the floor {limit:.3f}")
            elif bound == "max" and value > limit:
                problems.append(f"{name} = {value:.3f} is above the ceiling {limit:.3f}")
    return problems
