"""The lexical side of an index: BM25 (bm25s) over jieba search tokens, saved as numpy arrays and JSON.

The index keeps its own document frequencies (df.json) so that `idf()` is a public answer of this class,
not something rebuilt from bm25s' internal arrays.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.text.tokenize import tokenize

EMPTY_TOKEN = "\u2205"  # a passage with no tokens still takes its row
K1, B = 1.2, 0.75


class LexicalIndex:
    """BM25 over jieba tokens: scores for query terms, top rows, and the idf of every term."""

    def __init__(self, bm25: Any, n_docs: int, df: dict[str, int]) -> None:
        self.bm25 = bm25
        self.n_docs = n_docs
        self.df = df
        self._idf: dict[str, float] | None = None

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """Index the given passage texts."""
        import bm25s

        corpus_tokens = [tokenize(t) or [EMPTY_TOKEN] for t in texts]
        df = Counter(t for toks in corpus_tokens for t in set(toks))
        df.pop(EMPTY_TOKEN, None)
        bm25 = bm25s.BM25(k1=K1, b=B)
        if corpus_tokens:
            bm25.index(corpus_tokens, show_progress=False)
        return cls(bm25, len(texts), dict(df))

    def save(self, path: Path) -> None:
        """Write the index files into path."""
        path.mkdir(parents=True, exist_ok=True)
        (path / "df.json").write_text(
            json.dumps({"n_docs": self.n_docs, "df": self.df}, ensure_ascii=False), encoding="utf-8"
        )
        if self.n_docs:
            self.bm25.save(str(path), show_progress=False, allow_pickle=False)

    @classmethod
    def load(cls, path: Path, n_docs: int) -> LexicalIndex:
        """Read an index written by save."""
        import bm25s

        meta = json.loads((path / "df.json").read_text(encoding="utf-8"))
        if int(meta["n_docs"]) != n_docs:
            raise ValueError(f"the lexical index has {meta['n_docs']} passages, the store {n_docs}")
        df = {str(k): int(v) for k, v in meta["df"].items()}
        if not n_docs:
            return cls(None, 0, df)
        bm25 = bm25s.BM25.load(str(path), allow_pickle=False, show_progress=False, verbosity=0)
        return cls(bm25, n_docs, df)

    def idf(self) -> dict[str, float]:
        """Lucene's BM25 idf of every corpus term: log(1 + (N - df + 0.5) / (df + 0.5))."""
        if self._idf is None:
            n = max(self.n_docs, 1)
            self._idf = {t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in self.df.items() if d > 0}
        return self._idf

    def scores(self, terms: Sequence[str], mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every passage for the query terms; rows where `mask` is 0 score 0."""
        if not self.n_docs or not terms:
            return np.zeros(self.n_docs, dtype=np.float32)
        vocab = self.bm25.vocab_dict
        known = [t for t in terms if t in vocab]
        if not known:
            return np.zeros(self.n_docs, dtype=np.float32)
        weight = None if mask is None else np.asarray(mask, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(known, weight_mask=weight), dtype=np.float32)


def top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the n highest positive scores, best first (equal scores by row)."""
    if scores.size == 0:
        return np.zeros(0, np.int64)
    n = min(n, scores.size)
    # Partition on the scores themselves: a negated copy costs a pass over all N rows (1M in the scale test).
    idx = np.argpartition(scores, scores.size - n)[scores.size - n :]
    idx = idx[scores[idx] > 0]
    return idx[np.lexsort((idx, -scores[idx]))]
