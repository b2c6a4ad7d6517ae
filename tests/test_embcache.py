"""The embedding cache (qa.encoders.cache) with real vectors of real passages from the default encoder."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.encoders import load_encoder
from qa.encoders.cache import EmbeddingCache

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def passages(documents_dir: Path) -> list[str]:
    """Real paragraphs of the 2024 report, long enough to be passages."""
    text = (documents_dir / "2024-zhengzhou-government-work-report.txt").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if len(ln.strip()) >= 60][:24]


@pytest.fixture(scope="module")
def vectors(passages: list[str], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, np.ndarray]:
    """(fingerprint, vectors) of the passages from the real default encoder, its model in a temporary cache."""
    enc = load_encoder(Settings(cache_dir=str(tmp_path_factory.mktemp("model-cache"))))
    return enc.fingerprint, enc.encode_documents(passages)


def test_round_trip_keeps_every_bit_and_the_order(
    tmp_path: Path, passages: list[str], vectors: tuple[str, np.ndarray]
) -> None:
    fp, vecs = vectors
    cache = EmbeddingCache(tmp_path / "sub" / "embeddings.sqlite")  # the folder is made
    cache.put_many(fp, passages, vecs)
    order = [5, 0, 5, 23, 11]  # any order, duplicates included
    got = cache.get_many(fp, [passages[i] for i in order], vecs.shape[1])
    for i, v in zip(order, got, strict=True):
        assert v is not None and v.dtype == np.float32 and np.array_equal(v, vecs[i])
    cache.close()
    again = EmbeddingCache(tmp_path / "sub" / "embeddings.sqlite")  # persisted, not only in memory
    assert all(np.array_equal(v, vecs[i]) for i, v in enumerate(again.get_many(fp, passages, 384)))  # type: ignore[arg-type]
    again.close()


def test_missing_texts_and_other_dimensions_come_back_as_none(
    tmp_path: Path, passages: list[str], vectors: tuple[str, np.ndarray]
) -> None:
    fp, vecs = vectors
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    cache.put_many(fp, passages[:10], vecs[:10])
    got = cache.get_many(fp, passages[8:12], 384)
    assert [v is None for v in got] == [False, False, True, True]
    # The same text with a trailing space is another text: the indexer embeds exactly what it stores.
    assert cache.get_many(fp, [passages[0] + " "], 384) == [None]
    assert cache.get_many(fp, [], 384) == []
    # A vector of another length (a model whose fingerprint collided, a damaged row) is never returned.
    assert cache.get_many(fp, passages[:3], 768) == [None, None, None]
    cache.close()


def test_the_fingerprint_keeps_models_apart(
    tmp_path: Path, passages: list[str], vectors: tuple[str, np.ndarray]
) -> None:
    fp, vecs = vectors
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    other = vecs[::-1].copy()  # another model's vectors for the same texts
    cache.put_many(fp, passages, vecs)
    cache.put_many("another-model", passages, other)
    mine = np.stack(cache.get_many(fp, passages, 384))  # type: ignore[arg-type]
    theirs = np.stack(cache.get_many("another-model", passages, 384))  # type: ignore[arg-type]
    assert np.array_equal(mine, vecs) and np.array_equal(theirs, other)
    assert cache.get_many("a-third-model", passages[:2], 384) == [None, None]
    cache.put_many(fp, passages[:1], other[:1])  # a rewrite replaces, it does not duplicate
    assert np.array_equal(cache.get_many(fp, passages[:1], 384)[0], other[0])  # type: ignore[arg-type]
    cache.close()


_WRITER = """
import sys
import numpy as np
from pathlib import Path
from qa.encoders.cache import EmbeddingCache

path, vec_file, fp = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
vecs = np.load(vec_file)
cache = EmbeddingCache(path)
for round_ in range(40):
    texts = [f"{fp} {round_} {i}" for i in range(len(vecs))]
    cache.put_many(fp, texts, vecs)
    assert all(v is not None for v in cache.get_many(fp, texts, vecs.shape[1]))
cache.close()
"""


def test_two_processes_and_several_threads_share_one_file(
    tmp_path: Path, vectors: tuple[str, np.ndarray]
) -> None:
    _, vecs = vectors
    path = tmp_path / "embeddings.sqlite"
    np.save(tmp_path / "vecs.npy", vecs)
    cache = EmbeddingCache(path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(tmp_path / "vecs.npy"), f"proc{k}"], cwd=REPO
        )
        for k in range(2)
    ]
    errors: list[BaseException] = []
    rounds: dict[str, int] = {}

    def write(name: str) -> None:
        # Until both processes are done (and at least 40 rounds), so the writers really overlap.
        try:
            round_ = 0
            while round_ < 40 or any(p.poll() is None for p in procs):
                texts = [f"{name} {round_} {i}" for i in range(len(vecs))]
                cache.put_many(name, texts, vecs)
                assert all(v is not None for v in cache.get_many(name, texts, 384))
                round_ += 1
            rounds[name] = round_
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"thread{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert not errors, errors
    rounds.update(proc0=40, proc1=40)
    for name, n in rounds.items():
        texts = [f"{name} {r} {i}" for r in range(n) for i in range(len(vecs))]
        got = cache.get_many(name, texts, 384)
        assert all(v is not None for v in got), name
        assert np.array_equal(np.stack(got[-len(vecs) :]), vecs)  # type: ignore[arg-type]
    assert len(rounds) == 5
    cache.close()
