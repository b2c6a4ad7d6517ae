"""Gold question sets: the JSONL format, its validation, and the rule answers are matched by.

A passage *contains the answer* when its document equals the gold ``doc`` (by file name) and its
text contains one of the gold ``answers``, both sides compared in ``normalize_for_eval`` form.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError
from qa.text.normalize import normalize_for_eval

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
            cache[q.doc] = normalize_for_eval(f.read_text(encoding="utf-8")) if f.is_file() else None
        text = cache[q.doc]
        if text is None:
            problems.append(f"{q.id}: document {q.doc} not found in {ddir}")
            continue
        for a in q.answers:
            if normalize_for_eval(a) not in text:
                problems.append(f"{q.id}: answer {a!r} not found in {q.doc}")
        if q.evidence and normalize_for_eval(q.evidence) not in text:
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
