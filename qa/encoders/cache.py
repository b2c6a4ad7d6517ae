"""Embedding cache keyed by (model fingerprint, text hash), so unchanged text is never re-embedded."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def text_key(text: str) -> str:
    """Stable key of a text to embed."""
    # sha1, not qa.hashing's sha256: every vector already in a user's cache is stored under this key;
    # another hash would re-embed them all once.
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A small SQLite table of float32 vectors; safe to share between processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS emb (fp TEXT, key TEXT, vec BLOB, PRIMARY KEY (fp, key))"
        )
        self._db.commit()

    def get_many(self, fingerprint: str, texts: Sequence[str], dim: int) -> list[np.ndarray | None]:
        """Cached vectors for texts (None where missing)."""
        keys = [text_key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, vec FROM emb WHERE fp=? AND key IN ({','.join('?' * len(chunk))})"
                for key, blob in self._db.execute(q, [fingerprint, *chunk]):
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == dim:
                        found[key] = vec
        return [found.get(k) for k in keys]

    def put_many(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors for texts."""
        rows = [
            (fingerprint, text_key(t), np.asarray(v, dtype=np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)", rows)
            self._db.commit()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
