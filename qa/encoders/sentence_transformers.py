"""Any sentence-transformers model on the CPU: a model folder, or a hub id (BAAI/bge-m3, ...) already in the
local hub cache. Never the network: a model that is not on this machine is one clear error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from qa.encoders.base import BaseEncoder, fingerprint_of, known_prompts
from qa.errors import QAError
from qa.hashing import sampled_file_identity


class SentenceTransformerEncoder(BaseEncoder):
    """Any sentence-transformers model (hub id in the local cache, or a directory), on the CPU."""

    def __init__(self, name: str, model_id: str | None = None, fingerprint: str | None = None) -> None:
        self.name = name
        self.model = load_sentence_transformer(name)
        own = dict(getattr(self.model, "prompts", None) or {})
        if own.get("query") is not None or own.get("passage") is not None or own.get("document") is not None:
            query_prompt = own.get("query") or ""
            passage_prompt = own.get("document") or own.get("passage") or ""
        else:
            query_prompt, passage_prompt = known_prompts(name)
        super().__init__(
            model_id=model_id or name,
            dim=int(self.model.get_embedding_dimension() or 0),
            # A given fingerprint (the default model's) is kept as is, so both default backends share it.
            fingerprint=fingerprint
            or fingerprint_of("sentence-transformers", weights_identity(name), query_prompt, passage_prompt),
            query_prompt=query_prompt,
            passage_prompt=passage_prompt,
        )

    def _forward(self, texts: list[str], prompt: str) -> np.ndarray:
        # The prompt goes in apart from the text: a model whose pooling leaves the prompt out needs it so.
        return np.asarray(
            self.model.encode(
                texts,
                prompt=prompt,
                batch_size=len(texts),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        )


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.sep in name and not _is_hub_id(name)


def _is_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~")) and not Path(name).exists()


def weights_identity(name: str) -> str:
    """Identity of a model's weights: sampled hashes of its weight files (local dir or hub cache snapshot)."""
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
    return fingerprint_of([(str(p.relative_to(path)), sampled_file_identity(p)) for p in files])


def load_sentence_transformer(name: str) -> Any:
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
