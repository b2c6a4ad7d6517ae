"""Gold question sets, the retrieval metrics of issue 6, and the eval runner.

Metric definitions are fixed so numbers compare across systems:

* a passage *contains the answer* when its document equals the gold ``doc`` (by file name) and its
  text contains one of the gold ``answers``, both sides NFKC-normalised with all whitespace removed;
* hit@k / MRR@10 over the ranked passages;
* AR@B (answer recall within a reading budget of B whitespace-free characters): walk the ranked
  passages in order; a hit when an answer lies wholly inside the part read before the budget runs
  out, in a passage from the gold document;
* abstention rate on unanswerable questions, wrong-abstention rate on answerable ones;
* latency p50/p95 per question; everything also broken down by type and difficulty.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import QAError

QUESTION_TYPES = (
    "fact_number",
    "fact_entity",
    "list",
    "policy_goal",
    "comparison_year",
    "definition",
    "why_how",
    "unanswerable",
)
DIFFICULTIES = ("easy", "medium", "hard")
HIT_KS = (1, 5, 10)
MRR_K = 10
AR_BUDGETS = (500, 1500)

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class GoldQuestion:
    """One gold question: answers are alternatives, any one of them counts."""

    id: str
    question: str
    answers: list[str]
    doc: str | None
    evidence: str | None = None
    type: str | None = None
    difficulty: str | None = None

    @property
    def answerable(self) -> bool:
        """True when the gold set says some document answers it."""
        return bool(self.answers) and self.doc is not None


@dataclass
class QuestionResult:
    """What a system returned for one gold question."""

    ranked: list[tuple[str, str]]  # (doc file name, passage text), best first
    abstained: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def normalize_for_match(s: str) -> str:
    """NFKC, then remove all whitespace: the form answers and passages are compared in."""
    return _WS.sub("", unicodedata.normalize("NFKC", s))


def _doc_name(doc: str | None) -> str | None:
    # Documents are compared by file name so absolute and relative paths agree.
    return None if doc is None else Path(doc).name


def _norm_answers(gold: GoldQuestion) -> list[str]:
    return [a for a in (normalize_for_match(x) for x in gold.answers) if a]


def contains_answer(passage_doc: str, passage_text: str, gold: GoldQuestion) -> bool:
    """True when the passage is from the gold document and its text holds one of the answers."""
    if not gold.answerable or _doc_name(passage_doc) != _doc_name(gold.doc):
        return False
    text = normalize_for_match(passage_text)
    return any(a in text for a in _norm_answers(gold))


# --------------------------------------------------------------------------- gold files


def _fail(path: Path, line_no: int, msg: str) -> QAError:
    return QAError(f"{path}:{line_no}: {msg}")


def load_gold(path: str | Path) -> list[GoldQuestion]:
    """Read and validate a JSONL gold file; raise QAError naming file:line on the first bad line."""
    p = Path(path)
    if not p.is_file():
        raise QAError(f"Gold file {p} does not exist; pass an existing JSONL file with --gold.")
    out: list[GoldQuestion] = []
    seen: set[str] = set()
    for line_no, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(
                p, line_no, f"not valid JSON ({exc.msg}); each line must be one JSON object."
            ) from exc
        if not isinstance(obj, dict):
            raise _fail(p, line_no, "each line must be a JSON object.")
        for key in ("id", "question", "answers"):
            if key not in obj:
                raise _fail(p, line_no, f"missing field '{key}'.")
        if "doc" not in obj:
            raise _fail(p, line_no, "missing field 'doc' (use null for unanswerable questions).")
        qid, question, answers, doc = obj["id"], obj["question"], obj["answers"], obj["doc"]
        if not isinstance(qid, str) or not qid:
            raise _fail(p, line_no, "'id' must be a non-empty string.")
        if qid in seen:
            raise _fail(p, line_no, f"duplicate id '{qid}'.")
        seen.add(qid)
        if not isinstance(question, str) or not question.strip():
            raise _fail(p, line_no, "'question' must be a non-empty string.")
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            raise _fail(p, line_no, "'answers' must be a list of non-empty strings.")
        if doc is not None and (not isinstance(doc, str) or not doc):
            raise _fail(p, line_no, "'doc' must be a file name or null.")
        if bool(answers) != (doc is not None):
            raise _fail(p, line_no, "'answers' and 'doc' must be both empty/null (unanswerable) or both set.")
        qtype = obj.get("type")
        if qtype is not None and qtype not in QUESTION_TYPES:
            raise _fail(p, line_no, f"unknown type '{qtype}'; use one of {', '.join(QUESTION_TYPES)}.")
        if qtype == "unanswerable" and answers:
            raise _fail(p, line_no, "type 'unanswerable' must have empty 'answers'.")
        diff = obj.get("difficulty")
        if diff is not None and diff not in DIFFICULTIES:
            raise _fail(p, line_no, f"unknown difficulty '{diff}'; use one of {', '.join(DIFFICULTIES)}.")
        evidence = obj.get("evidence")
        if evidence is not None and not isinstance(evidence, str):
            raise _fail(p, line_no, "'evidence' must be a string.")
        out.append(
            GoldQuestion(
                id=qid,
                question=question,
                answers=list(answers),
                doc=doc,
                evidence=evidence,
                type=qtype,
                difficulty=diff,
            )
        )
    if not out:
        raise QAError(f"Gold file {p} has no questions.")
    return out


def check_gold(gold: Sequence[GoldQuestion], documents_dir: str | Path) -> list[str]:
    """Problems with a gold set against a documents folder: missing docs, answers or evidence not found."""
    ddir = Path(documents_dir)
    cache: dict[str, str | None] = {}
    problems: list[str] = []
    for q in gold:
        if q.doc is None:
            continue
        if q.doc not in cache:
            f = ddir / q.doc
            cache[q.doc] = normalize_for_match(f.read_text(encoding="utf-8")) if f.is_file() else None
        text = cache[q.doc]
        if text is None:
            problems.append(f"{q.id}: document {q.doc} not found in {ddir}")
            continue
        for a in q.answers:
            if normalize_for_match(a) not in text:
                problems.append(f"{q.id}: answer {a!r} not found in {q.doc}")
        if q.evidence and normalize_for_match(q.evidence) not in text:
            problems.append(f"{q.id}: evidence {q.evidence!r} not found in {q.doc}")
    return problems


def gold_summary(gold: Sequence[GoldQuestion]) -> dict[str, dict[str, int]]:
    """Question counts by document, type and difficulty (unanswerable questions count under doc '-')."""
    out: dict[str, dict[str, int]] = {"doc": {}, "type": {}, "difficulty": {}}
    for q in gold:
        for key, value in (
            ("doc", q.doc or "-"),
            ("type", q.type or "-"),
            ("difficulty", q.difficulty or "-"),
        ):
            out[key][value] = out[key].get(value, 0) + 1
    return {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in out.items()}


# --------------------------------------------------------------------------- metrics


def first_hit_rank(gold: GoldQuestion, ranked: Sequence[tuple[str, str]]) -> int | None:
    """1-based rank of the first passage that contains the answer, or None."""
    for i, (doc, text) in enumerate(ranked, start=1):
        if contains_answer(doc, text, gold):
            return i
    return None


def hit_at(gold: GoldQuestion, ranked: Sequence[tuple[str, str]], k: int) -> bool:
    """True when one of the top k passages contains the answer."""
    r = first_hit_rank(gold, ranked[:k])
    return r is not None


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
        norm = normalize_for_match(text)
        part = norm[:left]  # the prefix read before the budget runs out
        if _doc_name(doc) == gdoc and any(a in part for a in answers):
            return True
        left -= len(norm)
    return False


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
    return out
