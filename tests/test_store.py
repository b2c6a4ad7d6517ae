"""The on-disk index: build and reopen, the manifest, damaged files, a manifest from another model, open time.

This module also holds the session-wide index fixtures the other index/retrieval test modules import
(`from test_store import built_index, ...`): the real documents/ folder is copied into a temporary
directory and indexed once per session with the real default model.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.config import Settings
from qa.errors import IndexProblem, QAError
from qa.indexer import UpdateReport, update_index
from qa.store import IndexStore, current_version, sha256_file

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = REPO / "documents"
R2024 = "2024-zhengzhou-government-work-report.txt"

# ---- shared fixtures (imported by test_indexer, test_retrieval, test_langchain, test_cli) ---------


@dataclass
class BuiltIndex:
    """The session index: where it is, the documents it was built from, and how the build went."""

    index: Path
    documents: Path
    settings: Settings
    report: UpdateReport
    seconds: float

    def copy(self, dest: Path) -> BuiltIndex:
        """A private copy (index + documents) for tests that change things."""
        shutil.copytree(self.index, dest / "index", symlinks=True)
        shutil.copytree(self.documents, dest / "documents")
        return BuiltIndex(dest / "index", dest / "documents", self.settings, self.report, self.seconds)


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed as passages."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.fingerprint = inner.fingerprint
        self.calls = 0
        self.texts: list[str] = []

    def reset(self) -> None:
        """Forget the counts."""
        self.calls = 0
        self.texts = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Delegate (not counted)."""
        return self.inner.encode_queries(texts)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Delegate and count."""
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.encode_documents(texts, batch_size=batch_size, progress=progress)


def _seed_cache(cache: Path) -> None:
    """Reuse the converted model and embeddings the user's cache already holds (keeps the suite fast).

    The session cache is still a fresh directory, so texts a test writes for the first time are really
    embedded (the counts below depend on that); a machine with an empty cache just pays the full build once.
    """
    cache.mkdir(parents=True, exist_ok=True)
    user = Settings().resolved_cache_dir()
    models = user / "models"
    if models.is_dir() and any((m / "conversion.json").exists() for m in models.iterdir()):
        (cache / "models").symlink_to(models, target_is_directory=True)
    db = user / "embeddings.sqlite"
    if db.exists():
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(str(cache / "embeddings.sqlite"))
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()


def _share_embeddings(cache: Path) -> None:
    """Give the user's cache the session's embeddings of documents/, so the next run starts warm.

    Entries are keyed by (model fingerprint, text hash), so adding them never changes what any index holds.
    """
    user_db = Settings().resolved_cache_dir() / "embeddings.sqlite"
    if not user_db.exists():
        return
    db = sqlite3.connect(str(user_db), timeout=30)
    try:
        db.execute("ATTACH DATABASE ? AS s", (str(cache / "embeddings.sqlite"),))
        db.execute("INSERT OR IGNORE INTO emb SELECT fp, key, vec FROM s.emb")
        db.commit()
    except sqlite3.Error:
        pass  # a busy or odd user cache only costs the next run some time
    finally:
        db.close()


_SESSION: dict[str, Any] = {}


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings with a session cache directory."""
    if "settings" not in _SESSION:
        cache = tmp_path_factory.mktemp("qa-cache")
        _seed_cache(cache)
        _SESSION["settings"] = Settings(cache_dir=str(cache))
    return _SESSION["settings"]


@pytest.fixture(scope="session")
def real_encoder(session_settings: Settings) -> Any:
    """The real default encoder, loaded once."""
    if "encoder" not in _SESSION:
        from qa.embedding import load_encoder

        _SESSION["encoder"] = load_encoder(session_settings)
    return _SESSION["encoder"]


@pytest.fixture(scope="session")
def built_index(
    tmp_path_factory: pytest.TempPathFactory, session_settings: Settings, real_encoder: Any
) -> BuiltIndex:
    """documents/ copied into a temporary folder and indexed once per session (treat as read-only)."""
    if "built" not in _SESSION:
        root = tmp_path_factory.mktemp("built")
        docs = root / "documents"
        shutil.copytree(DOCUMENTS, docs)
        t0 = time.perf_counter()
        report = update_index(docs, root / "index", session_settings, encoder=real_encoder)
        seconds = time.perf_counter() - t0
        if report.passages_embedded:
            _share_embeddings(session_settings.resolved_cache_dir())
        print(f"\nsession index: {report.summary()} timings={report.timings}")
        _SESSION["built"] = BuiltIndex(root / "index", docs, session_settings, report, seconds)
    return _SESSION["built"]


@pytest.fixture
def private_index(built_index: BuiltIndex, tmp_path: Path) -> BuiltIndex:
    """A copy of the session index and its documents that a test may change."""
    return built_index.copy(tmp_path)


def real_excerpt(marker: str, paragraphs: int = 4, start: int = 40, source: str = R2024) -> str:
    """A small document of real report paragraphs, each tagged with `marker` so its passages are new text."""
    lines = [ln.strip() for ln in (DOCUMENTS / source).read_text(encoding="utf-8").splitlines()]
    long = [ln for ln in lines if len(ln) >= 80][start : start + paragraphs]
    assert len(long) == paragraphs
    body = "\n\n".join(f"{p}（{marker}）" for p in long)
    return f"郑州市政府工作报告摘编（{marker}）\n\n{body}\n"


def new_marker() -> str:
    """A tag no earlier run can have embedded."""
    return f"摘编{uuid.uuid4().hex[:8]}"


def one_sentence_with_fix(message: str) -> None:
    """The house rule for index problems: one sentence, naming the command that fixes it."""
    assert "qa index" in message, message
    assert "\n" not in message and "Traceback" not in message, message
    assert message.rstrip().endswith((".", "。")), message


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
    assert m.passages == len(store.passages) == store.dense.ntotal == report.passages_total > 500
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
    from qa.retrieval import Retriever

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

    from qa.retrieval import Retriever

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
    from qa.retrieval import Retriever

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
