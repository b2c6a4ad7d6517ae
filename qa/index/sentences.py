"""Sentence vectors: every candidate sentence of the answer line, embedded once when the index is built.

The answer line chooses one sentence of the top passages (qa.search.answer); how close that sentence is
in meaning to the question is one of its signals (`sent_sim`). Embedding the sentences at question time
would cost hundreds of milliseconds, so the builder embeds each distinct sentence of the corpus once
(qa.text.lines.passage_sentences, the answer line's own reader) with the index's model and stores them
with the version as one extra file (Target.write `extra_files`), in both stores:

    {"format": 1, "model_fingerprint": "...", "dim": 384,
     "keys": base64 of uint64[n] (the first 8 bytes of blake2b of each sentence as written),
     "vectors": base64 of float16[n, dim] (L2-normalised, as the model gives them)}

An update reuses the previous version's vectors for sentences it already had, and the embedding cache for
the rest; a changed model embeds them all again.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from qa.errors import IndexProblem
from qa.text.lines import passage_sentences

SENTENCE_FILE = "sentence_vectors.json"
SENTENCE_FORMAT = 1


def sentence_key(text: str) -> int:
    """The key of a sentence as written (64 bits of blake2b)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def corpus_sentences(passage_texts: Iterable[str]) -> list[str]:
    """Every distinct candidate sentence of these passages, in first-seen order."""
    seen: dict[str, None] = {}
    for text in passage_texts:
        for s, _ in passage_sentences(text):
            seen.setdefault(s, None)
    return list(seen)


class SentenceVectors:
    """The stored sentence vectors of one index version, looked up by sentence text."""

    def __init__(self, keys: np.ndarray, vectors: np.ndarray, model_fingerprint: str) -> None:
        if keys.ndim != 1 or vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"keys {keys.shape} and vectors {vectors.shape} do not match")
        self.keys = keys.astype(np.uint64, copy=False)
        self.vectors = vectors.astype(np.float16, copy=False)
        self.model_fingerprint = model_fingerprint
        self._row = {int(k): i for i, k in enumerate(self.keys.tolist())}

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dim(self) -> int:
        """Vector width."""
        return int(self.vectors.shape[1])

    @classmethod
    def from_texts(cls, texts: Sequence[str], vectors: np.ndarray, model_fingerprint: str) -> SentenceVectors:
        """A table of these sentences and their vectors (row for row)."""
        keys = np.asarray([sentence_key(t) for t in texts], dtype=np.uint64)
        return cls(keys, np.asarray(vectors).reshape(len(texts), -1), model_fingerprint)

    def rows(self, texts: Sequence[str]) -> list[int | None]:
        """Each sentence's row, or None when the table does not hold it."""
        return [self._row.get(sentence_key(t)) for t in texts]

    def similarities(self, qvec: np.ndarray, texts: Sequence[str]) -> np.ndarray | None:
        """Cosine similarity of each sentence to the question vector; None when any sentence is missing
        or the vector has another width (then no sentence gets the signal, rather than some)."""
        rows = self.rows(texts)
        if any(r is None for r in rows) or qvec.shape[-1] != self.dim:
            return None
        return self.vectors[np.asarray(rows, dtype=np.int64)].astype(np.float32) @ qvec.astype(np.float32)

    def to_bytes(self) -> bytes:
        """The extra file (UTF-8 JSON, so either store can keep it)."""
        return json.dumps(
            {
                "format": SENTENCE_FORMAT,
                "model_fingerprint": self.model_fingerprint,
                "dim": self.dim,
                "keys": base64.b64encode(self.keys.astype("<u8").tobytes()).decode("ascii"),
                "vectors": base64.b64encode(self.vectors.astype("<f2").tobytes()).decode("ascii"),
            }
        ).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> SentenceVectors:
        """Read the extra file; IndexProblem when it is damaged or of another format."""
        try:
            d = json.loads(data.decode("utf-8"))
            if d.get("format") != SENTENCE_FORMAT:
                raise ValueError(f"format {d.get('format')!r}, expected {SENTENCE_FORMAT}")
            keys = np.frombuffer(base64.b64decode(d["keys"], validate=True), dtype="<u8")
            vecs = np.frombuffer(base64.b64decode(d["vectors"], validate=True), dtype="<f2")
            dim = int(d["dim"])
            if dim <= 0 or vecs.size != keys.size * dim:
                raise ValueError(f"{keys.size} keys but {vecs.size} numbers for width {dim}")
            return cls(keys, vecs.reshape(keys.size, dim), str(d["model_fingerprint"]))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise IndexProblem(
                f"The index's sentence vectors ({SENTENCE_FILE}) are unreadable ({exc}); "
                "rebuild the index with `qa index --force`."
            ) from exc


def table_is_current(data: bytes | None, model_fingerprint: str) -> bool:
    """A stored table of this format, sound, made with this model (else the builder writes a new one)."""
    return _usable(data, model_fingerprint) is not None


def _usable(data: bytes | None, model_fingerprint: str) -> SentenceVectors | None:
    """The stored table when it is sound and made with this model, else None."""
    if data is None:
        return None
    try:
        table = SentenceVectors.from_bytes(data)
    except IndexProblem:
        return None
    return table if table.model_fingerprint == model_fingerprint else None


def build_table(
    passage_texts: Iterable[str],
    model_fingerprint: str,
    previous: bytes | None,
    embed: Callable[[list[str]], np.ndarray],
) -> tuple[SentenceVectors, int]:
    """The table for these passages: the previous version's vectors where it has them (same model), the
    rest from `embed` (texts -> float32 vectors, called once and only when something is new). Returns the
    table and how many sentences were embedded."""
    texts = corpus_sentences(passage_texts)
    old = _usable(previous, model_fingerprint)
    rows = old.rows(texts) if old is not None else [None] * len(texts)
    todo = [i for i, r in enumerate(rows) if r is None]
    new = embed([texts[i] for i in todo]) if todo else None
    dim = new.shape[1] if new is not None else (old.dim if old is not None else 0)
    out = np.zeros((len(texts), dim), dtype=np.float16)
    if old is not None:
        have = [(i, r) for i, r in enumerate(rows) if r is not None]
        if have:
            out[[i for i, _ in have]] = old.vectors[[r for _, r in have]]
    if new is not None:
        out[todo] = new.astype(np.float16)
    return SentenceVectors.from_texts(texts, out, model_fingerprint), len(todo)


def load_table(store: Any) -> SentenceVectors | None:
    """A store's sentence vectors, or None when the version has none or they were made with another model
    than its passages (an index built before they existed: the answer line then goes without the signal)."""
    data = store.extra_file(SENTENCE_FILE)
    if data is None:
        return None
    table = SentenceVectors.from_bytes(data)
    return table if table.model_fingerprint == store.manifest.model_fingerprint else None
