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


# --------------------------------------------------------------------------- the runner

# Settings that change what is in the index; configurations that differ only in retrieval
# settings share one index under compare_configs' work_dir.
_INDEX_FIELDS = (
    "chunker",
    "chunk_max_chars",
    "chunk_overlap_sentences",
    "chunk_min_chars",
    "model",
    "embed_backend",
    "faiss_index",
)
_DESCRIBE_FIELDS = (
    "chunker",
    "retrieval_mode",
    "reranker",
    "routing",
    "model",
    "candidates",
    "chunk_max_chars",
)
TABLE_COLUMNS = (
    "hit@1",
    "hit@5",
    "hit@10",
    "mrr@10",
    "ar@500",
    "ar@1500",
    "abstain_unanswerable",
    "wrong_abstain_answerable",
    "latency_p50",
    "latency_p95",
)


def _console(console: Any | None) -> Any:
    from rich.console import Console

    if console is not None:
        return console
    con = Console(stderr=True)
    # piped output defaults to 80 columns, too narrow for the metric tables
    return con if con.is_terminal else Console(stderr=True, width=140)


def _progress(console: Any, enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


def describe_settings(settings: Any) -> dict[str, Any]:
    """The settings that matter for an eval run, as a small JSON-ready dict."""
    return {f: getattr(settings, f) for f in _DESCRIBE_FIELDS if hasattr(settings, f)}


def _stage_latency(results: Sequence[QuestionResult]) -> dict[str, dict[str, float]]:
    stages: dict[str, list[float]] = {}
    for r in results:
        for stage, secs in r.timings.items():
            stages.setdefault(stage, []).append(float(secs))
    return {s: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for s, v in sorted(stages.items())}


def run_eval(
    retriever: Any,
    gold: Sequence[GoldQuestion],
    out_dir: str | Path | None,
    k: int = 10,
    progress: bool = True,
    console: Any | None = None,
    label: str = "eval",
) -> dict[str, Any]:
    """Ask every gold question through retriever.ask; write metrics.json, run.jsonl and report.md to out_dir."""
    import time

    from qa.errors import QAError as _QAError

    con = _console(console)
    results: list[QuestionResult] = []
    rows: list[dict[str, Any]] = []
    with _progress(con, progress) as prog:
        task = prog.add_task(label, total=len(gold))
        for q in gold:
            t0 = time.perf_counter()
            error = None
            try:
                ans = retriever.ask(q.question, k=k)
            except _QAError as exc:  # a question the system refuses still counts, as a miss
                ans, error = None, str(exc)
            seconds = time.perf_counter() - t0
            hits = list(ans.hits) if ans is not None else []
            ranked = [(h.passage.doc, h.passage.text) for h in hits]
            res = QuestionResult(
                ranked=ranked,
                abstained=bool(ans.abstained) if ans is not None else False,
                seconds=seconds,
                timings=dict(ans.timings) if ans is not None else {},
            )
            results.append(res)
            rank = first_hit_rank(q, ranked) if q.answerable else None
            row: dict[str, Any] = {
                "id": q.id,
                "question": q.question,
                "type": q.type,
                "difficulty": q.difficulty,
                "gold_doc": q.doc,
                "answers": q.answers,
                "hit_rank": rank,
                "abstained": res.abstained,
                "answer": ans.text if ans is not None else "",
                "seconds": round(seconds, 6),
                "timings": {s: round(v, 6) for s, v in res.timings.items()},
                "passages": [
                    {
                        "rank": i,
                        "doc": h.passage.doc,
                        "score": float(h.score),
                        "citation": h.passage.citation(),
                        "text": h.passage.text,
                    }
                    for i, h in enumerate(hits, start=1)
                ],
            }
            if ans is not None:
                row["query"] = {"years": ans.query.years, "docs": ans.query.docs, "notes": ans.query.notes}
            if error:
                row["error"] = error
            rows.append(row)
            prog.advance(task)
    metrics = compute_metrics(gold, results)
    metrics["stage_latency"] = _stage_latency(results)
    metrics["k"] = k
    metrics["settings"] = describe_settings(getattr(retriever, "settings", None))
    if out_dir is not None:
        write_run(Path(out_dir), metrics, rows, title=label)
    return metrics


def _fmt(v: Any, key: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if key.startswith("latency") or key in ("p50", "p95"):
            return f"{v * 1000:.0f} ms"
        return f"{v:.3f}"
    return str(v)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A markdown table of dict rows (first column 'config', or the first key), floats to 3 places."""
    if not rows:
        return ""
    first = "config" if "config" in rows[0] else next(iter(rows[0]))
    cols = [first] + [c for c in (columns or TABLE_COLUMNS) if c != first and any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c), c) for c in cols) + " |")
    return "\n".join(lines)


def _group_rows(groups: dict[str, dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [{name: g, "n": m["n"], **{c: m.get(c) for c in TABLE_COLUMNS}} for g, m in groups.items()]


def plot_hit_curve(curves: dict[str, dict[str, float | None]], path: Path) -> Path:
    """Save a PNG of hit@k against k, one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, curve in curves.items():
        ks = sorted(int(x) for x in curve)
        ax.plot(ks, [curve[str(x)] or 0.0 for x in ks], marker="o", label=name)
    ax.set_xlabel("k")
    ax.set_ylabel("hit@k")
    ax.set_ylim(0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_run(
    out_dir: Path, metrics: dict[str, Any], rows: Sequence[dict[str, Any]], title: str = "eval"
) -> None:
    """Write metrics.json, run.jsonl, hit_at_k.png and report.md into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    with (out_dir / "run.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    plot_hit_curve({title: metrics["hit_curve"]}, out_dir / "hit_at_k.png")
    (out_dir / "report.md").write_text(render_report(metrics, rows, title), encoding="utf-8")


def render_report(metrics: dict[str, Any], rows: Sequence[dict[str, Any]], title: str = "eval") -> str:
    """The markdown report: overall, by type, by difficulty, stage latency, the plot and the misses."""
    o = metrics["overall"]
    parts = [
        f"# Eval report: {title}",
        "",
        f"{o['n']} questions ({o['n_answerable']} answerable, {o['n_unanswerable']} unanswerable), k={metrics.get('k')}.",
        "",
        "Settings: " + ", ".join(f"`{k}={v}`" for k, v in metrics.get("settings", {}).items()),
        "",
        "## Overall",
        "",
        format_table([{"config": title, **o}]),
        "",
        "## By type",
        "",
        format_table(_group_rows(metrics["by_type"], "type"), ("n", *TABLE_COLUMNS)),
        "",
        "## By difficulty",
        "",
        format_table(_group_rows(metrics["by_difficulty"], "difficulty"), ("n", *TABLE_COLUMNS)),
        "",
        "## Latency per stage",
        "",
        format_table(
            [{"stage": s, **v} for s, v in metrics.get("stage_latency", {}).items()],
            ("p50", "p95"),
        ),
        "",
        "## hit@k against k",
        "",
        "![hit@k](hit_at_k.png)",
        "",
        format_table([{"k": k, "hit@k": v} for k, v in metrics["hit_curve"].items()], ("hit@k",)),
        "",
    ]
    misses = [r for r in rows if r.get("answers") and (r.get("hit_rank") is None or r["hit_rank"] > 5)]
    parts += [f"## Answerable questions without the answer in the top 5 ({len(misses)})", ""]
    for r in misses:
        top = r["passages"][0]["citation"] if r["passages"] else "—"
        where = f"rank {r['hit_rank']}" if r.get("hit_rank") else "not found"
        parts.append(
            f"- `{r['id']}` {r['question']} → {r['answers'][0]} ({r['gold_doc']}); {where}; top: {top}"
        )
    wrong = [r for r in rows if not r.get("answers") and not r.get("abstained")]
    parts += ["", f"## Unanswerable questions answered anyway ({len(wrong)})", ""]
    parts += [f"- `{r['id']}` {r['question']} → {r['answer'][:80]}" for r in wrong]
    return "\n".join(parts) + "\n"


def default_compare_configs(base: Any, rerankers: Sequence[str] = ()) -> dict[str, Any]:
    """The issue-6 comparison: naive baseline, BM25 only, dense only, hybrid, full pipeline per reranker."""
    configs = {
        # langchain's recursive splitter on raw text, dense only, no routing: what a naive RAG does
        "naive baseline": base.with_(chunker="naive", retrieval_mode="dense", reranker="none", routing="off"),
        "BM25 only": base.with_(retrieval_mode="lexical", reranker="none"),
        "dense only": base.with_(retrieval_mode="dense", reranker="none"),
        "hybrid, no rerank": base.with_(retrieval_mode="hybrid", reranker="none"),
        "full (default reranker)": base.with_(retrieval_mode="hybrid", reranker="default"),
    }
    extra = list(rerankers)
    if base.reranker not in ("default", "none") and base.reranker not in extra:
        extra.insert(0, base.reranker)
    for name in extra:
        configs[f"full ({name})"] = base.with_(retrieval_mode="hybrid", reranker=name)
    return configs


def index_key(settings: Any) -> str:
    """A folder-safe name for the index a configuration needs (same key = same index)."""
    import hashlib

    parts = [f"{f}={getattr(settings, f)}" for f in _INDEX_FIELDS if hasattr(settings, f)]
    digest = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()[:10]
    readable = re.sub(
        r"[^0-9A-Za-z._-]+", "_", f"{getattr(settings, 'chunker', '')}-{getattr(settings, 'model', '')}"
    )
    return f"{readable[:40]}-{digest}"


def compare_configs(
    configs: dict[str, Any],
    gold: Sequence[GoldQuestion],
    documents_dir: str | Path,
    work_dir: str | Path,
    k: int = 10,
    progress: bool = True,
    console: Any | None = None,
) -> list[dict[str, Any]]:
    """Run each configuration on the same questions; returns one table row per config, writes compare.md."""
    from qa.search.retriever import Retriever

    con = _console(console)
    work = Path(work_dir)
    docs = Path(documents_dir)
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, float | None]] = {}
    for name, settings in configs.items():
        idx = work / "indexes" / index_key(settings)
        s = settings.with_(index_dir=str(idx), documents_dir=str(docs))
        con.print(f"[bold]{name}[/bold]: index {idx}")
        retriever = Retriever.open(idx, s, documents_dir=docs, build=True)
        slug = re.sub(r"[^0-9A-Za-z]+", "-", name).strip("-").lower() or "config"
        m = run_eval(retriever, gold, work / "runs" / slug, k=k, progress=progress, console=con, label=name)
        rows.append(
            {"config": name, **{c: m["overall"].get(c) for c in TABLE_COLUMNS}, "settings": m["settings"]}
        )
        curves[name] = m["hit_curve"]
    table = format_table(rows)
    plot_hit_curve(curves, work / "compare_hit_at_k.png")
    settings_lines = [
        f"- **{r['config']}**: " + ", ".join(f"`{a}={b}`" for a, b in r["settings"].items()) for r in rows
    ]
    (work / "compare.md").write_text(
        "# Configuration comparison\n\n"
        + f"{len(gold)} questions, k={k}.\n\n"
        + table
        + "\n\n![hit@k](compare_hit_at_k.png)\n\n"
        + "\n".join(settings_lines)
        + "\n",
        encoding="utf-8",
    )
    (work / "compare.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    print_table(rows, title="Comparison", console=con)
    return rows


# Short headers so the rich table fits an 80-column terminal.
_SHORT = {
    "hit@1": "h@1",
    "hit@5": "h@5",
    "hit@10": "h@10",
    "mrr@10": "MRR",
    "ar@500": "AR500",
    "ar@1500": "AR1500",
    "abstain_unanswerable": "abst.U",
    "wrong_abstain_answerable": "abst.A",
    "latency_p50": "p50",
    "latency_p95": "p95",
}


def print_table(rows: Sequence[dict[str, Any]], title: str = "", console: Any | None = None) -> None:
    """Print metric rows as a rich table."""
    from rich import box
    from rich.table import Table

    if not rows:
        return
    con = console if console is not None else _console(None)
    first = "config" if "config" in rows[0] else next(iter(rows[0]))
    cols = [c for c in TABLE_COLUMNS if any(c in r for r in rows)]
    table = Table(title=title or None, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column(first, no_wrap=True)
    for c in cols:
        table.add_column(_SHORT.get(c, c), justify="right", no_wrap=True)
    for r in rows:
        table.add_row(str(r.get(first)), *(_fmt(r.get(c), c) for c in cols))
    con.print(table)


def print_metrics(metrics: dict[str, Any], title: str = "eval", console: Any | None = None) -> None:
    """Print overall, by-type and by-difficulty tables of one run."""
    con = console if console is not None else _console(None)
    print_table([{"config": title, **metrics["overall"]}], title="Overall", console=con)
    print_table(_group_rows(metrics["by_type"], "type"), title="By type", console=con)
    print_table(_group_rows(metrics["by_difficulty"], "difficulty"), title="By difficulty", console=con)


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
