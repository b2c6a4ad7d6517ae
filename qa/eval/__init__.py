"""The eval suite: gold question sets, retrieval metrics, the runner, reports and plots, reranker fitting.

    from qa.eval import load_gold, run_eval
    metrics = run_eval(retriever, load_gold("eval/gold/dev.jsonl"), "eval/runs/dev")

gold.py reads and checks gold sets; metrics.py is pure metric code; runner.py asks the questions;
report.py and plots.py write what a run found (plots need the `plots` extra); fit.py fits the
default reranker (it needs the `fit` extra and is imported only when asked for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qa.eval.gold import (
    DIFFICULTIES,
    QUESTION_TYPES,
    GoldQuestion,
    check_gold,
    gold_summary,
    load_gold,
    normalize_for_eval,
)
from qa.eval.metrics import (
    AR_BUDGETS,
    HIT_KS,
    MRR_K,
    QuestionResult,
    answer_recall_at_budget,
    check_floors,
    compute_metrics,
    contains_answer,
    first_hit_rank,
    hit_at,
    percentile,
    reciprocal_rank,
    stage_latency,
)
from qa.eval.plots import plot_hit_curve
from qa.eval.report import (
    TABLE_COLUMNS,
    format_table,
    print_metrics,
    print_table,
    render_report,
    write_compare,
    write_run,
)
from qa.eval.runner import compare_configs, default_compare_configs, describe_settings, index_key, run_eval

if TYPE_CHECKING:
    from qa.eval.fit import fit_and_save, fit_reranker

__all__ = [
    "AR_BUDGETS",
    "DIFFICULTIES",
    "HIT_KS",
    "MRR_K",
    "QUESTION_TYPES",
    "TABLE_COLUMNS",
    "GoldQuestion",
    "QuestionResult",
    "answer_recall_at_budget",
    "check_floors",
    "check_gold",
    "compare_configs",
    "compute_metrics",
    "contains_answer",
    "default_compare_configs",
    "describe_settings",
    "first_hit_rank",
    "fit_and_save",
    "fit_reranker",
    "format_table",
    "gold_summary",
    "hit_at",
    "index_key",
    "load_gold",
    "normalize_for_eval",
    "percentile",
    "plot_hit_curve",
    "print_metrics",
    "print_table",
    "reciprocal_rank",
    "render_report",
    "run_eval",
    "stage_latency",
    "write_compare",
    "write_run",
]


def __getattr__(name: str) -> Any:
    # Fitting reads the query side (understanding, reranker features): import it only when asked for.
    if name in ("fit_and_save", "fit_reranker"):
        from qa.eval import fit

        return getattr(fit, name)
    raise AttributeError(name)
