"""The store interface: what the query side and the builder ask of one index version, whatever holds it.

Two backends implement it:

- ``embedded`` (the default): FAISS + bm25s files in version directories (qa.index.store.IndexStore);
- ``milvus``: one Milvus collection per version behind an alias (qa.index.milvus.MilvusStore), on
  milvus-lite (a local ``milvus.db``) or a Milvus server (``http://host:19530``).

A version is immutable: passages are numbered 0..n-1 ("rows") in the order they were written, and every
call below answers for that one version, so a request that holds a store sees one consistent snapshot
while a writer builds the next. The calls are top-k style: nothing here scores every passage.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qa.errors import IndexProblem

if TYPE_CHECKING:
    from qa.index.manifest import Manifest
    from qa.index.writer import BuildInput, Progress, VersionRecord
    from qa.types import DocumentInfo, Passage

STORES = ("embedded", "milvus")


class StaleVersion(IndexProblem):
    """The version a reader holds was replaced and removed meanwhile; reopen the live one and retry."""


class Store(Protocol):
    """One opened, read-only index version."""

    manifest: Manifest

    @property
    def version(self) -> str:
        """The version's name (a directory or a collection); changes with every build."""
        ...

    def __len__(self) -> int:
        """Number of passages."""
        ...

    # -- first stage: top-k ---------------------------------------------------------------
    def dense_top(
        self, qvec: np.ndarray, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n rows most similar to a normalised query vector (rows, cosines), best first; only
        passages of `docs` when given."""
        ...

    def lexical_top(
        self, terms: Sequence[str], n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n rows with the highest positive BM25 for the terms (rows, scores), best first; only
        passages of `docs` when given."""
        ...

    # -- first stage: given candidates ----------------------------------------------------
    def dense_scores(self, qvec: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """Cosine of the query vector and each given row."""
        ...

    def lexical_scores(self, terms: Sequence[str], rows: Sequence[int]) -> np.ndarray:
        """BM25 of each given row for the terms (0 where none occurs)."""
        ...

    def passages_at(self, rows: Sequence[int]) -> list[Passage]:
        """The passages of the given rows, in that order."""
        ...

    def passage(self, row: int) -> Passage:
        """One passage by row."""
        ...

    def row_of(self, passage_id: str) -> int | None:
        """The row of a passage id, or None."""
        ...

    def passages_in(self, docs: Collection[str]) -> int:
        """How many passages the given documents have (unknown names count 0)."""
        ...

    # -- the corpus -------------------------------------------------------------------------
    def source_text(self, doc: str) -> str:
        """The original text of a document as it was indexed (KeyError for an unknown one)."""
        ...

    def document_infos(self) -> list[tuple[DocumentInfo, int]]:
        """Catalog info and passage count of every indexed document."""
        ...

    def idf(self) -> Mapping[str, float]:
        """BM25 idf of every corpus term."""
        ...

    def extra_file(self, name: str) -> bytes | None:
        """A file the builder stored with the version (`extra_files` of Target.write), or None."""
        ...

    # -- for the builder --------------------------------------------------------------------
    def doc_passages(self, doc: str) -> list[Passage]:
        """A document's passages in row order."""
        ...

    def doc_vectors(self, doc: str) -> np.ndarray:
        """A document's passage vectors in row order."""
        ...


class Target(Protocol):
    """Where versions of one knowledge base are written: the one-writer lock, the live version, a new one."""

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive lock for the one writer of this knowledge base (across processes)."""
        ...

    def open(self) -> Store:
        """The live version; IndexProblem ('no index …') when there is none yet."""
        ...

    def live_version(self) -> str | None:
        """The live version's name, cheaply (readers poll it), or None."""
        ...

    def write(
        self,
        docs: Sequence[BuildInput],
        vectors: np.ndarray,
        record: VersionRecord,
        *,
        progress: Progress,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> str:
        """Write a complete new version and make it the live one atomically; returns its name.
        `record`: what its manifest records besides the documents (model, chunker, lexicon, timings …).
        `extra_files`: more files of the version (name -> bytes), read back with Store.extra_file."""
        ...
