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
