"""IndexSpec: the one place that says which settings define an index's content.

The builder compares a spec with an index's manifest to decide on a full rebuild (and says why in one
sentence), the manifest records it, and the eval runner names the index a configuration needs by its
key, so configurations that differ only in retrieval settings share one index.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from qa.ingest.chunking import CHUNKER_VERSION, ChunkerSettings

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.index.manifest import Manifest


@dataclass(frozen=True)
class IndexSpec:
    """The settings that change what an index holds; two settings with equal specs share one index."""

    model: str = "default"
    embed_backend: str = "auto"
    chunker: str = "chinese"
    chunk_max_chars: int = 300
    chunk_overlap_sentences: int = 1
    chunk_min_chars: int = 40
    faiss_index: str = "flat"

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexSpec:
        """The spec of the index these settings need."""
        return cls(**{k: getattr(settings, k) for k in cls.__dataclass_fields__})

    @property
    def chunker_settings(self) -> ChunkerSettings:
        """The chunker's own settings object."""
        return ChunkerSettings(
            max_chars=self.chunk_max_chars,
            overlap_sentences=self.chunk_overlap_sentences,
            min_chars=self.chunk_min_chars,
        )

    @property
    def chunker_record(self) -> dict[str, Any]:
        """What the manifest records about the chunker."""
        return {"chunker": self.chunker, **asdict(self.chunker_settings)}

    @property
    def chunker_fingerprint(self) -> str:
        """Stable id of the chunker, its sizes and the algorithm version."""
        return f"{self.chunker}:{self.chunker_settings.fingerprint()}"

    def fingerprint(self) -> str:
        """Stable id of the whole spec (the chunker algorithm version included)."""
        payload = json.dumps([asdict(self), CHUNKER_VERSION], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def key(self) -> str:
        """A folder-safe name for this spec's index (same key = same index)."""
        readable = re.sub(r"[^0-9A-Za-z._-]+", "_", f"{self.chunker}-{self.model}")
        return f"{readable[:40]}-{self.fingerprint()[:10]}"

    def rebuild_reason(self, manifest: Manifest, model_fingerprint: str | None) -> str | None:
        """Why an index with this manifest cannot be updated incrementally to this spec (None: it can).

        `model_fingerprint` is the default model's fingerprint for this spec's backend (None for other
        models, whose name is compared instead).
        """
        from qa.index.manifest import FORMAT_VERSION

        if manifest.format_version != FORMAT_VERSION:
            return "索引格式版本变了，将完整重建"
        if manifest.model != self.model:
            return f"嵌入模型从 {manifest.model} 换成了 {self.model}，将完整重建索引"
        if model_fingerprint is not None and model_fingerprint != manifest.model_fingerprint:
            return f"嵌入后端换成了 {self.embed_backend}（向量不同），将完整重建索引"
        if manifest.chunker_fingerprint != self.chunker_fingerprint:
            return "分段设置变了，将完整重建索引"
        if manifest.faiss_index != self.faiss_index:
            return f"FAISS 索引类型从 {manifest.faiss_index} 换成了 {self.faiss_index}，将重建"
        return None
