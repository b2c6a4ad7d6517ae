"""The first stage: dense top-N ∪ lexical top-N (plus the best of the reports routed to), fused, with features.

It asks the store (qa.index.backend.Store) for top-k lists and for the scores of the candidates only, so
the same code runs over the embedded files and over Milvus."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.config import Settings
from qa.errors import IndexProblem
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


def question_vector(
    view: CorpusView, query: Query, settings: Settings, encoder: QueryEncoder, timings: dict[str, float]
) -> np.ndarray | None:
    """The question's embedding when the retrieval mode uses vectors (else None); the first stage searches
    with it and the answer line compares it with the sentences' (qa.index.sentences)."""
    if settings.retrieval_mode not in ("hybrid", "dense"):
        return None
    t = time.perf_counter()
    qvec = encoder.get(view.store.manifest).encode_queries([normalize_for_embedding(query.text)])[0]
    timings["embed"] = time.perf_counter() - t
    return np.asarray(qvec)


def first_stage(
    view: CorpusView,
    query: Query,
    routes: Sequence[Route],
    k: int,
    settings: Settings,
    encoder: QueryEncoder,
    timings: dict[str, float],
    qvec: np.ndarray | None = None,
) -> list[Candidate]:
    """Candidates with features, ordered by their first-stage score (Candidate.score).
    `qvec`: the question's vector (question_vector) when the caller has it."""
    s = settings
    store = view.store
    n_cand = max(s.candidates, k)
    allowed = filter_docs(query.filters, view.catalog)
    if s.routing == "filter" and routes and allowed is None:
        allowed = {r.doc for r in routes if r.weight >= 0.5} or None
    routed = None
    if s.routing == "prior" and routes and allowed is None:
        routed = {r.doc for r in routes if r.weight >= 0.5}
        if not store.passages_in(routed):
            routed = None
    mode = s.retrieval_mode

    dense_rank: dict[int, int] = {}
    dense_sim: dict[int, float] = {}
    if mode in ("hybrid", "dense"):
        if qvec is None:
            qvec = question_vector(view, query, s, encoder, timings)
        assert qvec is not None
        t = time.perf_counter()
        ids, sims = store.dense_top(qvec, n_cand, allowed)
        for r, (i, sim) in enumerate(zip(ids.tolist(), sims.tolist(), strict=True)):
            dense_rank[i] = r
            dense_sim[i] = sim
        if routed is not None:
            ids2, sims2 = store.dense_top(qvec, ROUTED_EXTRA, routed)
            for i, sim in zip(ids2.tolist(), sims2.tolist(), strict=True):
                dense_sim.setdefault(i, sim)
        timings["dense"] = time.perf_counter() - t

    lex_rank: dict[int, int] = {}
    lex_terms: list[str] = []
    if mode in ("hybrid", "lexical"):
        t = time.perf_counter()
        lex_terms = list(dict.fromkeys([*query.terms, *view.lexicon.expand_terms(query.terms)]))
        top, _ = store.lexical_top(lex_terms, n_cand, allowed)
        lex_rank = {int(i): r for r, i in enumerate(top.tolist())}
        if routed is not None:
            extra, _ = store.lexical_top(lex_terms, ROUTED_EXTRA, routed)
            for i in extra.tolist():
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
    if qvec is not None:
        missing = [row for row in rows if row not in dense_sim]
        dense_sim.update(zip(missing, store.dense_scores(qvec, missing).tolist(), strict=True))
    # BM25 of every candidate, dense-only ones included (0 when no term occurs), as one call
    lexical_on = mode in ("hybrid", "lexical")
    bm25 = store.lexical_scores(lex_terms, rows).tolist() if lexical_on else [0.0] * len(rows)
    cands: list[Candidate] = []
    for row, p, lex in zip(rows, store.passages_at(rows), bm25, strict=True):
        c = Candidate(row=row, passage=p, dense=dense_sim.get(row, 0.0), bm25=float(lex), rrf=rrf[row])
        c.score = first_stage_score(c.rrf, route_w.get(p.doc, 0.0), s.routing)
        cands.append(c)
    add_features(query, view, cands, routes, s.routing)
    cands.sort(key=lambda c: -c.score)
    timings["fusion"] = time.perf_counter() - t
    return cands
