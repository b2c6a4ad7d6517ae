"""The lexical side of an index: BM25 (bm25s) over jieba search tokens, saved as numpy arrays and JSON.

The index keeps its own document frequencies (df.json) so that `idf()` is a public answer of this class,
not something rebuilt from bm25s' internal arrays.

Top-k without scoring every passage (`top`): bm25s keeps, per term, its postings sorted by row with each
posting's precomputed BM25 impact. `scores()` adds whole postings lists into an array of every passage,
so a question with a common term ("发展", "郑州") touches hundreds of thousands of postings at 1M passages.
`top` is exact MaxScore (Turtle & Flood 1995), vectorised: the passages of the rarest, highest-impact
terms are scored first, which gives a lower bound θ on the n-th best score; terms whose maximal impacts
add up to less than θ cannot lift a passage they alone occur in into the top n, so their long lists are
only probed (binary search) for the candidates the other terms found, never scanned. Scores are summed
in float32 in the question's term order, exactly as bm25s does, so results equal the exhaustive ranking
(score descending, then row ascending).
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
# measured at 1M passages (scripts/bench.py): below this many postings in all, a plain scatter-add
# over them is faster than finding a threshold first
EXHAUSTIVE_POSTINGS = 60_000
SEED_POSTINGS = 40_000  # postings of the highest-impact terms read first to find the threshold θ
SEED_EXACT = 8  # of those passages, SEED_EXACT × n are scored exactly for θ


class LexicalIndex:
    """BM25 over jieba tokens: scores for query terms, top rows, and the idf of every term."""

    def __init__(self, bm25: Any, n_docs: int, df: dict[str, int]) -> None:
        self.bm25 = bm25
        self.n_docs = n_docs
        self.df = df
        self._idf: dict[str, float] | None = None
        self._term_max: np.ndarray | None = None  # the largest impact of each term (MaxScore's bounds)
        self._scratch_pool: list[np.ndarray] = []  # zeroed row-indexed arrays, one per concurrent query

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

    # -- top-k without scoring every passage ------------------------------------------------
    def term_ids(self, terms: Sequence[str]) -> list[int]:
        """Vocabulary ids of the known terms, in the question's order, each once."""
        if not self.n_docs:
            return []
        vocab = self.bm25.vocab_dict
        return list(dict.fromkeys(vocab[t] for t in terms if t in vocab))

    def _postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        sc = self.bm25.scores
        a, b = int(sc["indptr"][tid]), int(sc["indptr"][tid + 1])
        return sc["indices"][a:b], sc["data"][a:b]

    def _bounds(self) -> np.ndarray:
        if self._term_max is None:
            sc = self.bm25.scores
            indptr, data = np.asarray(sc["indptr"], dtype=np.int64), sc["data"]
            bounds = np.zeros(len(indptr) - 1, dtype=np.float64)
            nonempty = np.flatnonzero(indptr[1:] > indptr[:-1])
            if len(nonempty):
                bounds[nonempty] = np.maximum.reduceat(data, indptr[nonempty])
            self._term_max = bounds
        return self._term_max

    def top(
        self, terms: Sequence[str], n: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n best rows by BM25 (positive scores only), best first, ties by row; only among `rows` if given."""
        ids = self.term_ids(terms)
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if not ids or n <= 0 or (rows is not None and len(rows) == 0):
            return empty
        lists = [self._postings(t) for t in ids]
        if rows is not None:
            lists = [_restrict(idx, val, rows) for idx, val in lists]
        lengths = np.asarray([len(idx) for idx, _ in lists], dtype=np.int64)
        if lengths.sum() <= EXHAUSTIVE_POSTINGS:
            cand = _union([idx for idx, _ in lists], self.n_docs)
            return _best(cand, _score_candidates(lists, cand, None), n)
        bounds = self._bounds()[ids]
        scratch = self._scratch()
        found = self._maxscore(lists, lengths, bounds, n, scratch)
        self._scratch_pool.append(scratch)  # only after success: a half-written array is never reused
        return found

    def _scratch(self) -> np.ndarray:
        """A zeroed float32 array with one cell per row; kept for reuse, because a fresh one costs page
        faults on every first touch (milliseconds at 1M rows)."""
        try:
            return self._scratch_pool.pop()
        except IndexError:
            return np.zeros(self.n_docs, np.float32)

    def _maxscore(
        self,
        lists: list[tuple[np.ndarray, np.ndarray]],
        lengths: np.ndarray,
        bounds: np.ndarray,
        n: int,
        scratch: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-n by MaxScore (see the module's docstring); `scratch` is all zeros before and after."""
        # θ, a lower bound on the n-th best score: the passages of the highest-impact terms, ranked by
        # those terms alone; the best few of them scored exactly
        seed_terms: list[int] = []
        budget = 0
        for j in np.argsort(-bounds, kind="stable").tolist():
            if seed_terms and budget + lengths[j] > SEED_POSTINGS:
                continue  # too long for the budget; a shorter list of a lower bound may still fit
            seed_terms.append(j)
            budget += int(lengths[j])
        seed_lists = []
        for j in seed_terms:
            idx, val = lists[j]
            if len(idx) > SEED_POSTINGS:  # one very common term: its highest-impact postings will do
                keep = np.argpartition(val, len(val) - SEED_POSTINGS)[len(val) - SEED_POSTINGS :]
                idx, val = idx[keep], val[keep]
            seed_lists.append((idx, val))
        seeds = _union([idx for idx, _ in seed_lists], self.n_docs)
        partial = _partial(seed_lists, seeds, scratch)
        if len(seeds) > SEED_EXACT * n:
            seeds = np.sort(seeds[np.argpartition(partial, len(seeds) - SEED_EXACT * n)[-SEED_EXACT * n :]])
        seed_scores = _score_candidates(lists, seeds, scratch)
        theta = (
            float(np.partition(seed_scores, len(seed_scores) - n)[len(seed_scores) - n])
            if len(seeds) >= n
            else 0.0
        )
        # MaxScore: terms whose bounds add up to less than θ cannot carry a passage into the top n on their
        # own ("non-essential"); candidates come from the other terms' lists, and a candidate whose
        # essential terms plus every non-essential bound stay below θ is dropped before exact scoring.
        # The margins cover float32 rounding.
        essential = np.ones(len(lists), dtype=bool)
        if theta > 0:
            order = np.argsort(bounds, kind="stable")
            below = np.cumsum(bounds[order]) * (1 + 1e-5) < theta
            essential[order[below]] = False
        chosen = [lists[j] for j in np.flatnonzero(essential)]
        cand = _union([idx for idx, _ in chosen], self.n_docs)
        if theta > 0:
            part = _partial(chosen, cand, scratch)
            # then each non-essential term in turn, highest bound first: its impacts are looked up for the
            # candidates left, and those that can no longer reach θ are dropped
            later = [int(j) for j in np.argsort(-bounds, kind="stable") if not essential[j]]
            for step in range(len(later) + 1):
                # the candidates' partial sums only grow: their n-th best is a better lower bound for θ
                if len(part) >= n:
                    theta = max(theta, float(np.partition(part, len(part) - n)[len(part) - n]) * (1 - 1e-5))
                rest = float(bounds[later[step:]].sum()) if step < len(later) else 0.0
                alive = part * (1 + 1e-5) + rest * (1 + 1e-5) + 1e-6 >= theta
                cand, part = cand[alive], part[alive]
                if step < len(later):
                    part = part + _lookup(lists[later[step]], cand, scratch)
        return _best(cand, _score_candidates(lists, cand, scratch), n)

    def score_rows(self, terms: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """BM25 of the given rows (float32, summed in the question's term order like `scores`)."""
        rows = np.asarray(rows, dtype=np.int64)
        ids = self.term_ids(terms)
        if not ids or not len(rows):
            return np.zeros(len(rows), np.float32)
        order = np.argsort(rows, kind="stable")
        out = np.empty(len(rows), np.float32)
        out[order] = _score_candidates([self._postings(t) for t in ids], rows[order], None)
        return out


def _partial(
    lists: Sequence[tuple[np.ndarray, np.ndarray]], cand: np.ndarray, scratch: np.ndarray
) -> np.ndarray:
    """The candidates' scores over these lists only (order of addition irrelevant: a bound, not a score)."""
    for idx, val in lists:
        scratch[idx] += val
    out = scratch[cand]
    for idx, _ in lists:
        scratch[idx] = 0.0
    return out


def _lookup(posting: tuple[np.ndarray, np.ndarray], cand: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """One term's impact for each sorted candidate (0 where it does not occur)."""
    idx, val = posting
    if not len(idx) or not len(cand):
        return np.zeros(len(cand), np.float32)
    if len(idx) <= 4 * len(cand):
        scratch[idx] = val
        out = scratch[cand]
        scratch[idx] = 0.0
        return out
    # the same dtype on both sides: otherwise numpy converts (copies) the whole postings list first
    pos = np.minimum(np.searchsorted(idx, cand.astype(idx.dtype, copy=False)), len(idx) - 1)
    return np.where(idx[pos] == cand, val[pos], np.float32(0.0))


def _union(parts: Sequence[np.ndarray], n_docs: int) -> np.ndarray:
    """The sorted distinct rows of several postings lists (a flag per row beats sorting for long lists)."""
    total = sum(len(p) for p in parts)
    if total <= 20_000:
        return np.unique(np.concatenate(parts)).astype(np.int64) if total else np.zeros(0, np.int64)
    flags = np.zeros(n_docs, dtype=bool)
    for p in parts:
        flags[p] = True
    return np.flatnonzero(flags)


def _restrict(idx: np.ndarray, val: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The postings among `rows` (sorted): a few binary searches per run of consecutive rows."""
    if not len(idx):
        return idx, val
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = rows[np.concatenate(([0], breaks))]
    ends = rows[np.concatenate((breaks - 1, [len(rows) - 1]))] + 1
    lo = np.searchsorted(idx, starts.astype(idx.dtype, copy=False))
    hi = np.searchsorted(idx, ends.astype(idx.dtype, copy=False))
    keep = [np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
    if not keep:
        return idx[:0], val[:0]
    sel = np.concatenate(keep)
    return idx[sel], val[sel]


def _score_candidates(
    lists: Sequence[tuple[np.ndarray, np.ndarray]], cand: np.ndarray, scratch: np.ndarray | None
) -> np.ndarray:
    """Exact BM25 of the sorted candidate rows: each term's impacts added in term order, in float32.

    With a zeroed `scratch` (one cell per row), a list shorter than 4× the candidates is scattered into it
    (only its own postings are touched); otherwise each candidate is found by binary search."""
    acc = np.zeros(len(cand), np.float32)
    if not len(cand):
        return acc
    for idx, val in lists:
        if not len(idx):
            continue
        if scratch is not None and len(idx) <= 4 * len(cand):
            scratch[idx] = val
            acc += scratch[cand]
            scratch[idx] = 0.0
        else:
            pos = np.minimum(np.searchsorted(idx, cand.astype(idx.dtype, copy=False)), len(idx) - 1)
            hit = idx[pos] == cand
            acc[hit] += val[pos[hit]]
    return acc


def _best(cand: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n best positive (row, score) pairs, score descending then row ascending."""
    keep = scores > 0
    cand, scores = cand[keep].astype(np.int64), scores[keep]
    if len(cand) > n:
        cut = np.partition(scores, len(scores) - n)[len(scores) - n]
        keep = scores >= cut
        cand, scores = cand[keep], scores[keep]
    order = np.lexsort((cand, -scores))[:n]
    return cand[order], scores[order]


def top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the n highest positive scores, best first (equal scores by row)."""
    if scores.size == 0:
        return np.zeros(0, np.int64)
    n = min(n, scores.size)
    # Partition on the scores themselves: a negated copy costs a pass over all N rows (1M in the scale test).
    idx = np.argpartition(scores, scores.size - n)[scores.size - n :]
    idx = idx[scores[idx] > 0]
    return idx[np.lexsort((idx, -scores[idx]))]
