"""The on-disk index: FAISS (dense) + BM25 (lexical) + passage store + manifest, saved atomically.

Layout of an index directory::

    index/
      CURRENT                 name of the live version directory (replaced atomically)
      v-<time>-<rand>/        one complete, immutable version
        manifest.json         format, model, chunker, per-document hashes, per-file sizes and hashes
        passages.jsonl        one Passage per line, in vector-row order
        vectors.npy           float32 [n, dim], L2-normalised (kept for incremental rebuilds)
        dense.faiss           FAISS index over the vectors (inner product)
        lexical/              bm25s index over jieba tokens (numpy arrays + JSON, no pickle)
        sources/<sha>.txt     the original text of every document, for citations and context
      .lock                   held by the one writer

A build writes a new version into a temporary directory, renames it into place and only then
points CURRENT at it, so a build killed at any moment leaves the previous version loadable.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexProblem
from qa.text import tokenize
from qa.types import DocumentInfo, Passage

FORMAT_VERSION = 2
_HASHED_FILE_LIMIT = 64 * 1024 * 1024  # verify sha256 of files up to this size on open; sizes always

Progress = Callable[[str, float | None], None]

FIX_HINT = "run `qa index --force` to rebuild it"


def _noop(_msg: str, _frac: float | None = None) -> None:
    pass


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock for the one process that writes an index directory."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def current_version(index_dir: Path) -> Path | None:
    """The live version directory, or None when there is no index yet."""
    cur = index_dir / "CURRENT"
    if not cur.exists():
        return None
    name = cur.read_text(encoding="utf-8").strip()
    if not name or "/" in name or name.startswith("."):
        raise IndexProblem(f"The index at {index_dir} has a damaged CURRENT file; {FIX_HINT}.")
    return index_dir / name


def make_faiss_index(vectors: np.ndarray, kind: str) -> Any:
    """Build a FAISS inner-product index of the requested kind over normalised vectors."""
    import faiss

    n, dim = vectors.shape if vectors.size else (0, vectors.shape[1] if vectors.ndim == 2 else 0)
    kind = kind.lower()
    index: Any  # the FAISS classes differ per kind
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    elif kind == "ivf" and n >= 2000:
        nlist = int(max(16, min(4 * np.sqrt(n), n // 39)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        # ~32 points per list trains the coarse quantiser well; more only lengthens the build
        sample = vectors[rng.choice(n, size=min(n, nlist * 32), replace=False)]
        index.train(np.ascontiguousarray(sample))
        # measured (qa bench --scale): nprobe 64 keeps recall@10 at 1.0 over 1M passages at 22 ms,
        # where nlist // 16 (250 lists) took 65 ms; 32 already gave 0.968
        index.nprobe = min(nlist, 64)
    elif kind in {"flat", "ivf"}:
        # IVF needs enough points to train its coarse quantiser; small corpora are searched exactly.
        index = faiss.IndexFlatIP(dim)
    else:
        raise IndexProblem(f"Unknown FAISS index type '{kind}'; use flat, ivf or hnsw.")
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class LexicalIndex:
    """BM25 over jieba tokens (bm25s), saved as numpy arrays and JSON."""

    def __init__(self, bm25: Any, n_docs: int) -> None:
        self.bm25 = bm25
        self.n_docs = n_docs

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """Index the given passage texts."""
        import bm25s

        corpus_tokens = [tokenize(t) or ["\u2205"] for t in texts]
        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        if corpus_tokens:
            bm25.index(corpus_tokens, show_progress=False)
        return cls(bm25, len(texts))

    def save(self, path: Path) -> None:
        """Write the index files into path."""
        path.mkdir(parents=True, exist_ok=True)
        if self.n_docs:
            self.bm25.save(str(path), show_progress=False, allow_pickle=False)

    @classmethod
    def load(cls, path: Path, n_docs: int) -> LexicalIndex:
        """Read an index written by save."""
        import bm25s

        if not n_docs:
            return cls(None, 0)
        bm25 = bm25s.BM25.load(str(path), allow_pickle=False, show_progress=False, verbosity=0)
        return cls(bm25, n_docs)

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every passage for the query tokens."""
        if not self.n_docs or not tokens:
            return np.zeros(self.n_docs, dtype=np.float32)
        vocab = self.bm25.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32)


class IndexStore:
    """One opened, read-only index version."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        passages: list[Passage],
        vectors: np.ndarray,
        dense: Any,
        lexical: LexicalIndex,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.passages = passages
        self.vectors = vectors
        self.dense = dense
        self.lexical = lexical
        self.by_id = {p.id: i for i, p in enumerate(passages)}
        self.doc_rows: dict[str, np.ndarray] = {}
        rows: dict[str, list[int]] = {}
        for i, p in enumerate(passages):
            rows.setdefault(p.doc, []).append(i)
        self.doc_rows = {d: np.asarray(r, dtype=np.int64) for d, r in rows.items()}
        self.doc_of_row = np.asarray([p.doc for p in passages], dtype=object)
        self._sources: dict[str, str] = {}
        # per-version memo for derived text (normalised passages, their sentences): lives and dies with it
        self.memo: dict[str, dict[int, Any]] = {"norm": {}, "sentences": {}, "section": {}}

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
            import faiss

            passages = [
                Passage.from_dict(json.loads(line))
                for line in (version / "passages.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
            vectors = np.load(version / "vectors.npy", allow_pickle=False, mmap_mode="r")
            dense = faiss.read_index(str(version / "dense.faiss"))
            lexical = LexicalIndex.load(version / "lexical", len(passages))
        except IndexProblem:
            raise
        except Exception as exc:  # any decoding failure means a damaged file
            raise IndexProblem(
                f"The index at {index_dir} could not be read ({type(exc).__name__}: {exc}); {FIX_HINT}."
            ) from exc
        if (
            len(passages) != manifest.passages
            or vectors.shape[0] != len(passages)
            or dense.ntotal != len(passages)
        ):
            raise IndexProblem(
                f"The index at {index_dir} is inconsistent (passage and vector counts differ); {FIX_HINT}."
            )
        return cls(version, manifest, passages, vectors, dense, lexical)

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
            self._sources[doc] = (self.path / "sources" / f"{entry.sha256}.txt").read_text(encoding="utf-8")
        return self._sources[doc]

    def document_infos(self) -> list[tuple[DocumentInfo, int]]:
        """Catalog info and passage count of every indexed document."""
        return [(DocumentInfo(**e.info), e.passages) for e in self.manifest.documents.values()]

    def dense_search(
        self, qvec: np.ndarray, n: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n rows by inner product, optionally only among `rows`."""
        if not self.passages:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = np.asarray(qvec, dtype=np.float32).reshape(1, -1)
        if rows is not None:
            if len(rows) == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            sims = np.asarray(self.vectors[rows] @ q[0], dtype=np.float32)
            top = np.argsort(-sims)[:n]
            return rows[top], sims[top]
        scores, ids = self.dense.search(q, min(n, len(self.passages)))
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), scores[0][keep]


# ---- building -------------------------------------------------------------------------------


@dataclass
class BuildInput:
    """A document ready to be written: its info, hash, passages and original text."""

    info: DocumentInfo
    sha256: str
    passages: list[Passage]
    original_text: str
    vectors: np.ndarray | None = None  # reused from the previous version when unchanged


def write_version(
    index_dir: Path,
    docs: Sequence[BuildInput],
    vectors: np.ndarray,
    *,
    model: str,
    model_id: str,
    model_fingerprint: str,
    dim: int,
    chunker: dict[str, Any],
    chunker_fingerprint: str,
    faiss_index: str,
    build_seconds: float,
    timings: dict[str, float] | None = None,
    progress: Progress = _noop,
) -> Path:
    """Write a complete new version and atomically make it the live one."""
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        passages = [p for d in docs for p in d.passages]
        assert vectors.shape[0] == len(passages)
        progress("写入段落与向量", None)
        _write_file(
            tmp / "passages.jsonl",
            "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in passages).encode("utf-8"),
        )
        with open(tmp / "vectors.npy", "wb") as f:
            np.save(f, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        progress("建立 FAISS 索引", None)
        import faiss

        try:
            faiss.write_index(make_faiss_index(vectors, faiss_index), str(tmp / "dense.faiss"))
        except RuntimeError as exc:  # FAISS reports a failed write (disk full) as a RuntimeError
            raise OSError(errno.EIO, "FAISS could not write dense.faiss (disk full?)") from exc
        progress("建立 BM25 词法索引", None)
        # the heading travels with every passage of its section into the lexical index
        LexicalIndex.build([p.embed_text for p in passages]).save(tmp / "lexical")
        (tmp / "sources").mkdir()
        for d in docs:
            _write_file(tmp / "sources" / f"{d.sha256}.txt", d.original_text.encode("utf-8"))
        files: dict[str, dict[str, Any]] = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                size = p.stat().st_size
                rel = str(p.relative_to(tmp))
                files[rel] = {"size": size}
                if size <= _HASHED_FILE_LIMIT:
                    files[rel]["sha256"] = sha256_file(p)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model=model,
            model_id=model_id,
            model_fingerprint=model_fingerprint,
            dim=dim,
            chunker=chunker,
            chunker_fingerprint=chunker_fingerprint,
            faiss_index=faiss_index,
            documents={d.info.file: DocEntry(d.sha256, len(d.passages), d.info.to_dict()) for d in docs},
            passages=len(passages),
            built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            build_seconds=round(build_seconds, 3),
            files=files,
            timings=timings or {},
        )
        _write_file(tmp / "manifest.json", manifest.to_json().encode("utf-8"))
        _fsync_dir(tmp)
        final = index_dir / f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        os.rename(tmp, final)
        _fsync_dir(index_dir)
        cur_tmp = index_dir / f".CURRENT.{os.getpid()}.tmp"
        try:
            _write_file(cur_tmp, final.name.encode("utf-8"))
            os.replace(cur_tmp, index_dir / "CURRENT")
        except BaseException:
            # CURRENT still names the previous version: the new one must not linger as a stray copy
            with contextlib.suppress(OSError):
                cur_tmp.unlink()
            shutil.rmtree(final, ignore_errors=True)
            raise
        _fsync_dir(index_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # disk full, a size limit, permissions: the live version was never touched
        # numpy reports a short write without an errno ("N requested and M written"): a full disk
        why = exc.strerror if exc.errno and exc.strerror else f"{exc}; the disk is probably full"
        raise IndexProblem(
            f"Writing the new index into {index_dir} failed ({why}), so the previous "
            f"index is still the one in use; free some disk space and run `qa index` again."
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune_versions(index_dir)
    return final


def prune_versions(index_dir: Path, keep: int = 2) -> None:
    """Remove old versions (keeping the live one and the one before it) and dead temporaries."""
    live = current_version(index_dir)
    versions = sorted((p for p in index_dir.glob("v-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    stale = [v for v in versions if v != live][: max(0, len(versions) - keep)]
    for v in stale:
        shutil.rmtree(v, ignore_errors=True)
    for tmp in index_dir.glob(".building-*"):
        try:
            pid = int(tmp.name.split("-")[1])
        except (IndexError, ValueError):
            pid = -1
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            alive = pid > 0
        except OSError:
            alive = False
        if not alive:
            shutil.rmtree(tmp, ignore_errors=True)
    for cur_tmp in index_dir.glob(".CURRENT.*.tmp"):
        with contextlib.suppress(OSError):
            cur_tmp.unlink()
