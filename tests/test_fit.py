"""Fitting the default reranker on a small real slice of the dev set, over the session index."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pytest
from helpers import REPO, BuiltIndex
from typer.testing import CliRunner

from qa.cli import app
from qa.errors import QAError
from qa.eval import GoldQuestion, load_gold
from qa.eval.fit import collect, fit_and_save, fit_reranker
from qa.search.features import FEATURES
from qa.search.rerank import DEFAULT_WEIGHTS, FeatureReranker
from qa.search.retriever import Retriever

pytestmark = pytest.mark.integration

DEV = REPO / "eval" / "gold" / "dev.jsonl"


@pytest.fixture(scope="module")
def slice_() -> list[GoldQuestion]:
    """30 dev questions: 27 answerable, spread over the set, and 3 unanswerable."""
    gold = load_gold(DEV)
    answerable = [q for q in gold if q.answerable]
    return answerable[:: len(answerable) // 27][:27] + [q for q in gold if not q.answerable][:3]


@pytest.fixture(scope="module")
def retriever(built_index: BuiltIndex) -> Retriever:
    """The session index with the reranker off, as `qa fit-reranker` opens it."""
    return Retriever.open(built_index.index, built_index.settings.with_(reranker="none"))


@pytest.fixture(scope="module")
def packaged() -> str:
    """A fingerprint of the packaged weights, taken before any fit runs."""
    return hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()


def test_candidates_are_labelled_by_the_eval_rule(retriever: Retriever, slice_: list[GoldQuestion]) -> None:
    data = collect(retriever, slice_)
    assert len(data) == 30
    for d in data:
        assert d.X.shape == (len(d.y), len(FEATURES)) and len(d.first) == len(d.y) > 0
        if not d.gold.answerable:
            assert d.y.sum() == 0  # nothing can contain the answer to an unanswerable question
    # the first stage finds an answer-bearing passage for most answerable questions
    found = [d.y.max() > 0 for d in data if d.gold.answerable]
    assert sum(found) >= 0.8 * len(found)


def test_fit_reports_held_out_metrics_and_writes_only_where_told(
    retriever: Retriever, slice_: list[GoldQuestion], tmp_path: Path, packaged: str
) -> None:
    out = tmp_path / "weights" / "reranker.json"
    report = fit_and_save(retriever, slice_, out, folds=3)
    assert report["questions"] == 30 and report["answerable"] == 27 and report["folds"] == 3
    for stage in ("first_stage", "cv_reranked"):
        assert set(report[stage]) == {"hit@1", "hit@5", "mrr@10"}
        assert all(0.0 <= v <= 1.0 for v in report[stage].values()), report[stage]
    assert report["cv_reranked"]["hit@5"] >= 0.5
    assert 0.0 <= report["abstain_heldout"]["answerable_wrongly_abstained"] <= 1.0

    saved = FeatureReranker.load(out)
    assert set(saved.weights) == set(FEATURES) and saved.meta["fitted"] is True
    assert saved.meta["report"] == json.loads(json.dumps(report))
    assert hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest() == packaged  # the package is untouched


def test_refitting_is_reproducible(retriever: Retriever, slice_: list[GoldQuestion]) -> None:
    first, report1 = fit_reranker(retriever, slice_, folds=3)
    second, report2 = fit_reranker(retriever, slice_, folds=3)
    assert first.weights == second.weights and first.bias == second.bias
    assert first.meta == second.meta and report1 == report2


def test_the_retriever_reads_the_weights_named_by_reranker_weights(
    built_index: BuiltIndex, tmp_path: Path
) -> None:
    # weights that score a passage by its length alone: the ranking must follow them, not the packaged ones
    own = tmp_path / "length-only.json"
    FeatureReranker({f: (1.0 if f == "length" else 0.0) for f in FEATURES}, 0.0, {"fitted": True}).save(own)
    settings = built_index.settings.with_(reranker_weights=str(own))
    ans = Retriever.open(built_index.index, settings).ask("2023年郑州市地区生产总值是多少？", k=5)
    assert len(ans.hits) == 5
    for h in ans.hits:
        assert h.score == pytest.approx(math.log(max(len(h.passage.text), 10) / 200.0))
    lengths = [len(h.passage.text) for h in ans.hits]
    assert lengths == sorted(lengths, reverse=True)

    missing = built_index.settings.with_(reranker_weights=str(tmp_path / "gone.json"))
    with pytest.raises(QAError, match="gone.json does not exist"):
        Retriever.open(built_index.index, missing).ask("2023年郑州市地区生产总值是多少？")


def test_cli_writes_to_the_working_directory_by_default(
    private_index: BuiltIndex,
    slice_: list[GoldQuestion],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packaged: str,
) -> None:
    gold = tmp_path / "slice.jsonl"
    gold.write_text(
        "".join(
            json.dumps(
                {"id": q.id, "question": q.question, "answers": q.answers, "doc": q.doc}, ensure_ascii=False
            )
            + "\n"
            for q in slice_
        ),
        encoding="utf-8",
    )
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["fit-reranker", "--gold", str(gold), "--index", str(private_index.index)]
    res = CliRunner().invoke(
        app,
        [*args, "--documents", str(private_index.documents), "--folds", "3"],
        env={"QA_CACHE_DIR": private_index.settings.cache_dir},
    )
    assert res.exit_code == 0, res.output
    assert (work / "reranker.json").is_file() and "QA_RERANKER_WEIGHTS=reranker.json" in res.output
    assert FeatureReranker.load(work / "reranker.json").meta["report"]["questions"] == 30
    assert hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest() == packaged


def test_missing_scipy_is_one_sentence_before_collecting(
    retriever: Retriever, slice_: list[GoldQuestion], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)  # what an install without the extra looks like
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(QAError) as exc:
        fit_reranker(retriever, slice_)
    assert str(exc.value) == "Fitting the reranker needs scipy: pip install 'zhengzhou-qa[fit]'."
