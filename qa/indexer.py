"""Build or incrementally update the index from a documents folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.encoders import EmbeddingCache, default_model_fingerprint
from qa.errors import DocumentError, IndexProblem, QAError
from qa.store import (
    FORMAT_VERSION,
    BuildInput,
    IndexStore,
    Progress,
    _noop,
    sha256_file,
    write_version,
    writer_lock,
)


@dataclass
class UpdateReport:
    """What an index build or update did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # uploads refused: same content as an indexed file
    passages_embedded: int = 0
    passages_total: int = 0
    seconds: float = 0.0
    full_rebuild_reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    written: bool = False

    @property
    def changed(self) -> bool:
        """True when the index content changed."""
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        """One line for people."""
        parts = []
        if self.full_rebuild_reason:
            parts.append(self.full_rebuild_reason)
        parts.append(
            f"新增 {len(self.added)} 篇，更新 {len(self.updated)} 篇，移除 {len(self.removed)} 篇，"
            f"未变 {len(self.unchanged)} 篇；嵌入 {self.passages_embedded} 段，共 {self.passages_total} 段，"
            f"用时 {self.seconds:.1f} 秒"
        )
        if self.errors:
            parts.append(f"{len(self.errors)} 个文件无法读取")
        return "；".join(parts) + "。"


def chunker_config(settings: Settings) -> tuple[Any, dict[str, Any], str]:
    """The chunker settings object, its dict for the manifest, and its fingerprint."""
    from qa.chunking import ChunkerSettings

    cs = ChunkerSettings(
        max_chars=settings.chunk_max_chars,
        overlap_sentences=settings.chunk_overlap_sentences,
        min_chars=settings.chunk_min_chars,
    )
    d = {"chunker": settings.chunker, **cs.__dict__}
    return cs, d, f"{settings.chunker}:{cs.fingerprint()}"


class LazyEncoder:
    """Loads the encoder only when something needs embedding."""

    def __init__(self, settings: Settings, encoder: Any | None = None) -> None:
        self.settings = settings
        self._encoder = encoder
        self.load_seconds = 0.0

    def get(self) -> Any:
        """The loaded encoder."""
        if self._encoder is None:
            from qa.encoders import load_encoder

            t = time.perf_counter()
            self._encoder = load_encoder(self.settings)
            self.load_seconds = time.perf_counter() - t
        return self._encoder

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._encoder is not None


def embed_passages(
    encoder: Any, texts: list[str], cache: EmbeddingCache | None, batch_size: int, progress: Progress
) -> tuple[np.ndarray, int]:
    """Vectors for texts, from the cache where possible; returns (vectors, how many were embedded)."""
    dim = encoder.dim
    out = np.zeros((len(texts), dim), dtype=np.float32)
    cached = cache.get_many(encoder.fingerprint, texts, dim) if cache else [None] * len(texts)
    todo = [i for i, v in enumerate(cached) if v is None]
    for i, v in enumerate(cached):
        if v is not None:
            out[i] = v
    if todo:
        done = 0
        t0 = time.perf_counter()

        def tick(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(time.perf_counter() - t0, 1e-6)
            progress(f"嵌入段落 {done}/{len(todo)}（{rate:.0f} 段/秒）", done / len(todo))

        batch = {"batch_size": batch_size} if batch_size > 0 else {}
        vecs = encoder.encode_documents([texts[i] for i in todo], progress=tick, **batch)
        out[todo] = vecs
        if cache:
            cache.put_many(encoder.fingerprint, [texts[i] for i in todo], vecs)
    return out, len(todo)


def update_index(
    documents_dir: str | Path,
    index_dir: str | Path,
    settings: Settings,
    *,
    force: bool = False,
    encoder: Any | None = None,
    progress: Progress | None = None,
    on_error: Callable[[DocumentError], None] | None = None,
) -> UpdateReport:
    """Bring the index in line with the documents folder, embedding only what changed."""
    from qa.ingest import document_files, process_document
    from qa.ingest.catalog import read_catalog

    progress = progress or _noop
    documents_dir, index_dir = Path(documents_dir), Path(index_dir)
    t_start = time.perf_counter()
    report = UpdateReport()
    timings: dict[str, float] = {}
    lazy = LazyEncoder(settings, encoder)
    cs, chunker_dict, chunker_fp = chunker_config(settings)

    with writer_lock(index_dir):
        previous: IndexStore | None = None
        try:
            previous = IndexStore.open(index_dir)
        except IndexProblem as exc:
            if "no index" not in str(exc):
                report.full_rebuild_reason = f"旧索引无法使用（{exc}），将完整重建"
        if previous is not None:
            m = previous.manifest
            reason = None
            if force:
                reason = "按 --force 完整重建索引"
            elif m.model != settings.model:
                reason = f"嵌入模型从 {m.model} 换成了 {settings.model}，将完整重建索引"
            elif (fp := default_model_fingerprint(settings)) is not None and fp != m.model_fingerprint:
                reason = f"嵌入后端换成了 {settings.embed_backend}（向量不同），将完整重建索引"
            elif m.chunker_fingerprint != chunker_fp:
                reason = "分段设置变了，将完整重建索引"
            elif m.faiss_index != settings.faiss_index:
                reason = f"FAISS 索引类型从 {m.faiss_index} 换成了 {settings.faiss_index}，将重建"
            elif m.format_version != FORMAT_VERSION:
                reason = "索引格式版本变了，将完整重建"
            if reason:
                report.full_rebuild_reason = reason
                reuse_vectors = False
            else:
                reuse_vectors = True
        else:
            reuse_vectors = False

        t = time.perf_counter()
        if not documents_dir.is_dir():
            raise QAError(
                f"The documents folder {documents_dir} does not exist; create it or pass --documents."
            )
        cat = read_catalog(documents_dir)
        files = document_files(documents_dir, cat.skip)
        catalog = cat.infos
        inputs: list[BuildInput] = []
        to_process: list[tuple[Path, str]] = []
        for f in files:
            digest = sha256_file(f)
            prev = previous.manifest.documents.get(f.name) if previous else None
            info = catalog.get(f.name)
            if (
                prev is not None
                and reuse_vectors
                and prev.sha256 == digest
                and (
                    info is None
                    and prev.info.get("guessed")
                    or info is not None
                    and info.to_dict() == prev.info
                )
            ):
                assert previous is not None
                rows = previous.doc_rows.get(f.name, np.zeros(0, np.int64))
                inputs.append(
                    BuildInput(
                        info=_info_from_dict(prev.info),
                        sha256=digest,
                        passages=[previous.passages[i] for i in rows],
                        original_text=previous.source_text(f.name),
                        vectors=np.asarray(previous.vectors[rows]),
                    )
                )
                report.unchanged.append(f.name)
            else:
                to_process.append((f, digest))
        timings["scan"] = time.perf_counter() - t

        t = time.perf_counter()
        for n, (f, digest) in enumerate(to_process):
            progress(f"分段 {f.name}", n / max(len(to_process), 1))

            def within(frac: float, n: int = n, name: str = f.name) -> None:
                # a very large file reports its cleaning block by block, so progress never stalls for minutes
                progress(f"分段 {name}（{frac:.0%}）", (n + frac) / max(len(to_process), 1))

            try:
                doc = process_document(f, catalog.get(f.name), cs, chunker=settings.chunker, progress=within)
            except DocumentError as exc:
                report.errors.append(str(exc))
                if on_error:
                    on_error(exc)
                continue
            if not doc.passages:
                err = DocumentError(
                    f.name, "no text could be extracted (empty, or an image-only file that needs OCR)"
                )
                report.errors.append(str(err))
                if on_error:
                    on_error(err)
                continue
            inputs.append(BuildInput(doc.info, digest, doc.passages, doc.original_text))
            was = previous.manifest.documents.get(f.name) if previous else None
            (report.updated if was is not None and reuse_vectors else report.added).append(f.name)
        timings["chunk"] = time.perf_counter() - t
        names = {f.name for f in files}
        if previous is not None:
            report.removed = sorted(d for d in previous.manifest.documents if d not in names)
            if not reuse_vectors:
                # a full rebuild: everything processed counts as added, except files that were there before
                report.updated = [n for n in report.added if n in previous.manifest.documents]
                report.added = [n for n in report.added if n not in previous.manifest.documents]

        if previous is not None and reuse_vectors and not report.changed:
            report.passages_total = previous.manifest.passages
            report.seconds = time.perf_counter() - t_start
            report.timings = timings
            return report

        new_texts = [p.embed_text for d in inputs if d.vectors is None for p in d.passages]
        embedded = 0
        t = time.perf_counter()
        if new_texts:
            enc = lazy.get()
            timings["model_load"] = lazy.load_seconds
            if (
                previous is not None
                and reuse_vectors
                and previous.manifest.model_fingerprint != enc.fingerprint
            ):
                # Same model name, different weights (e.g. a local model directory changed): never mix.
                report.full_rebuild_reason = "嵌入模型的权重变了，将完整重建索引"
                lazy_inputs = []
                for d in inputs:
                    lazy_inputs.append(BuildInput(d.info, d.sha256, d.passages, d.original_text))
                inputs = lazy_inputs
                new_texts = [p.embed_text for d in inputs for p in d.passages]
            t = time.perf_counter()
            cache = EmbeddingCache(settings.resolved_cache_dir() / "embeddings.sqlite")
            try:
                vecs, embedded = embed_passages(enc, new_texts, cache, settings.embed_batch_size, progress)
            finally:
                cache.close()
            timings["embed"] = time.perf_counter() - t
            row = 0
            for d in inputs:
                if d.vectors is None:
                    d.vectors = vecs[row : row + len(d.passages)]
                    row += len(d.passages)
            model_id, fp, dim = enc.model_id, enc.fingerprint, enc.dim
        else:
            assert previous is not None or not inputs
            if previous is not None:
                model_id, fp, dim = (
                    previous.manifest.model_id,
                    previous.manifest.model_fingerprint,
                    previous.manifest.dim,
                )
            else:
                enc = lazy.get()
                model_id, fp, dim = enc.model_id, enc.fingerprint, enc.dim
        report.passages_embedded = embedded

        t = time.perf_counter()
        vectors = (
            np.concatenate([d.vectors for d in inputs if d.vectors is not None], axis=0)
            if inputs
            else np.zeros((0, dim), np.float32)
        )
        write_version(
            index_dir,
            inputs,
            vectors,
            model=settings.model,
            model_id=model_id,
            model_fingerprint=fp,
            dim=dim,
            chunker=chunker_dict,
            chunker_fingerprint=chunker_fp,
            faiss_index=settings.faiss_index,
            build_seconds=time.perf_counter() - t_start,
            timings=timings,
            progress=progress,
        )
        timings["write"] = time.perf_counter() - t
        report.written = True
        report.passages_total = int(vectors.shape[0])
        report.seconds = time.perf_counter() - t_start
        report.timings = timings
        return report


def _info_from_dict(d: dict[str, Any]) -> Any:
    from qa.types import DocumentInfo

    return DocumentInfo(**d)
