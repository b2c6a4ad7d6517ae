"""Eval reports: markdown tables, rich tables on the console, and the files a run writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.eval.plots import plot_answer_curve, plot_hit_curve
from qa.text.normalize import normalize_for_eval

TABLE_COLUMNS = (
    "hit@1",
    "hit@5",
    "hit@10",
    "mrr@10",
    "ar@500",
    "ar@1500",
    "abstain_unanswerable",
    "wrong_abstain_answerable",
    "answer_acc",
    "answer_wrong",
    "answer_unsure",
    "latency_p50",
    "latency_p95",
)

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
    "answer_acc": "acc",
    "answer_wrong": "wrong",
    "answer_unsure": "unsure",
    "latency_p50": "p50",
    "latency_p95": "p95",
}


def get_console(given: Any | None = None) -> Any:
    """The given rich console, or one on stderr wide enough for the metric tables."""
    from rich.console import Console

    if given is not None:
        return given
    con = Console(stderr=True)
    # piped output defaults to 80 columns, too narrow for the metric tables
    return con if con.is_terminal else Console(stderr=True, width=140)


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


def write_run(
    out_dir: Path, metrics: dict[str, Any], rows: Sequence[dict[str, Any]], title: str = "eval"
) -> None:
    """Write metrics.json, run.jsonl, hit_at_k.png, answer_curve.png (when the run has confidences) and
    report.md into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    with (out_dir / "run.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    plot_hit_curve({title: metrics["hit_curve"]}, out_dir / "hit_at_k.png")
    if metrics.get("answer_curve"):
        plot_answer_curve(
            {title: metrics["answer_curve"]}, out_dir / "answer_curve.png", _answered_mark(metrics, title)
        )
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
    curve = metrics.get("answer_curve") or []
    if curve:
        mark = _answered_mark(metrics, title).get(title)
        parts += [
            "## Answer accuracy against the share of questions answered",
            "",
            "Answerable questions ordered by the line's calibrated confidence, most confident first; the dot is "
            "where this run stands (lines stated or marked unsure, refusals excluded)"
            + (f": {mark[0]:.3f} answered, {mark[1]:.3f} of them right." if mark else "."),
            "",
            "![answer accuracy](answer_curve.png)",
            "",
        ]
    wrong_lines = [
        r for r in rows if r.get("answers") and not r.get("abstained") and not r.get("unsure") and not _has(r)
    ]
    parts += [f"## Answerable questions whose stated answer line lacks the answer ({len(wrong_lines)})", ""]
    parts += [
        f"- `{r['id']}` {r['question']} → {r['answers'][0]}; line: {r['answer'][:80]}" for r in wrong_lines
    ]
    parts.append("")
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


def _has(row: dict[str, Any]) -> bool:
    line = normalize_for_eval(row.get("answer") or "")
    return any(normalize_for_eval(a) in line for a in row.get("answers") or [] if normalize_for_eval(a))


def _answered_mark(metrics: dict[str, Any], title: str) -> dict[str, tuple[float, float]]:
    # the run's own point on its curve: the share not refused and the accuracy among them
    o = metrics["overall"]
    acc, refused = o.get("answer_acc"), o.get("wrong_abstain_answerable")
    if acc is None or refused is None or refused >= 1.0:
        return {}
    return {title: (1.0 - refused, acc / (1.0 - refused))}


def write_compare(
    work: Path,
    rows: Sequence[dict[str, Any]],
    curves: dict[str, dict[str, float | None]],
    n_questions: int,
    k: int,
) -> None:
    """Write compare.md, compare.json and compare_hit_at_k.png of a configuration comparison."""
    work.mkdir(parents=True, exist_ok=True)
    plot_hit_curve(curves, work / "compare_hit_at_k.png")
    settings_lines = [
        f"- **{r['config']}**: " + ", ".join(f"`{a}={b}`" for a, b in r["settings"].items()) for r in rows
    ]
    (work / "compare.md").write_text(
        "# Configuration comparison\n\n"
        + f"{n_questions} questions, k={k}.\n\n"
        + format_table(rows)
        + "\n\n![hit@k](compare_hit_at_k.png)\n\n"
        + "\n".join(settings_lines)
        + "\n",
        encoding="utf-8",
    )
    (work / "compare.json").write_text(json.dumps(list(rows), ensure_ascii=False, indent=1), encoding="utf-8")


def print_table(rows: Sequence[dict[str, Any]], title: str = "", console: Any | None = None) -> None:
    """Print metric rows as a rich table."""
    from rich import box
    from rich.table import Table

    if not rows:
        return
    con = get_console(console)
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
    con = get_console(console)
    print_table([{"config": title, **metrics["overall"]}], title="Overall", console=con)
    print_table(_group_rows(metrics["by_type"], "type"), title="By type", console=con)
    print_table(_group_rows(metrics["by_difficulty"], "difficulty"), title="By difficulty", console=con)
