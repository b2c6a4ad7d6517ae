"""Build or incrementally update the index from a documents folder.

Only new or changed files are chunked and embedded (vectors also come from the embedding cache by
text). A file whose bytes are unchanged but whose catalog entry changed keeps its passages and vectors:
only its metadata is rewritten, so a user's correction re-routes questions without re-embedding. The
same holds for a changed corpus lexicon (documents/lexicon.toml).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Settings
from qa.encoders import EmbeddingCache, default_model_fingerprint
from qa.errors import DocumentError, IndexProblem, QAError
from qa.hashing import sha256_file
from qa.index.backend import Store, Target
from qa.index.factory import open_target
from qa.index.spec import IndexSpec
from qa.index.writer import BuildInput, ModelRecord, Progress, VersionRecord, no_progress
from qa.types import DocumentInfo


@dataclass
class UpdateReport:
    """What an index build or update did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    relabelled: list[str] = field(
        default_factory=list
    )  # only the metadata changed: no re-chunking, no re-embedding
    errors: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # uploads refused: same content as an indexed file
    passages_embedded: int = 0
    sentences_embedded: int = 0  # the answer line's sentences (qa.index.sentences) embedded anew
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
        if self.sentences_embedded:
            parts.append(f"为答案句嵌入 {self.sentences_embedded} 句")
        if self.relabelled:
            parts.append(f"{len(self.relabelled)} 篇只更新了文件信息（未重新嵌入）")
        if self.errors:
            parts.append(f"{len(self.errors)} 个文件无法读取")
        return "；".join(parts) + "。"


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


def embed_passages(
    encoder: Any,
    texts: list[str],
    cache: Any | None,
    batch_size: int,
    progress: Progress,
    what: tuple[str, str] = ("段落", "段"),
) -> tuple[np.ndarray, int]:
    """Vectors for texts, from the cache where possible; returns (vectors, how many were embedded).
    `what`: the things embedded and their measure word, for the progress line."""
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
            progress(f"嵌入{what[0]} {done}/{len(todo)}（{rate:.0f} {what[1]}/秒）", done / len(todo))

        batch = {"batch_size": batch_size} if batch_size > 0 else {}
        vecs = encoder.encode_documents([texts[i] for i in todo], progress=tick, **batch)
        out[todo] = vecs
        if cache:
            cache.put_many(encoder.fingerprint, [texts[i] for i in todo], vecs)
    return out, len(todo)


def _relabelled(prev: Store, doc: str, info: DocumentInfo, sha: str) -> BuildInput:
    """A document's previous passages and vectors under new metadata (title and year travel with passages)."""
    passages = [replace(p, title=info.title, year=info.year) for p in prev.doc_passages(doc)]
    return BuildInput(info, sha, passages, prev.source_text(doc), prev.doc_vectors(doc))


def update_index(
    documents_dir: str | Path,
    index_dir: str | Path,
    settings: Settings,
    *,
    force: bool = False,
    encoder: Any | None = None,
    progress: Progress | None = None,
    on_error: Callable[[DocumentError], None] | None = None,
    staged: Sequence[Path] = (),
    kb: str = "default",
) -> UpdateReport:
    """Bring the index in line with the documents folder, embedding only what changed.

    `staged`: files outside the folder (an upload's staging copy) indexed as if they were in it under their
    own names; each one the new version took in is moved into the folder once that version is live, and
    one that could not be read stays where it is (its error is in the report).

    With `store = "milvus"` the versions go to the knowledge base `kb`'s collections in Milvus and
    `index_dir` only holds the writer's lock; with the default `embedded` store they are written there.
    """
    from qa.ingest.loaders import Limits, use_limits

    progress = progress or no_progress
    documents_dir, index_dir = Path(documents_dir), Path(index_dir)
    t_start = time.perf_counter()
    report = UpdateReport()
    timings: dict[str, float] = {}
    lazy = LazyEncoder(settings, encoder)
    spec = IndexSpec.from_settings(settings)

    target = open_target(settings, index_dir, kb)
    with target.lock(), use_limits(Limits.from_settings(settings)):
        previous, reuse_vectors = _open_previous(target, settings, spec, force, report)

        t = time.perf_counter()
        folder = _read_folder(documents_dir, staged)
        inputs, to_process = _sort_files(folder, previous, reuse_vectors, report)
        timings["scan"] = time.perf_counter() - t

        t = time.perf_counter()
        inputs += _chunk_changed(
            to_process, folder, spec, previous, reuse_vectors, progress, on_error, report
        )
        timings["chunk"] = time.perf_counter() - t
        _count_removed(folder, previous, reuse_vectors, report)

        if _is_up_to_date(previous, reuse_vectors, folder, report):
            assert previous is not None  # up to date means there is a previous version
            report.passages_total = previous.manifest.passages
            report.seconds = time.perf_counter() - t_start
            report.timings = timings
            _commit_staged(staged, documents_dir, report)
            return report

        inputs, model = _embed_new(inputs, previous, reuse_vectors, lazy, settings, progress, report, timings)
        extra = _english_table(inputs, folder, previous, progress, timings)
        extra.update(
            _sentence_table(
                inputs, model, previous if reuse_vectors else None, lazy, settings, progress, report, timings
            )
        )
        report.passages_total = _write_version(
            target, inputs, model, spec, folder, t_start, timings, progress, extra
        )
        report.written = True
        _commit_staged(staged, documents_dir, report)
        report.seconds = time.perf_counter() - t_start
        report.timings = timings
        return report


@dataclass
class _Folder:
    """What the documents folder holds: its catalog entries, its corpus lexicon and its document files."""

    catalog: dict[str, DocumentInfo]
    lexicon: dict[str, Any]
    files: list[Path]


def _open_previous(
    target: Target, settings: Settings, spec: IndexSpec, force: bool, report: UpdateReport
) -> tuple[Store | None, bool]:
    """The live version (None when there is none or it is unusable) and whether its vectors can be reused.

    Why a full rebuild is needed, when it is, goes into `report.full_rebuild_reason`."""
    previous: Store | None = None
    try:
        previous = target.open()
    except IndexProblem as exc:
        if "no index" not in str(exc):
            report.full_rebuild_reason = f"旧索引无法使用（{exc}），将完整重建"
    reuse_vectors = False
    if previous is not None:
        reason = (
            "按 --force 完整重建索引"
            if force
            else spec.rebuild_reason(previous.manifest, default_model_fingerprint(settings))
        )
        report.full_rebuild_reason = reason
        reuse_vectors = reason is None
    return previous, reuse_vectors


def _read_folder(documents_dir: Path, staged: Sequence[Path]) -> _Folder:
    """The folder's catalog, lexicon and document files, the staged files standing in for their namesakes."""
    from qa.ingest.catalog import read_catalog
    from qa.ingest.pipeline import document_files
    from qa.text.lexicon import corpus_lexicon_data

    if not documents_dir.is_dir():
        raise QAError(f"The documents folder {documents_dir} does not exist; create it or pass --documents.")
    cat = read_catalog(documents_dir)
    lexicon = corpus_lexicon_data(documents_dir)
    files = document_files(documents_dir, cat.skip)
    staged_names = {Path(p).name for p in staged}
    files = sorted([f for f in files if f.name not in staged_names] + [Path(p) for p in staged])
    return _Folder(cat.infos, lexicon, files)


def _sort_files(
    folder: _Folder, previous: Store | None, reuse_vectors: bool, report: UpdateReport
) -> tuple[list[BuildInput], list[Path]]:
    """Decide what changed: (documents kept from the previous version under their current metadata, files to
    chunk and embed). Kept documents are counted in the report as unchanged or relabelled."""
    from qa.ingest.metadata import METADATA_VERSION

    inputs: list[BuildInput] = []
    to_process: list[Path] = []
    for f in folder.files:
        digest = sha256_file(f)
        prev = previous.manifest.documents.get(f.name) if previous else None
        info = folder.catalog.get(f.name)
        if previous is None or prev is None or not reuse_vectors or prev.sha256 != digest:
            to_process.append(f)
        elif info is None and prev.info.get("guessed"):
            if previous.manifest.metadata_version == METADATA_VERSION:
                inputs.append(_relabelled(previous, f.name, DocumentInfo(**prev.info), digest))
                report.unchanged.append(f.name)
            else:  # inferred by an older version of the metadata reader: infer again
                to_process.append(f)
        elif info is not None:
            inputs.append(_relabelled(previous, f.name, info, digest))
            (report.unchanged if info.to_dict() == prev.info else report.relabelled).append(f.name)
        else:  # a catalog entry was removed: the metadata is inferred from the text again
            to_process.append(f)
    return inputs, to_process


def _chunk_changed(
    to_process: list[Path],
    folder: _Folder,
    spec: IndexSpec,
    previous: Store | None,
    reuse_vectors: bool,
    progress: Progress,
    on_error: Callable[[DocumentError], None] | None,
    report: UpdateReport,
) -> list[BuildInput]:
    """Chunk the new and changed files (not yet embedded), counting each as added or updated; a file that
    cannot be read goes into the report's errors (and to `on_error`) and is left out."""
    from qa.ingest.pipeline import process_document

    inputs: list[BuildInput] = []
    for n, f in enumerate(to_process):
        progress(f"分段 {f.name}", n / max(len(to_process), 1))

        def within(frac: float, n: int = n, name: str = f.name) -> None:
            # a very large file reports its cleaning block by block, so progress never stalls for minutes
            progress(f"分段 {name}（{frac:.0%}）", (n + frac) / max(len(to_process), 1))

        try:
            doc = process_document(
                f, folder.catalog.get(f.name), spec.chunker_settings, chunker=spec.chunker, progress=within
            )
        except DocumentError as exc:
            report.errors.append(str(exc))
            if on_error:
                on_error(exc)
            continue
        inputs.append(BuildInput(doc.info, doc.sha256, doc.passages, doc.original_text))
        was = previous.manifest.documents.get(f.name) if previous else None
        (report.updated if was is not None and reuse_vectors else report.added).append(f.name)
    return inputs


def _count_removed(
    folder: _Folder, previous: Store | None, reuse_vectors: bool, report: UpdateReport
) -> None:
    """Record the documents gone from the folder; in a full rebuild, files indexed before count as updated."""
    names = {f.name for f in folder.files}
    if previous is not None:
        report.removed = sorted(d for d in previous.manifest.documents if d not in names)
        if not reuse_vectors:
            # a full rebuild: everything processed counts as added, except files that were there before
            report.updated = [n for n in report.added if n in previous.manifest.documents]
            report.added = [n for n in report.added if n not in previous.manifest.documents]


def _is_up_to_date(
    previous: Store | None, reuse_vectors: bool, folder: _Folder, report: UpdateReport
) -> bool:
    """True when the live version already holds exactly this folder: nothing needs writing."""
    from qa.index import sentences
    from qa.ingest.metadata import METADATA_VERSION
    from qa.text.english import TABLE_FILE, table_is_current

    return (
        previous is not None
        and reuse_vectors
        and not report.changed
        and not report.relabelled
        and previous.manifest.lexicon == folder.lexicon
        and previous.manifest.metadata_version == METADATA_VERSION
        and table_is_current(previous.extra_file(TABLE_FILE))
        and sentences.table_is_current(
            previous.extra_file(sentences.SENTENCE_FILE), previous.manifest.model_fingerprint
        )
    )


def _embed_new(
    inputs: list[BuildInput],
    previous: Store | None,
    reuse_vectors: bool,
    lazy: LazyEncoder,
    settings: Settings,
    progress: Progress,
    report: UpdateReport,
    timings: dict[str, float],
) -> tuple[list[BuildInput], ModelRecord]:
    """Give every document without vectors its vectors; returns the documents and the model they came from.

    When the model's weights changed since the previous version, nothing is reused: every document is
    embedded again (the returned list then holds new BuildInputs)."""
    new_texts = [p.embed_text for d in inputs if d.vectors is None for p in d.passages]
    if not new_texts:
        report.passages_embedded = 0
        return inputs, _model_record(settings, previous, lazy)
    enc = lazy.get()
    timings["model_load"] = lazy.load_seconds
    if previous is not None and reuse_vectors and previous.manifest.model_fingerprint != enc.fingerprint:
        # Same model name, different weights (e.g. a local model directory changed): never mix.
        report.full_rebuild_reason = "嵌入模型的权重变了，将完整重建索引"
        inputs = [BuildInput(d.info, d.sha256, d.passages, d.original_text) for d in inputs]
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
    report.passages_embedded = embedded
    return inputs, ModelRecord(settings.model, enc.model_id, enc.fingerprint, enc.dim)


def _model_record(settings: Settings, previous: Store | None, lazy: LazyEncoder) -> ModelRecord:
    """The model of a version that embeds nothing new: the previous version's, or the encoder's for a first one."""
    if previous is not None:
        m = previous.manifest
        return ModelRecord(settings.model, m.model_id, m.model_fingerprint, m.dim)
    enc = lazy.get()
    return ModelRecord(settings.model, enc.model_id, enc.fingerprint, enc.dim)


def _english_table(
    inputs: list[BuildInput],
    folder: _Folder,
    previous: Store | None,
    progress: Progress,
    timings: dict[str, float],
) -> dict[str, bytes]:
    """The version's extra files: the English dictionary table, or none when it cannot be made (said via
    `progress`)."""
    from qa.text.english import TABLE_FILE, dictionary_table_for
    from qa.text.lexicon import genre_lexicon

    t = time.perf_counter()
    extra: dict[str, bytes] = {}
    try:
        # English questions are read with CC-CEDICT restricted to this corpus's words (qa.text.english)
        extra[TABLE_FILE] = dictionary_table_for(
            (p.embed_text for d in inputs for p in d.passages),
            genre_lexicon().extended(folder.lexicon, "the corpus lexicon"),
            previous.extra_file(TABLE_FILE) if previous is not None else None,
        )
    except QAError as exc:
        progress(f"{exc} English questions are read with the domain phrases only.", None)
    timings["english"] = time.perf_counter() - t
    return extra


def _sentence_table(
    inputs: list[BuildInput],
    model: ModelRecord,
    previous: Store | None,
    lazy: LazyEncoder,
    settings: Settings,
    progress: Progress,
    report: UpdateReport,
    timings: dict[str, float],
) -> dict[str, bytes]:
    """The version's sentence vectors (qa.index.sentences): the previous version's where it has them, the
    embedding cache's, and the rest embedded with the index's model."""
    from qa.index.sentences import SENTENCE_FILE, build_table

    t = time.perf_counter()

    def embed(texts: list[str]) -> np.ndarray:
        enc = lazy.get()
        timings.setdefault("model_load", lazy.load_seconds)
        if enc.fingerprint != model.fingerprint:
            # the passages were all reused from a version made with other weights of the same model name
            raise IndexProblem(
                f"The embedding model's weights differ from the ones the index's passages were made with "
                f"({enc.fingerprint[:12]} vs {model.fingerprint[:12]}); rebuild with `qa index --force`."
            )
        cache = EmbeddingCache(settings.resolved_cache_dir() / "embeddings.sqlite")
        try:
            vecs, report.sentences_embedded = embed_passages(
                enc, texts, cache, settings.embed_batch_size, progress, ("句子", "句")
            )
        finally:
            cache.close()
        return vecs

    table, _ = build_table(
        (p.text for d in inputs for p in d.passages),
        model.fingerprint,
        previous.extra_file(SENTENCE_FILE) if previous is not None else None,
        embed,
    )
    timings["sentences"] = time.perf_counter() - t
    return {SENTENCE_FILE: table.to_bytes()}


def _write_version(
    target: Target,
    inputs: list[BuildInput],
    model: ModelRecord,
    spec: IndexSpec,
    folder: _Folder,
    t_start: float,
    timings: dict[str, float],
    progress: Progress,
    extra: dict[str, bytes],
) -> int:
    """Write the new version through the store target and make it live; returns its number of passages."""
    from qa.ingest.metadata import METADATA_VERSION

    t = time.perf_counter()
    vectors = (
        np.concatenate([d.vectors for d in inputs if d.vectors is not None], axis=0)
        if inputs
        else np.zeros((0, model.dim), np.float32)
    )
    record = VersionRecord(
        model=model,
        chunker=spec.chunker_record,
        chunker_fingerprint=spec.chunker_fingerprint,
        faiss_index=spec.faiss_index,
        lexicon=folder.lexicon,
        metadata_version=METADATA_VERSION,
        build_seconds=time.perf_counter() - t_start,
        timings=timings,
    )
    target.write(inputs, vectors, record, progress=progress, extra_files=extra)
    timings["write"] = time.perf_counter() - t
    return int(vectors.shape[0])


def _commit_staged(staged: Sequence[Path], documents_dir: Path, report: UpdateReport) -> None:
    """Move the staged files the live version holds into the documents folder (under the writer lock)."""
    failed = {e.split(":", 1)[0] for e in report.errors}
    for p in staged:
        p = Path(p)
        if p.name not in failed and p.exists():
            os.replace(p, documents_dir / p.name)
