"""The eval runner: ask every gold question through a retriever, score it, and compare configurations."""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.eval.gold import GoldQuestion
from qa.eval.metrics import QuestionResult, compute_metrics, first_hit_rank, stage_latency
from qa.eval.plots import require_matplotlib
from qa.eval.report import TABLE_COLUMNS, get_console, print_table, write_compare, write_run
from qa.index.spec import IndexSpec

_DESCRIBE_FIELDS = (
    "chunker",
    "retrieval_mode",
    "reranker",
    "routing",
    "model",
    "candidates",
    "chunk_max_chars",
    "store",
)


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
    if out_dir is not None:
        require_matplotlib()  # the report's plot: say so before the run, not after it
    con = get_console(console)
    results: list[QuestionResult] = []
    rows: list[dict[str, Any]] = []
    with _progress(con, progress) as prog:
        task = prog.add_task(label, total=len(gold))
        for q in gold:
            t0 = time.perf_counter()
            error = None
            try:
                ans = retriever.ask(q.question, k=k)
            except QAError as exc:  # a question the system refuses still counts, as a miss
                ans, error = None, str(exc)
            seconds = time.perf_counter() - t0
            hits = list(ans.hits) if ans is not None else []
            ranked = [(h.passage.doc, h.passage.text) for h in hits]
            res = QuestionResult(
                ranked=ranked,
                abstained=bool(ans.abstained) if ans is not None else False,
                seconds=seconds,
                timings=dict(ans.timings) if ans is not None else {},
                answer=ans.text if ans is not None else "",
                unsure=bool(getattr(ans, "unsure", False)),
                confidence=getattr(ans, "confidence", None),
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
                "unsure": res.unsure,
                "confidence": res.confidence,
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
    metrics["stage_latency"] = stage_latency(results)
    metrics["k"] = k
    metrics["settings"] = describe_settings(getattr(retriever, "settings", None))
    if out_dir is not None:
        write_run(Path(out_dir), metrics, rows, title=label)
    return metrics


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
    # the same full pipeline over the Milvus store (issue 17: parity with the embedded one), when installed
    if base.store != "milvus" and importlib.util.find_spec("pymilvus") is not None:
        configs["full, milvus store"] = base.with_(
            retrieval_mode="hybrid", reranker="default", store="milvus"
        )
    return configs


def index_key(settings: Any) -> str:
    """A folder-safe name for the index a configuration needs (same key = same index): IndexSpec's key,
    and the store's name when it is not the embedded one (a Milvus index lives in its own collections)."""
    key = IndexSpec.from_settings(settings).key()
    store = getattr(settings, "store", "embedded")
    return key if store == "embedded" else f"{key}-{store}"


def own_milvus_lite(settings: Any, work: Path) -> Any:
    """The settings with a local milvus-lite folder of the comparison's own (`work`/milvus.db) when they
    use the Milvus store without a server: a comparison never writes into the current folder."""
    if settings.store == "milvus" and not settings.milvus_uri.startswith(
        ("http:", "https:", "tcp:", "unix:")
    ):
        return settings.with_(milvus_uri=str(work / "milvus.db"))
    return settings


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

    require_matplotlib()
    con = get_console(console)
    work = Path(work_dir)
    docs = Path(documents_dir)
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, float | None]] = {}
    for name, settings in configs.items():
        idx = work / "indexes" / index_key(settings)
        s = settings.with_(index_dir=str(idx), documents_dir=str(docs))
        s = own_milvus_lite(s, work)
        con.print(f"[bold]{name}[/bold]: index {idx}")
        retriever = Retriever.open(idx, s, documents_dir=docs, build=True)
        slug = re.sub(r"[^0-9A-Za-z]+", "-", name).strip("-").lower() or "config"
        m = run_eval(retriever, gold, work / "runs" / slug, k=k, progress=progress, console=con, label=name)
        rows.append(
            {"config": name, **{c: m["overall"].get(c) for c in TABLE_COLUMNS}, "settings": m["settings"]}
        )
        curves[name] = m["hit_curve"]
    write_compare(work, rows, curves, len(gold), k)
    print_table(rows, title="Comparison", console=con)
    return rows
