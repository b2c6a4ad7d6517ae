"""The on-disk index: build and reopen, the manifest, damaged files, a manifest from another model, open time.

The session index these tests read (built_index, private_index) comes from conftest.py.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DOCUMENTS, R2024, BuiltIndex, one_sentence_with_fix

from qa.errors import IndexProblem, QAError
from qa.hashing import sha256_file
from qa.index.builder import update_index
from qa.index.store import IndexStore
from qa.index.writer import current_version

# ---- build and reopen ----------------------------------------------------------------------------

pytestmark = pytest.mark.integration


def test_build_and_reopen(built_index: BuiltIndex, real_encoder: Any) -> None:
    report = built_index.report
    assert report.written and not report.errors
    assert sorted(report.added) == sorted(p.name for p in DOCUMENTS.glob("*.txt"))
    print(f"cold build of documents/ in this session: {built_index.seconds:.1f} s, {report.summary()}")

    store = IndexStore.open(built_index.index)
    m = store.manifest
    assert m.model == "default"
    assert m.model_fingerprint == real_encoder.fingerprint
    assert "multilingual-e5-small" in m.model_id
    assert m.dim == 384 == store.vectors.shape[1]
    assert m.chunker["max_chars"] == built_index.settings.chunk_max_chars
    assert m.chunker["chunker"] == "chinese" and m.chunker_fingerprint
    assert m.passages == len(store.passages) == store.dense.faiss.ntotal == report.passages_total > 500
    assert datetime.strptime(m.built_at, "%Y-%m-%dT%H:%M:%S%z")
    assert m.build_seconds > 0
    assert set(m.documents) == set(report.added)
    for name, entry in m.documents.items():
        assert entry.sha256 == sha256_file(built_index.documents / name)
        assert entry.passages == len(store.doc_rows[name]) > 0
        assert entry.info["file"] == name
    assert sum(e.passages for e in m.documents.values()) == m.passages
    # vectors are unit length and row i belongs to passage i
    norms = np.linalg.norm(np.asarray(store.vectors), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)
    row = store.doc_rows[R2024][0]
    assert store.passages[row].doc == R2024
    # every file the manifest lists is there with its recorded size
    for name, meta in m.files.items():
        assert (store.path / name).stat().st_size == meta["size"]
    # the original text is kept for citations
    assert store.source_text(R2024) == (built_index.documents / R2024).read_text(encoding="utf-8")


def test_plain_question_finds_the_right_report(built_index: BuiltIndex) -> None:
    from qa.search.retriever import Retriever

    r = Retriever.open(built_index.index, built_index.settings)
    hits = r.search("2023年郑州市地区生产总值是多少？", k=5)
    assert hits and hits[0].passage.doc == R2024
    assert "生产总值" in hits[0].passage.text


def test_open_time_without_the_model(built_index: BuiltIndex) -> None:
    IndexStore.open(built_index.index)  # warm imports and the page cache
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        IndexStore.open(built_index.index)
        times.append(time.perf_counter() - t0)
    print(f"IndexStore.open: best {min(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms")
    assert min(times) < 5.0


# ---- missing and damaged indexes -------------------------------------------------------------------


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexProblem) as exc:
        IndexStore.open(tmp_path / "nowhere")
    one_sentence_with_fix(str(exc.value))


def _live(index: Path) -> Path:
    v = current_version(index)
    assert v is not None
    return v


@pytest.mark.parametrize(
    "damage",
    [
        "truncate-dense",
        "garble-manifest",
        "delete-passages",
        "truncate-vectors",
        "garble-current",
        "flip-byte",
    ],
)
def test_damaged_index_is_refused_with_the_fix(private_index: BuiltIndex, damage: str) -> None:
    v = _live(private_index.index)
    if damage == "truncate-dense":
        p = v / "dense.faiss"
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif damage == "garble-manifest":
        p = v / "manifest.json"
        p.write_bytes(p.read_bytes()[:200] + b"\x00\xff garbage")
    elif damage == "delete-passages":
        (v / "passages.jsonl").unlink()
    elif damage == "truncate-vectors":
        p = v / "vectors.npy"
        p.write_bytes(p.read_bytes()[:1000])
    elif damage == "garble-current":
        (private_index.index / "CURRENT").write_text("../../etc", encoding="utf-8")
    elif damage == "flip-byte":
        p = v / "passages.jsonl"
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x01  # same size, different content: only the checksum notices
        p.write_bytes(bytes(data))
    with pytest.raises(IndexProblem) as exc:
        IndexStore.open(private_index.index)
    one_sentence_with_fix(str(exc.value))
    assert "qa index --force" in str(exc.value) or damage == "garble-current"

    from qa.search.retriever import Retriever

    with pytest.raises(QAError):
        Retriever.open(private_index.index, private_index.settings)


def test_damaged_index_is_rebuilt_by_the_next_update(private_index: BuiltIndex) -> None:
    v = _live(private_index.index)
    p = v / "dense.faiss"
    p.write_bytes(p.read_bytes()[:100])
    report = update_index(private_index.documents, private_index.index, private_index.settings)
    assert report.full_rebuild_reason and "旧索引无法使用" in report.full_rebuild_reason
    assert report.passages_embedded == 0  # the embedding cache still holds every passage
    store = IndexStore.open(private_index.index)
    assert store.manifest.passages == report.passages_total > 500


# ---- a manifest from another model (the other direction is in test_indexer's model-change test) ----------------------------------------------------------------


def test_index_from_another_model_is_refused(private_index: BuiltIndex) -> None:
    from qa.search.retriever import Retriever

    v = _live(private_index.index)
    m = json.loads((v / "manifest.json").read_text(encoding="utf-8"))
    m["model_id"] = "BAAI/bge-small-zh-v1.5"
    m["model_fingerprint"] = "0123456789abcdef"
    (v / "manifest.json").write_text(json.dumps(m, ensure_ascii=False), encoding="utf-8")
    r = Retriever.open(private_index.index, private_index.settings)  # opening needs no model
    with pytest.raises(IndexProblem) as exc:
        r.ask("2023年郑州GDP是多少？")
    msg = str(exc.value)
    one_sentence_with_fix(msg)
    assert "BAAI/bge-small-zh-v1.5" in msg and "qa index --force" in msg
