"""Sentence vectors (qa.index.sentences): the file's format, reuse across versions, and the answer line's
sent_sim signal on the real index (closest sentence in meaning to the question, Chinese or English)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from helpers import BuiltIndex

from qa import Retriever
from qa.errors import IndexProblem
from qa.index.sentences import (
    SENTENCE_FILE,
    SentenceVectors,
    build_table,
    corpus_sentences,
    load_table,
    sentence_key,
    table_is_current,
)
from qa.search.answer import AnswerModel, candidate_spans, compose
from qa.search.corpus import CorpusView
from qa.text.lines import passage_sentences

PASSAGE = "全年粮食总产量达到149.7万吨。新增城镇就业12.1万人；\n二、主要工作\n地区生产总值亿元7311.5 8.0"


def _fake_embed(calls: list[list[str]]) -> Any:
    """Deterministic unit vectors from the text's hash, recording what it is asked to embed."""

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        out = np.stack(
            [
                np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8)[:8].astype(np.float32)
                for t in texts
            ]
        )
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    return embed


def test_the_table_holds_the_answer_lines_candidates_and_not_headings() -> None:
    got = corpus_sentences([PASSAGE, PASSAGE])  # a sentence met twice is kept once
    assert got == [s for s, _ in passage_sentences(PASSAGE)]
    assert "二、主要工作" not in got and "地区生产总值亿元7311.5 8.0" in got and len(got) == 3


def test_file_round_trip_and_lookup_by_text() -> None:
    texts = ["甲句。", "乙句。"]
    vecs = np.asarray([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    table = SentenceVectors.from_bytes(SentenceVectors.from_texts(texts, vecs, "fp1").to_bytes())
    assert len(table) == 2 and table.dim == 2 and table.model_fingerprint == "fp1"
    assert table.rows(["乙句。", "丙句。"]) == [1, None]
    sims = table.similarities(np.asarray([0.0, 1.0], dtype=np.float32), texts)
    assert sims is not None and np.allclose(sims, [0.0, 0.8], atol=1e-3)
    # one sentence it lacks, or a vector of another width: no signal for any candidate, not for some
    assert table.similarities(np.asarray([0.0, 1.0]), ["甲句。", "丙句。"]) is None
    assert table.similarities(np.zeros(3), texts) is None
    assert sentence_key("甲句。") != sentence_key("甲句")


@pytest.mark.parametrize(
    "data, why",
    [
        (b"not json", "unreadable"),
        (b'{"format": 99, "model_fingerprint": "x", "dim": 2, "keys": "", "vectors": ""}', "format 99"),
        (
            b'{"format": 1, "model_fingerprint": "x", "dim": 2, "keys": "AAAAAAAAAAA=", "vectors": ""}',
            "1 keys",
        ),
    ],
)
def test_a_damaged_file_says_how_to_fix_it(data: bytes, why: str) -> None:
    with pytest.raises(IndexProblem, match="qa index --force") as exc:
        SentenceVectors.from_bytes(data)
    assert why in str(exc.value) and SENTENCE_FILE in str(exc.value)
    assert not table_is_current(data, "x")


def test_an_update_embeds_only_sentences_the_previous_version_lacks() -> None:
    calls: list[list[str]] = []
    first, _ = build_table([PASSAGE], "fp1", None, _fake_embed(calls))
    assert calls == [corpus_sentences([PASSAGE])]
    extra = "郑州市将继续深化改革开放。"
    calls.clear()
    second, embedded = build_table([PASSAGE, extra], "fp1", first.to_bytes(), _fake_embed(calls))
    assert calls == [[extra]] and embedded == 1 and len(second) == 4
    old_rows = first.rows(corpus_sentences([PASSAGE]))
    new_rows = second.rows(corpus_sentences([PASSAGE]))
    assert np.array_equal(second.vectors[new_rows], first.vectors[old_rows])  # carried over, not re-embedded
    # nothing new: the model is not called at all
    calls.clear()
    build_table([PASSAGE], "fp1", second.to_bytes(), _fake_embed(calls))
    assert calls == []
    # another model: every sentence again
    calls.clear()
    build_table([PASSAGE], "fp2", second.to_bytes(), _fake_embed(calls))
    assert calls == [corpus_sentences([PASSAGE])]
    assert table_is_current(second.to_bytes(), "fp1") and not table_is_current(second.to_bytes(), "fp2")


@pytest.fixture(scope="module")
def retriever(built_index: BuiltIndex) -> Retriever:
    return Retriever.open(built_index.index, built_index.settings)


def _spans(r: Retriever, question: str) -> list[Any]:
    a = r.ask(question, k=5)
    return candidate_spans(a.query, a.hits, r.corpus, 5, r.question_vector(a.query))


def test_the_built_index_has_a_vector_for_every_candidate(retriever: Retriever) -> None:
    store = retriever.store
    table = load_table(store)
    assert table is not None and table.model_fingerprint == store.manifest.model_fingerprint
    texts = corpus_sentences(p.text for p in store.passages_at(range(len(store))))
    assert len(table) == len(texts) and None not in table.rows(texts)


@pytest.mark.parametrize(
    "question, answer, other",
    [
        # the 2020 report's figure for 2019, not the 2024 report's 29.43亿斤 for 2023
        ("郑州2019年粮食产量是多少？", "149.7万吨", "29.43亿斤"),
        # an English question meets the Chinese sentence that answers it
        ("What was Zhengzhou's GDP in 2023?", "1.36万亿元", None),
    ],
)
def test_the_sentence_closest_in_meaning_holds_the_answer(
    retriever: Retriever, question: str, answer: str, other: str | None
) -> None:
    spans = _spans(retriever, question)
    sims = {s.text: s.features["sent_sim"] for s in spans}
    assert max(sims.values()) == 0.0 and min(sims.values()) < -0.3  # relative to the best, x10
    best = max(sims, key=lambda t: sims[t])
    assert answer in best
    if other is not None:
        assert all(v < 0.0 for t, v in sims.items() if other in t)


def test_without_question_vector_or_table_the_signal_is_left_out(
    retriever: Retriever, built_index: BuiltIndex
) -> None:
    a = retriever.ask("郑州2019年粮食产量是多少？", k=5)
    spans = candidate_spans(a.query, a.hits, retriever.corpus, 5, None)  # lexical retrieval: no vector
    assert spans and all("sent_sim" not in s.features for s in spans)

    class Without:  # an index version written before sentence vectors existed
        def __init__(self, store: Any) -> None:
            self.store = store

        def extra_file(self, name: str) -> bytes | None:
            return None if name == SENTENCE_FILE else self.store.extra_file(name)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.store, name)

    view = CorpusView(Without(retriever.store))  # type: ignore[arg-type]
    assert view.sentence_vectors is None
    qvec = retriever.question_vector(a.query)
    spans = candidate_spans(a.query, a.hits, view, 5, qvec)
    assert spans and all("sent_sim" not in s.features for s in spans)
    line = compose(a.query, a.hits, view, AnswerModel.load(), spans=spans)  # still answers
    assert line.span is not None and line.text


def test_lexical_retrieval_answers_without_question_vector(built_index: BuiltIndex) -> None:
    r = Retriever.open(built_index.index, built_index.settings.with_(retrieval_mode="lexical"))
    assert r.question_vector(r.understand("郑州2019年粮食产量是多少？")) is None
    a = r.ask("郑州2019年粮食产量是多少？")
    assert not a.abstained and "embed" not in a.timings
