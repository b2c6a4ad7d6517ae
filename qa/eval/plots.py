"""The eval suite's plots; the only module that imports matplotlib, and only when a plot is drawn.

matplotlib is the optional extra `plots` (`pip install 'zhengzhou-qa[plots]'`); without it a plot
raises one QAError that says how to install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qa.errors import QAError

MISSING = "Plots need matplotlib: pip install 'zhengzhou-qa[plots]'."


def require_matplotlib() -> None:
    """Raise the one-sentence QAError now if matplotlib is missing (before a long run, not after)."""
    pyplot()


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display on servers and in CI)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise QAError(MISSING) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_hit_curve(curves: dict[str, dict[str, float | None]], path: Path) -> Path:
    """Save a PNG of hit@k against k, one line per configuration."""
    plt = pyplot()
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


def plot_answer_curve(
    curves: dict[str, list[tuple[float, float]]],
    path: Path,
    marks: dict[str, tuple[float, float]] | None = None,
) -> Path:
    """Save a PNG of answer accuracy against the share of questions answered, one line per set.

    Each curve runs over the answerable questions ordered by the line's confidence, most confident first;
    `marks` puts a point where the shipped thresholds sit (share answered, accuracy).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, pts in curves.items():
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name)
        if marks and name in marks:
            ax.plot([marks[name][0]], [marks[name][1]], marker="o", color=ax.lines[-1].get_color())
    ax.set_xlabel("share of answerable questions answered")
    ax.set_ylabel("answer accuracy among them")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
