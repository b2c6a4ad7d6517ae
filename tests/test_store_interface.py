"""The store interface (qa.index.backend.Store) on both backends, over the same real documents.

The embedded store (FAISS + bm25s files) and the Milvus store (milvus-lite, a real engine, no mocks) are
built from the same copy of documents/ with the same vectors; every call of the interface must give the
same answer on both. The embedded store's BM25 top-k (MaxScore, not scoring every passage) must equal
the exhaustive ranking over every passage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from helpers import R2024, REPO
from store_fixtures import Corpus, built_corpus, require_milvus

from qa.config import Settings
from qa.index.backend import Store
from qa.index.factory import open_store
from qa.index.lexical import LexicalIndex
from qa.index.store import IndexStore
from qa.search.retriever import Retriever
from qa.text.tokenize import tokenize

pytestmark = pytest.mark.integration

PLAN = "2021-zhengzhou-14th-five-year-plan-outline.txt"


def _questions(name: str, n: int | None = None) -> list[str]:
    lines = (REPO / "eval" / "gold" / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(x)["question"] for x in lines if x.strip()][:n]


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory, session_settings: Settings, real_encoder: Any
) -> Iterator[tuple[Corpus, Corpus]]:
    """documents/ indexed on each backend."""
    require_milvus()
    with (
        built_corpus(tmp_path_factory.mktemp("emb"), session_settings, real_encoder, "embedded") as emb,
        built_corpus(tmp_path_factory.mktemp("mil"), session_settings, real_encoder, "milvus") as mil,
    ):
        yield emb, mil


def _stores(both: tuple[Corpus, Corpus]) -> tuple[Store, Store]:
    emb, mil = both
    return open_store(emb.settings, emb.index), open_store(mil.settings, mil.index)


def _terms(r: Retriever, question: str) -> list[str]:
    view = r.corpus
    q = r.understand(question)
    return list(dict.fromkeys([*q.terms, *view.lexicon.expand_terms(q.terms)]))


def test_same_corpus_on_both(both: tuple[Corpus, Corpus]) -> None:
    e, m = _stores(both)
    assert isinstance(e, IndexStore) and type(m).__name__ == "MilvusStore"
    assert len(e) == len(m) == both[0].report.passages_total > 500
    assert e.version.startswith("v-") and m.version.startswith("qa_default_")
    assert sorted((i.file, n) for i, n in e.document_infos()) == sorted(
        (i.file, n) for i, n in m.document_infos()
    )
    ei, mi = e.idf(), m.idf()
    assert ei.keys() == mi.keys() and all(abs(ei[t] - mi[t]) < 1e-9 for t in ei)
    assert m.source_text(R2024) == e.source_text(R2024)
    assert m.passages_in({R2024, "no-such.txt"}) == e.passages_in({R2024}) > 0
    rows = [0, 7, len(e) - 1]
    assert [p.to_dict() for p in m.passages_at(rows)] == [p.to_dict() for p in e.passages_at(rows)]
    pid = e.passage(7).id
    assert m.row_of(pid) == e.row_of(pid) == 7
    assert m.row_of("no-such-passage") is None
    assert [p.to_dict() for p in m.doc_passages(PLAN)] == [p.to_dict() for p in e.doc_passages(PLAN)]
    assert np.allclose(m.doc_vectors(PLAN), e.doc_vectors(PLAN), atol=1e-6)


def test_top_k_and_candidate_scores_agree(both: tuple[Corpus, Corpus], real_encoder: Any) -> None:
    """Dense and lexical top-50, and the scores of given candidates, are the same on both backends."""
    e, m = _stores(both)
    r = Retriever.open(both[0].index, both[0].settings, encoder=real_encoder)
    for question in _questions("dev.jsonl", 25):
        qvec = real_encoder.encode_queries([question])[0]
        er, es = e.dense_top(qvec, 50)
        mr, ms = m.dense_top(qvec, 50)
        assert np.allclose(es, ms, atol=1e-5), question
        assert set(er[es > es[-1] + 1e-5].tolist()) == set(mr[ms > ms[-1] + 1e-5].tolist()), question
        terms = _terms(r, question)
        er, es = e.lexical_top(terms, 50)
        mr, ms = m.lexical_top(terms, 50)
        assert len(er) == len(mr) > 0 and np.allclose(es, ms, atol=1e-4), question
        clear = es > es[-1] + 1e-4  # rows above the last score: the same on both (ties may reorder)
        assert set(er[clear].tolist()) == set(mr[: int(clear.sum())].tolist()), question
        cand = sorted({*er.tolist()[:10], 3, 5, len(e) - 2})
        assert np.array_equal(e.lexical_scores(terms, cand), m.lexical_scores(terms, cand)), question
        assert np.allclose(e.dense_scores(qvec, cand), m.dense_scores(qvec, cand), atol=1e-6), question


def test_document_restriction_on_both(both: tuple[Corpus, Corpus], real_encoder: Any) -> None:
    e, m = _stores(both)
    allowed = {R2024, PLAN}
    qvec = real_encoder.encode_queries(["2023年郑州市地区生产总值是多少？"])[0]
    for store in (e, m):
        rows, _ = store.dense_top(qvec, 30, allowed)
        assert len(rows) == 30 and {p.doc for p in store.passages_at(rows.tolist())} <= allowed
        rows, scores = store.lexical_top(["地区", "生产", "总值", "生产总值"], 30, allowed)
        assert len(rows) and (scores > 0).all()
        assert {p.doc for p in store.passages_at(rows.tolist())} <= allowed
        assert store.dense_top(qvec, 5, set())[0].size == 0
        assert store.lexical_top(["总值"], 5, {"no-such.txt"})[0].size == 0
        assert (
            store.lexical_top([], 5)[0].size == 0 and store.lexical_top(["不在词表里的词语"], 5)[0].size == 0
        )


def _exhaustive(lex: LexicalIndex, terms: list[str], n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Rank every passage (bm25s' full scores): score descending, then row."""
    full = lex.scores(terms, mask)
    idx = np.flatnonzero(full > 0)
    return idx[np.lexsort((idx, -full[idx]))][:n]


@pytest.mark.parametrize("seed", [None, 300, 5])
@pytest.mark.parametrize("corpus", ["documents", "corpora/national"])
def test_lexical_top_k_equals_scoring_every_passage(
    corpus: str, seed: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MaxScore's top-k is exact: the same rows and scores as scoring every passage, with and without a
    restriction, on documents/ and on the national reports (longer postings lists).

    These corpora are small enough for the plain path; with `seed` set, MaxScore runs on every question,
    its threshold found from that many postings (5: a poor threshold, much pruning must still be exact)."""
    from qa.index import lexical
    from qa.index.spec import IndexSpec
    from qa.ingest import load_corpus

    if seed is not None:
        monkeypatch.setattr(lexical, "EXHAUSTIVE_POSTINGS", 0)
        monkeypatch.setattr(lexical, "SEED_POSTINGS", seed)

    passages = load_corpus(REPO / corpus, IndexSpec().chunker_settings).passages
    lex = LexicalIndex.build([p.embed_text for p in passages])
    gold = "dev.jsonl" if corpus == "documents" else "national-dev.jsonl"
    rows_of: dict[str, list[int]] = {}
    for i, p in enumerate(passages):
        rows_of.setdefault(p.doc, []).append(i)
    rng = np.random.default_rng(0)
    checked = 0
    for question in _questions(gold):
        terms = list(dict.fromkeys(tokenize(question)))
        for n in (1, 10, 50):
            rows, scores = lex.top(terms, n)
            ref = _exhaustive(lex, terms, n)
            assert np.array_equal(rows, ref), question
            assert np.array_equal(scores, lex.scores(terms)[ref]), question
        docs = sorted(rows_of)
        picked = [docs[int(i)] for i in rng.choice(len(docs), 2, replace=False)]
        allowed = np.sort(np.asarray([r for d in picked for r in rows_of[d]], dtype=np.int64))
        mask = np.zeros(len(passages), np.float32)
        mask[allowed] = 1.0
        assert np.array_equal(lex.top(terms, 20, allowed)[0], _exhaustive(lex, terms, 20, mask)), question
        cand = rng.choice(len(passages), 30, replace=False)
        assert np.array_equal(lex.score_rows(terms, cand), lex.scores(terms)[cand]), question
        checked += 1
    assert checked > 300
