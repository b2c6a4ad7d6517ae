"""Rerankers behind one small protocol.

The default reranker is a linear model over cheap signals of each (question, candidate) pair
(qa.search.features: dense similarity, BM25, query-term coverage, agreement of numbers and years,
heading match, routing onto the right report, passage length). Its weights are fitted on gold
sets with `qa fit-reranker` and saved as a small JSON file (qa/data/reranker.json); with them
comes a calibrated "does the top passage answer?" model that abstention reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.errors import QAError
from qa.search.features import FEATURES, Candidate

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "reranker.json"


class Reranker(Protocol):
    """Reorders a short candidate list; higher score is better."""

    name: str

    def score(self, question: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """One score per candidate."""
        ...


class FeatureReranker:
    """Logistic combination of first-stage and lexical signals: no model download, ~1 ms."""

    name = "default"

    def __init__(self, weights: dict[str, float], bias: float, meta: dict[str, Any] | None = None) -> None:
        self.weights = weights
        self.bias = bias
        self.meta = meta or {}
        self._w = np.asarray([weights.get(f, 0.0) for f in FEATURES], dtype=np.float64)

    @classmethod
    def load(cls, path: Path = DEFAULT_WEIGHTS) -> FeatureReranker:
        """Read weights written by save (or fall back to hand-set weights if none were fitted)."""
        if not path.exists():
            return cls.fallback()
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(d["weights"], float(d["bias"]), d.get("meta"))
        except (ValueError, KeyError, TypeError) as exc:
            raise QAError(
                f"Reranker weights {path} are unreadable ({exc}); refit them with `qa fit-reranker`."
            ) from exc

    @classmethod
    def fallback(cls) -> FeatureReranker:
        """Unfitted weights: fused rank plus routing; used only before `qa fit-reranker` has run."""
        return cls(
            {"rrf": 3.0, "coverage": 2.0, "route": 1.0, "bm25": 1.0, "dense": 2.0}, -4.0, {"fitted": False}
        )

    def save(self, path: Path = DEFAULT_WEIGHTS) -> None:
        """Write the weights as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {"features": list(FEATURES), "weights": self.weights, "bias": self.bias, "meta": self.meta},
                ensure_ascii=False,
                indent=1,
            ),
            encoding="utf-8",
        )

    @property
    def abstain_threshold(self) -> float | None:
        """The fitted threshold on answer_probability below which the answer is withheld (None if unfitted)."""
        t = self.meta.get("abstain_threshold")
        return float(t) if t is not None and self.meta.get("abstain_weights") else None

    def answer_probability(self, candidate: Candidate) -> float | None:
        """Calibrated probability that this candidate holds the answer (None if not fitted)."""
        aw = self.meta.get("abstain_weights")
        if not aw:
            return None
        z = sum(float(aw.get(f, 0.0)) * candidate.features.get(f, 0.0) for f in FEATURES)
        return sigmoid(z + float(self.meta.get("abstain_bias", 0.0)))

    def matrix(self, candidates: Sequence[Candidate]) -> np.ndarray:
        """Feature matrix [n, len(FEATURES)]."""
        return np.asarray([[c.features.get(f, 0.0) for f in FEATURES] for c in candidates], dtype=np.float64)

    def score(self, question: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """Logit per candidate."""
        if not candidates:
            return np.zeros(0)
        return self.matrix(candidates) @ self._w + self.bias


def sigmoid(x: float) -> float:
    """Logistic function."""
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


class CrossEncoderReranker:
    """Any sentence-transformers CrossEncoder named by hub id or local path, on CPU, batched."""

    def __init__(self, name: str, max_candidates: int = 20, batch_size: int = 16) -> None:
        try:
            from sentence_transformers import CrossEncoder

            self.model = CrossEncoder(name, device="cpu")
        except Exception as exc:
            raise QAError(
                f"The reranker '{name}' could not be loaded ({type(exc).__name__}); this machine has no model hub "
                "access, so name a local directory that holds the model, or use --reranker default."
            ) from exc
        self.name = name
        self.max_candidates = max_candidates
        self.batch_size = batch_size

    def score(self, question: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """Cross-encoder relevance of each candidate (only the first max_candidates are scored)."""
        if not candidates:
            return np.zeros(0)
        head = list(candidates)[: self.max_candidates]
        s = np.asarray(
            self.model.predict(
                [(question, c.text) for c in head], batch_size=self.batch_size, show_progress_bar=False
            ),
            dtype=np.float64,
        ).reshape(-1)
        # candidates past the scored head keep their order, below every scored one
        tail = np.arange(len(candidates) - len(head), 0, -1, dtype=np.float64) * -1e-3 + (
            s.min() - 1 if len(s) else 0
        )
        return np.concatenate([s, tail])


def load_reranker(name: str, weights: str | Path | None = None) -> Reranker | None:
    """'default' -> FeatureReranker (packaged weights, or the `weights` file), 'none' -> None, else a CrossEncoder."""
    if name in ("", "none", "off"):
        return None
    if name == "default":
        if not weights:
            return FeatureReranker.load()
        path = Path(weights).expanduser()
        if not path.is_file():
            raise QAError(
                f"The reranker weights file {path} does not exist; write it with `qa fit-reranker --out {path}` "
                "or unset reranker_weights to use the packaged weights."
            )
        return FeatureReranker.load(path)
    return CrossEncoderReranker(name)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (small, dependency-free)."""
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0  # the bias is not shrunk
    # balance classes so the rare positives count as much as the many negatives
    pos = max(y.sum(), 1.0)
    neg = max(n - y.sum(), 1.0)
    sw = np.where(y > 0, n / (2 * pos), n / (2 * neg))
    for _ in range(iters):
        z = Xb @ w
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        g = Xb.T @ (sw * (p - y)) + reg * w
        h = (Xb * (sw * p * (1 - p))[:, None]).T @ Xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return w[:-1], float(w[-1])
