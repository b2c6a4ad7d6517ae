"""What an index version records about itself: format, model, chunker, documents, files and their hashes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# 3: the lexical index stores its own document frequencies (df.json); the manifest records the corpus lexicon
FORMAT_VERSION = 3


@dataclass
class DocEntry:
    """What the manifest records per document."""

    sha256: str
    passages: int
    info: dict[str, Any]


@dataclass
class Manifest:
    """Everything needed to decide whether an index can be reused, and to check its files."""

    format_version: int
    model: str  # what the user asked for ("default", a hub id or a path)
    model_id: str  # the encoder's own description
    model_fingerprint: str
    dim: int
    chunker: dict[str, Any]
    chunker_fingerprint: str
    faiss_index: str
    documents: dict[str, DocEntry]
    passages: int
    built_at: str
    build_seconds: float
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {size, sha256?}
    timings: dict[str, float] = field(default_factory=dict)
    lexicon: dict[str, Any] = field(default_factory=dict)  # the corpus's lexicon.toml, as parsed
    metadata_version: int = 0  # version of the reader that inferred the metadata of uncatalogued files

    def to_json(self) -> str:
        """Serialise to JSON."""
        d = dict(self.__dict__)
        d["documents"] = {k: v.__dict__ for k, v in self.documents.items()}
        return json.dumps(d, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse JSON written by to_json."""
        d = json.loads(text)
        d["documents"] = {k: DocEntry(**v) for k, v in d["documents"].items()}
        return cls(**d)
