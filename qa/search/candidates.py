"""The first stage: dense top-N ∪ lexical top-N (plus the best of the reports routed to), fused, with features."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.config import Settings
from qa.errors import IndexProblem
from qa.index.lexical import top_rows
from qa.index.manifest import Manifest
from qa.search.corpus import CorpusView
from qa.search.features import Candidate, add_features
from qa.search.fusion import first_stage_score, reciprocal_rank_fusion
from qa.search.understand import Route, filter_docs
from qa.text.normalize import normalize_for_embedding
from qa.types import Query

ROUTED_EXTRA = 20  # candidates taken from the routed reports beyond the global top-N, per side


class QueryEncoder:
    """The embedding model for questions, loaded on first use and checked against the index it searches."""

    def __init__(self, settings: Settings, encoder: Any | None = None) -> None:
        self.settings = settings
        self._encoder = encoder
        self._checked = False
        self._lock = threading.Lock()

    def get(self, manifest: Manifest) -> Any:
        """The loaded encoder; IndexProblem when the index was built with other vectors."""
        if not self._checked:
            with self._lock:
                if not self._checked:
                    from qa.encoders import load_encoder

                    enc = self._encoder if self._encoder is not None else load_encoder(self.settings)
                    if enc.fingerprint != manifest.model_fingerprint:
                        built = (
                            f"another build of model {manifest.model_id}"
                            if manifest.model_id == enc.model_id
                            else f"model {manifest.model_id}, but the settings name {enc.model_id}"
                        )
                        raise IndexProblem(
                            f"The index was built with {built}; "
                            f"run `qa index --force` to rebuild it with this model, or set the model back."
                        )
                    self._encoder = enc
                    self._checked = True
        return self._encoder

    @property
    def loaded(self) -> Any | None:
        """The encoder if it has been loaded (the builder reuses it for uploads), else None."""
        return self._encoder


def first_stage(
    view: CorpusView,
    query: Query,
    routes: Sequence[Route],
    k: int,
    settings: Settings,
    encoder: QueryEncoder,
    timings: dict[str, float],
) -> list[Candidate]:
    """Candidates with features, ordered by their first-stage score (Candidate.score)."""
    s = settings
    store = view.store
    n_cand = max(s.candidates, k)
    allowed = filter_docs(query.filters, view.catalog)
    if s.routing == "filter" and routes and allowed is None:
        allowed = {r.doc for r in routes if r.weight >= 0.5} or None
    rows_allowed = store.rows_of(allowed) if allowed is not None else None
    routed_rows = None
    if s.routing == "prior" and routes and rows_allowed is None:
        routed = store.rows_of({r.doc for r in routes if r.weight >= 0.5})
        routed_rows = routed if len(routed) else None
    mode = s.retrieval_mode

    dense_rank: dict[int, int] = {}
    dense_sim: dict[int, float] = {}
    qvec = None
    if mode in ("hybrid", "dense"):
        t = time.perf_counter()
        qvec = encoder.get(store.manifest).encode_queries([normalize_for_embedding(query.text)])[0]
        timings["embed"] = time.perf_counter() - t
        t = time.perf_counter()
        ids, sims = store.dense.search(qvec, n_cand, rows_allowed)
        for r, (i, sim) in enumerate(zip(ids.tolist(), sims.tolist(), strict=True)):
            dense_rank[i] = r
            dense_sim[i] = sim
        if routed_rows is not None:
            ids2, sims2 = store.dense.search(qvec, ROUTED_EXTRA, routed_rows)
            for i, sim in zip(ids2.tolist(), sims2.tolist(), strict=True):
                dense_sim.setdefault(i, sim)
        timings["dense"] = time.perf_counter() - t

    lex_rank: dict[int, int] = {}
    bm25 = None
    if mode in ("hybrid", "lexical"):
        t = time.perf_counter()
        lex_terms = list(dict.fromkeys([*query.terms, *view.lexicon.expand_terms(query.terms)]))
        mask = None
        if rows_allowed is not None:
            mask = np.zeros(len(store.passages), dtype=np.float32)
            mask[rows_allowed] = 1.0
        bm25 = store.lexical.scores(lex_terms, mask)
        lex_rank = {int(i): r for r, i in enumerate(top_rows(bm25, n_cand))}
        if routed_rows is not None:
            for i in routed_rows[top_rows(bm25[routed_rows], ROUTED_EXTRA)].tolist():
                lex_rank.setdefault(int(i), n_cand)
        timings["lexical"] = time.perf_counter() - t

    t = time.perf_counter()
    rows = list(dict.fromkeys([*dense_rank, *lex_rank, *dense_sim]))
    if not rows:
        timings["fusion"] = time.perf_counter() - t
        return []
    rankings = [
        r
        for r, on in ((dense_rank, mode in ("hybrid", "dense")), (lex_rank, mode in ("hybrid", "lexical")))
        if on
    ]
    rrf = reciprocal_rank_fusion(rows, rankings, s.rrf_k, n_cand + s.rrf_k)
    route_w = {r.doc: r.weight for r in routes}
    cands: list[Candidate] = []
    for row in rows:
        p = store.passages[row]
        if qvec is not None and row not in dense_sim:
            dense_sim[row] = store.dense.similarity(row, qvec)
        c = Candidate(
            row=row,
            passage=p,
            dense=dense_sim.get(row, 0.0),
            bm25=float(bm25[row]) if bm25 is not None else 0.0,
            rrf=rrf[row],
        )
        c.score = first_stage_score(c.rrf, route_w.get(p.doc, 0.0), s.routing)
        cands.append(c)
    add_features(query, view, cands, routes, s.routing)
    cands.sort(key=lambda c: -c.score)
    timings["fusion"] = time.perf_counter() - t
    return cands
