"""One opened, read-only index version: manifest, passages, dense and lexical indexes, source texts.

Layout of an index directory::

    index/
      CURRENT                 name of the live version directory (replaced atomically)
      v-<time>-<rand>/        one complete, immutable version
        manifest.json         format, model, chunker, corpus lexicon, per-document hashes and metadata,
                              per-file sizes and hashes
        passages.jsonl        one Passage per line, in vector-row order
        vectors.npy           float32 [n, dim], L2-normalised (kept for incremental rebuilds)
        dense.faiss           FAISS index over the vectors (inner product)
        lexical/              bm25s index over jieba tokens (numpy arrays + JSON, no pickle) and df.json
        sources/<sha>.txt     the original text of every document, for citations and context
        english.json          the English dictionary table (qa.text.english)
        sentence_vectors.json the answer line's candidate sentences, embedded (qa.index.sentences)
      .lock                   held by the one writer
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

from qa.errors import IndexProblem
from qa.hashing import sha256_file
from qa.index.backend import StaleVersion
from qa.index.dense import DenseIndex
from qa.index.lexical import LexicalIndex
from qa.index.manifest import FORMAT_VERSION, Manifest
from qa.index.writer import (
    FIX_HINT,
    BuildInput,
    Progress,
    VersionRecord,
    current_version,
    no_progress,
    write_version,
    writer_lock,
)
from qa.types import DocumentInfo, Passage


class IndexStore:
    """One opened, read-only index version (the `embedded` backend of qa.index.backend.Store)."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        passages: list[Passage],
        dense: DenseIndex,
        lexical: LexicalIndex,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.passages = passages
        self.dense = dense
        self.lexical = lexical
        self.by_id = {p.id: i for i, p in enumerate(passages)}
        rows: dict[str, list[int]] = {}
        for i, p in enumerate(passages):
            rows.setdefault(p.doc, []).append(i)
        self.doc_rows: dict[str, np.ndarray] = {d: np.asarray(r, dtype=np.int64) for d, r in rows.items()}
        # source texts read so far (or given, for a store built in memory)
        self._sources: dict[str, str] = dict(sources or {})

    @property
    def vectors(self) -> np.ndarray:
        """Passage vectors in row order."""
        return self.dense.vectors

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, index_dir: str | Path, verify: bool = True) -> IndexStore:
        """Open the live version of an index; a missing or damaged index raises IndexProblem."""
        index_dir = Path(index_dir)
        version = current_version(index_dir)
        if version is None:
            raise IndexProblem(
                f"There is no index at {index_dir} yet; run `qa index --index {index_dir}` to build it."
            )
        if not version.is_dir():
            raise IndexProblem(
                f"The index at {index_dir} points to a missing version ({version.name}); {FIX_HINT}."
            )
        try:
            manifest = Manifest.from_json((version / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexProblem(f"The index at {index_dir} has no manifest; {FIX_HINT}.") from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexProblem(f"The index manifest at {version} is damaged ({exc}); {FIX_HINT}.") from exc
        if manifest.format_version != FORMAT_VERSION:
            raise IndexProblem(
                f"The index at {index_dir} has format {manifest.format_version}, this program reads "
                f"format {FORMAT_VERSION}; {FIX_HINT}."
            )
        if verify:
            cls._verify_files(version, manifest)
        try:
            passages = [
                Passage.from_dict(json.loads(line))
                for line in (version / "passages.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
            dense = DenseIndex.load(version)
            lexical = LexicalIndex.load(version / "lexical", len(passages))
        except IndexProblem:
            raise
        except Exception as exc:  # any decoding failure means a damaged file
            raise IndexProblem(
                f"The index at {index_dir} could not be read ({type(exc).__name__}: {exc}); {FIX_HINT}."
            ) from exc
        if (
            len(passages) != manifest.passages
            or len(dense) != len(passages)
            or dense.faiss.ntotal != len(passages)
        ):
            raise IndexProblem(
                f"The index at {index_dir} is inconsistent (passage and vector counts differ); {FIX_HINT}."
            )
        return cls(version, manifest, passages, dense, lexical)

    @staticmethod
    def _verify_files(version: Path, manifest: Manifest) -> None:
        for name, meta in manifest.files.items():
            p = version / name
            if not p.exists():
                raise IndexProblem(f"The index file {name} is missing from {version}; {FIX_HINT}.")
            if p.stat().st_size != meta["size"]:
                raise IndexProblem(f"The index file {name} in {version} is truncated or altered; {FIX_HINT}.")
            if meta.get("sha256") and sha256_file(p) != meta["sha256"]:
                raise IndexProblem(
                    f"The index file {name} in {version} is corrupt (checksum mismatch); {FIX_HINT}."
                )

    # -- reading --------------------------------------------------------------------------
    def source_text(self, doc: str) -> str:
        """The original text of a document as it was indexed."""
        if doc not in self._sources:
            entry = self.manifest.documents.get(doc)
            if entry is None:
                raise KeyError(doc)
            try:
                text = (self.path / "sources" / f"{entry.sha256}.txt").read_text(encoding="utf-8")
            except FileNotFoundError as exc:
                if not self.path.exists():  # pruned after two newer versions went live
                    raise StaleVersion(
                        f"The index version {self.path.name} was replaced; reopen the index (`qa index` "
                        "rebuilds it if this persists)."
                    ) from exc
                raise
            self._sources[doc] = text
        return self._sources[doc]

    def document_infos(self) -> list[tuple[DocumentInfo, int]]:
        """Catalog info and passage count of every indexed document."""
        return [(DocumentInfo(**e.info), e.passages) for e in self.manifest.documents.values()]

    def extra_file(self, name: str) -> bytes | None:
        """A file the builder stored with this version (qa.text.english's dictionary table), or None."""
        if name not in self.manifest.files:
            return None
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None

    def rows_of(self, docs: Mapping[str, object] | Collection[str]) -> np.ndarray:
        """Rows of the passages of the given documents (unknown names contribute nothing)."""
        parts = [self.doc_rows[d] for d in sorted(docs) if d in self.doc_rows]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    # -- the store interface (qa.index.backend.Store) ----------------------------------------
    @property
    def version(self) -> str:
        """The version directory's name."""
        return self.path.name

    def __len__(self) -> int:
        return len(self.passages)

    def dense_top(
        self, qvec: np.ndarray, n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS top-n, or an exact scan of the given documents' rows."""
        return self.dense.search(qvec, n, None if docs is None else self.rows_of(docs))

    def lexical_top(
        self, terms: Sequence[str], n: int, docs: Collection[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-n without scoring every passage (LexicalIndex.top)."""
        rows = None if docs is None else np.sort(self.rows_of(docs))
        return self.lexical.top(terms, n, rows)

    def dense_scores(self, qvec: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """Cosine per row (one dot product each, as the first stage always computed them)."""
        return np.asarray([self.dense.similarity(int(r), qvec) for r in rows], dtype=np.float64)

    def lexical_scores(self, terms: Sequence[str], rows: Sequence[int]) -> np.ndarray:
        """BM25 per row."""
        return self.lexical.score_rows(terms, np.asarray(rows, dtype=np.int64))

    def passages_at(self, rows: Sequence[int]) -> list[Passage]:
        """Passages by row."""
        return [self.passages[int(r)] for r in rows]

    def passage(self, row: int) -> Passage:
        """One passage by row."""
        return self.passages[row]

    def row_of(self, passage_id: str) -> int | None:
        """The row of a passage id."""
        return self.by_id.get(passage_id)

    def passages_in(self, docs: Collection[str]) -> int:
        """Passages of the given documents."""
        return sum(len(self.doc_rows[d]) for d in docs if d in self.doc_rows)

    def idf(self) -> Mapping[str, float]:
        """The lexical index's idf."""
        return self.lexical.idf()

    def doc_passages(self, doc: str) -> list[Passage]:
        """A document's passages in row order."""
        return [self.passages[i] for i in self.doc_rows.get(doc, np.zeros(0, np.int64))]

    def doc_vectors(self, doc: str) -> np.ndarray:
        """A document's vectors in row order."""
        return np.asarray(self.vectors[self.doc_rows.get(doc, np.zeros(0, np.int64))])


class EmbeddedTarget:
    """The `embedded` backend's writer side: version directories under one index folder."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The index folder's .lock."""
        return writer_lock(self.index_dir)

    def open(self) -> IndexStore:
        """The live version."""
        return IndexStore.open(self.index_dir)

    def live_version(self) -> str | None:
        """The name CURRENT holds (one small read)."""
        with contextlib.suppress(OSError, IndexProblem):
            cur = current_version(self.index_dir)
            return cur.name if cur is not None else None
        return None

    def write(
        self,
        docs: Sequence[BuildInput],
        vectors: np.ndarray,
        record: VersionRecord,
        *,
        progress: Progress = no_progress,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> str:
        """write_version into the folder."""
        return write_version(
            self.index_dir, docs, vectors, record, progress=progress, extra_files=extra_files
        ).name
