"""The eval runner: files written, rows consistent with the metrics, on real report text."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from helpers import BuiltIndex

from qa.config import Settings
from qa.errors import QAError
from qa.eval import (
    compare_configs,
    default_compare_configs,
    format_table,
    index_key,
    load_gold,
    normalize_for_eval,
    run_eval,
)
from qa.types import Answer, Hit, Passage, Query, SourceSpan

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "eval" / "gold" / "dev.jsonl"


class BigramRetriever:
    """A tiny real retriever over the documents: fixed 200-char windows ranked by shared character bigrams."""

    settings = Settings()

    def __init__(self, documents_dir: Path) -> None:
        self.passages: list[Passage] = []
        for f in sorted(documents_dir.glob("*.txt")):
            text = normalize_for_eval(f.read_text(encoding="utf-8"))
            for n, i in enumerate(range(0, len(text), 150)):
                chunk = text[i : i + 200]
                span = SourceSpan(start_line=n + 1, end_line=n + 1, start_char=i, end_char=i + len(chunk))
                self.passages.append(Passage(f"{f.name}:{n}", f.name, f.stem, None, [], chunk, chunk, span))

    def ask(self, question: str, k: int = 10) -> Answer:
        q = normalize_for_eval(question)
        grams = {q[i : i + 2] for i in range(len(q) - 1)}
        scored = sorted(self.passages, key=lambda p: -sum(g in p.text for g in grams))[:k]
        hits = [Hit(p, float(sum(g in p.text for g in grams)), rank=i + 1) for i, p in enumerate(scored)]
        abstained = not hits or hits[0].score < 3
        return Answer(
            question,
            Query(question, q),
            hits[0].passage.text[:40] if hits else "",
            hits,
            abstained,
            {"rank": 0.001},
        )


@pytest.mark.unit
def test_run_eval_writes_metrics_run_and_report(tmp_path: Path, documents_dir: Path) -> None:
    gold = load_gold(DEV)
    subset = [q for q in gold if q.answerable][:8] + [q for q in gold if not q.answerable][:2]
    out = tmp_path / "run"
    metrics = run_eval(BigramRetriever(documents_dir), subset, out, k=10, progress=False, label="bigram")

    for name in ("metrics.json", "run.jsonl", "report.md", "hit_at_k.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "hit_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["overall"]["n"] == 10 and saved["overall"]["n_answerable"] == 8
    assert saved["k"] == 10 and saved["settings"]["retrieval_mode"] == "hybrid"
    assert set(saved["stage_latency"]) == {"rank"}

    rows = [json.loads(line) for line in (out / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [q.id for q in subset]
    for r in rows:
        assert len(r["passages"]) == 10
        assert {"rank", "doc", "text", "score", "citation"} <= set(r["passages"][0])
        assert {"answer", "abstained", "timings", "seconds", "hit_rank"} <= set(r)
    # the per-question ranks and the aggregate agree
    ranks = [r["hit_rank"] for r in rows if r["answers"]]
    assert metrics["overall"]["hit@10"] == pytest.approx(sum(x is not None for x in ranks) / len(ranks))
    assert metrics["overall"]["hit@1"] == pytest.approx(sum(x == 1 for x in ranks) / len(ranks))

    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## By type" in report and "## By difficulty" in report and "hit_at_k.png" in report


@pytest.mark.unit
def test_run_eval_without_out_dir_writes_nothing(tmp_path: Path, documents_dir: Path) -> None:
    gold = [q for q in load_gold(DEV) if q.answerable][:2]
    m = run_eval(BigramRetriever(documents_dir), gold, None, k=5, progress=False)
    assert m["overall"]["n"] == 2 and list(tmp_path.iterdir()) == []
    assert set(m["hit_curve"]) == {"1", "2", "3", "4", "5"}


@pytest.mark.unit
def test_default_compare_configs_and_index_sharing() -> None:
    configs = default_compare_configs(Settings(), rerankers=["BAAI/bge-reranker-v2-m3"])
    assert list(configs) == [
        "naive baseline",
        "BM25 only",
        "dense only",
        "hybrid, no rerank",
        "full (default reranker)",
        "full (BAAI/bge-reranker-v2-m3)",
        *(["full, milvus store"] if importlib.util.find_spec("pymilvus") else []),  # issue 17: parity row
    ]
    naive = configs["naive baseline"]
    assert (naive.chunker, naive.retrieval_mode, naive.reranker) == ("naive", "dense", "none")
    assert configs["BM25 only"].retrieval_mode == "lexical"
    # the chunker and the store change the index: the naive baseline and Milvus need their own, the rest share one
    keys = {name: index_key(s) for name, s in configs.items() if s.store == "embedded"}
    assert len(set(keys.values())) == 2
    assert keys["naive baseline"] != keys["BM25 only"] == keys["full (default reranker)"]
    if "full, milvus store" in configs:
        assert index_key(configs["full, milvus store"]) not in keys.values()


@pytest.mark.unit
def test_format_table_is_markdown() -> None:
    table = format_table([{"config": "a", "hit@1": 0.5, "hit@5": None, "latency_p50": 0.0123}])
    lines = table.splitlines()
    assert lines[0] == "| config | hit@1 | hit@5 | latency_p50 |"
    assert lines[2] == "| a | 0.500 | – | 12 ms |"


@pytest.mark.integration
def test_runner_on_the_real_retriever(tmp_path: Path, documents_dir: Path) -> None:
    from qa.search.retriever import Retriever

    gold = load_gold(DEV)
    subset = [q for q in gold if q.answerable][:9] + [q for q in gold if not q.answerable][:1]
    retriever = Retriever.open(tmp_path / "index", Settings(), documents_dir=documents_dir, build=True)
    out = tmp_path / "run"
    m = run_eval(retriever, subset, out, k=10, progress=False)
    assert {p.name for p in out.iterdir()} >= {"metrics.json", "run.jsonl", "report.md", "hit_at_k.png"}
    rows = [json.loads(line) for line in (out / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 10 and all(r["passages"] for r in rows)
    assert all(p["citation"] for r in rows for p in r["passages"])
    assert m["overall"]["hit@10"] is not None and m["overall"]["hit@10"] >= 0.5
    assert "total" in m["stage_latency"]


@pytest.mark.integration
@pytest.mark.slow
def test_compare_configs_on_a_subset(tmp_path: Path, documents_dir: Path) -> None:
    gold = [q for q in load_gold(DEV) if q.answerable][:6]
    configs = default_compare_configs(Settings())
    configs = {k: configs[k] for k in ("naive baseline", "BM25 only")}
    rows = compare_configs(configs, gold, documents_dir, tmp_path, k=5, progress=False)
    assert [r["config"] for r in rows] == ["naive baseline", "BM25 only"]
    assert (tmp_path / "compare.md").read_text(encoding="utf-8").count("\n| ") >= 2
    assert len(list((tmp_path / "indexes").iterdir())) == 2


@pytest.mark.unit
def test_index_key_separates_every_index_setting() -> None:
    base = Settings()
    assert index_key(base) == index_key(base.with_(reranker="none", retrieval_mode="lexical"))
    for change in ({"faiss_index": "hnsw"}, {"chunk_max_chars": 500}, {"model": "BAAI/bge-small-zh-v1.5"}):
        assert index_key(base.with_(**change)) != index_key(base), change
    assert "/" not in index_key(base.with_(model="BAAI/bge-small-zh-v1.5"))
    assert index_key(base.with_(store="milvus")) != index_key(base)  # its own index folder (the lock)


@pytest.mark.unit
def test_a_comparison_keeps_milvus_lite_in_its_own_folder(tmp_path: Path) -> None:
    """Comparisons (one set or the four sets' protocol) never create ./milvus.db in the current folder."""
    from qa.eval.runner import own_milvus_lite

    local = own_milvus_lite(Settings(store="milvus"), tmp_path)
    assert local.milvus_uri == str(tmp_path / "milvus.db")
    server = Settings(store="milvus", milvus_uri="http://milvus:19530")
    assert own_milvus_lite(server, tmp_path).milvus_uri == "http://milvus:19530"
    assert own_milvus_lite(Settings(), tmp_path).milvus_uri == Settings().milvus_uri


@pytest.mark.unit
def test_missing_matplotlib_is_one_sentence_before_the_run(
    tmp_path: Path, documents_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Counting(BigramRetriever):
        asked = 0

        def ask(self, question: str, k: int = 10) -> Answer:
            Counting.asked += 1
            return super().ask(question, k)

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the extra looks like
    gold = [q for q in load_gold(DEV) if q.answerable][:2]
    with pytest.raises(QAError) as exc:
        run_eval(Counting(documents_dir), gold, tmp_path / "run", progress=False)
    assert str(exc.value) == "Plots need matplotlib: pip install 'zhengzhou-qa[plots]'."
    assert Counting.asked == 0 and not (tmp_path / "run").exists()
    # without an output folder nothing is plotted, so the metrics still come
    assert run_eval(Counting(documents_dir), gold, None, progress=False)["overall"]["n"] == 2


@pytest.mark.integration
def test_qa_eval_command_writes_the_run_and_gates_on_floors(built_index: BuiltIndex, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from qa.cli import app

    gold = tmp_path / "slice.jsonl"
    lines = DEV.read_text(encoding="utf-8").splitlines()
    gold.write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    floors = tmp_path / "floors.json"
    base = ["eval", "--gold", str(gold), "--index", str(built_index.index)]
    base += ["--documents", str(built_index.documents), "-k", "5"]
    env = {"QA_CACHE_DIR": built_index.settings.cache_dir}

    floors.write_text(json.dumps({"min": {"hit@5": 0.0}}), encoding="utf-8")
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "ok"), "--floors", str(floors)], env=env)
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "ok").iterdir()} >= {"metrics.json", "run.jsonl", "report.md"}
    assert json.loads((tmp_path / "ok" / "metrics.json").read_text(encoding="utf-8"))["overall"]["n"] == 8

    floors.write_text(json.dumps({"min": {"hit@5": 1.01}}), encoding="utf-8")  # a floor nothing can reach
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "low"), "--floors", str(floors)], env=env)
    assert res.exit_code == 1 and "below the floor 1.010" in res.output, res.output
