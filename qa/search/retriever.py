"""The retriever other apps embed: it only wires the stages of qa.search together.

understand -> first stage (dense ∪ lexical, fused, with features) -> rerank -> answer line -> abstain.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from qa.config import Settings, load_settings
from qa.errors import IndexProblem, QAError
from qa.hashing import sha256_bytes
from qa.index.backend import StaleVersion, Store, Target
from qa.index.builder import UpdateReport, update_index
from qa.index.factory import open_target
from qa.index.kb import DEFAULT_KB, resolve_kb
from qa.index.writer import Progress
from qa.ingest.catalog import entry_from_info, read_catalog, set_entry
from qa.ingest.uploads import (
    UploadRefused,
    append_audit,
    audit_record,
    check_upload,
    corpus_changes,
    free_name,
    safe_filename,
    stage_file,
    staging,
)
from qa.search.abstain import answer_probability, decide, reply_text
from qa.search.answer import AnswerModel, compose
from qa.search.candidates import QueryEncoder, first_stage, question_vector
from qa.search.corpus import CorpusView
from qa.search.features import Candidate
from qa.search.rerank import Reranker, load_reranker
from qa.search.understand import understand
from qa.types import Answer, DocumentInfo, Hit, Query

NO_RERANKER = ("", "none", "off")
T = TypeVar("T")


class NoSuchDocument(QAError):
    """A document name the knowledge base does not have (HTTP 404)."""


log = logging.getLogger("qa.retriever")


def _unwritable(index_dir: Path, documents_dir: Path, exc: OSError) -> IndexProblem:
    """The one sentence for a change that could not be written (read-only or full folder, permissions)."""
    where = exc.filename or index_dir
    why = exc.strerror or str(exc)
    return IndexProblem(
        f"The corpus cannot be changed because {where} cannot be written ({why}); the index in use "
        f"still answers, so make {index_dir} and {documents_dir} writable and try again."
    )


@dataclass
class DocumentSummary:
    """An indexed document and how many passages it has."""

    info: DocumentInfo
    passages: int


@dataclass
class SourceContext:
    """Lines of the original file around a passage."""

    doc: str
    title: str
    start_line: int
    end_line: int
    text: str
    passage_start_line: int
    passage_end_line: int


class Retriever:
    """Open an index and answer questions with cited passages. Safe for concurrent readers."""

    def __init__(
        self,
        index_dir: str | Path,
        settings: Settings,
        documents_dir: str | Path | None = None,
        encoder: Any | None = None,
        *,
        store: Store | None = None,
        kb: str = DEFAULT_KB,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.settings = settings
        self.kb = kb
        self.documents_dir = Path(documents_dir) if documents_dir else Path(settings.documents_dir)
        # a given store (a benchmark's in-memory corpus) is served as it is, without version checks
        self._target: Target | None = None if store is not None else open_target(settings, self.index_dir, kb)
        self._view = CorpusView(store if store is not None else self._open_store())
        self._checked_at = time.monotonic()
        self._refresh_lock = threading.Lock()
        # an already loaded encoder (another retriever's, a test's) can be shared; it is checked on first use
        self._encoder = QueryEncoder(settings, encoder)
        self._write_lock = threading.Lock()
        self._rerankers: dict[str, Reranker | None] = {}
        self._rerankers_lock = threading.Lock()
        self._answer_model = AnswerModel.load(settings.answer_weights or None)

    # ---- opening and updating ---------------------------------------------------------
    @classmethod
    def open(
        cls,
        index_dir: str | Path = "index",
        settings: Settings | None = None,
        *,
        documents_dir: str | Path | None = None,
        build: bool = False,
        progress: Progress | None = None,
        encoder: Any | None = None,
        kb: str | None = None,
    ) -> Retriever:
        """Open an index; with build=True (or no index yet and a documents folder) build/update it first.

        `encoder`: an embedding model already loaded (it must be the one the index was built with).
        `kb`: a knowledge base by name (qa.index.kb; `qa index --kb NAME --documents DIR` creates one): its
        documents folder and index replace `documents_dir` and `index_dir`.
        """
        settings = settings or load_settings()
        index_dir = Path(index_dir)
        name = DEFAULT_KB
        if kb is not None and kb != DEFAULT_KB:
            base = resolve_kb(settings, kb)
            name, index_dir, documents_dir = base.name, base.index_dir, documents_dir or base.documents_dir
        live = open_target(settings, index_dir, name).live_version()
        if build or (documents_dir is not None and live is None):
            docs = Path(documents_dir or settings.documents_dir)
            report = update_index(docs, index_dir, settings, encoder=encoder, progress=progress, kb=name)
            if progress:
                progress(report.summary(), 1.0)
                for err in report.errors:
                    progress(f"无法读取：{err}", None)
        return cls(index_dir, settings, documents_dir, encoder, kb=name)

    @classmethod
    def from_store(cls, store: Store, settings: Settings, encoder: Any | None = None) -> Retriever:
        """A retriever over an index version already in memory (a benchmark's synthetic corpus, say)."""
        path = getattr(store, "path", None)
        return cls(
            path.parent if path is not None else settings.index_dir, settings, None, encoder, store=store
        )

    # ---- the live version ---------------------------------------------------------------
    def _open_store(self) -> Store:
        assert self._target is not None
        return self._target.open()

    def _refresh(self, force: bool = False) -> CorpusView:
        """The view to serve: reopened when the index's live version changed (another worker or process
        wrote one), checked at most every `version_check_seconds`; requests meanwhile keep the old one."""
        view = self._view
        if self._target is None:
            return view
        now = time.monotonic()
        if not force and now - self._checked_at < self.settings.version_check_seconds:
            return view
        # one thread reopens; the others go on with the version they have instead of queueing behind it
        if not self._refresh_lock.acquire(blocking=force):
            return view
        try:
            self._checked_at = time.monotonic()
            live = self._target.live_version()
            if live is not None and live != self._view.store.version:
                fresh = CorpusView(self._open_store())
                _ = fresh.stated_years  # read every source text now, not in the next visitor's question
                self._view = fresh
        finally:
            self._refresh_lock.release()
        return self._view

    def _answering(self, fn: Callable[[CorpusView], T]) -> T:
        """fn(view) on the current version; once more on the new one if the version vanished meanwhile."""
        try:
            return fn(self._refresh())
        except StaleVersion:
            return fn(self._refresh(force=True))

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The index's writer lock (other worker processes wait), or nothing for a store given in memory.
        A lock that cannot be taken because the index folder is not writable is IndexProblem's one sentence."""
        if self._target is None:
            yield
            return
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self._target.lock())
            except OSError as exc:
                raise _unwritable(self.index_dir, self.documents_dir, exc) from exc
            yield

    def update(
        self,
        progress: Progress | None = None,
        *,
        remove: Sequence[str] = (),
        actor: str = "library",
        via: str = "update",
        client: str = "",
    ) -> UpdateReport:
        """Re-sync the index with the documents folder; readers keep the old index until the swap.

        `remove`: documents to take out of the folder and the index first (a delete). Every change is
        recorded in the index folder's audit log with `actor`, `via` and `client`. A folder that cannot
        be written raises IndexProblem with one sentence; the index in use stays as it was.
        """
        if remove:
            report = UpdateReport()
            for name in remove:
                done = self.remove_document(name, progress, actor=actor, via=via, client=client)
                report.removed.extend(done.removed)
                report.errors.extend(done.errors)
            return report
        with self._write_lock, self._writing():
            self._refresh(force=True)
            before = self._doc_hashes()
            try:
                report = self._update_locked(progress)
            except OSError as exc:
                raise _unwritable(self.index_dir, self.documents_dir, exc) from exc
            self._audit(before, actor=actor, via=via, client=client)
            return report

    def correct(
        self,
        file: str,
        changes: dict[str, Any],
        *,
        actor: str = "library",
        via: str = "correct",
        client: str = "",
    ) -> tuple[DocumentInfo, UpdateReport]:
        """Write a user's correction of a document's metadata into its catalog entry and apply it.

        Only the metadata is rewritten (no re-chunking, no re-embedding); questions are routed by the
        corrected years from the next question on. QAError with one sentence for an unknown file or a
        value the catalog refuses. Recorded in the audit log as a "correct" action.
        """
        if file not in self._view.store.manifest.documents:
            raise QAError(f"没有名为 {file[:80]} 的文档；文件名见 GET /api/documents 或 `qa documents`。")
        with self._write_lock, self._writing():
            self._refresh(force=True)
            if file not in read_catalog(self.documents_dir).infos:
                # a document read without a catalog entry: its entry starts from what was inferred
                current = self._view.info(file)
                if current is not None:
                    changes = {
                        **entry_from_info(current),
                        **{k: v for k, v in changes.items() if v is not None},
                    }
            try:
                info = set_entry(self.documents_dir, file, changes)
                report = self._update_locked(None)
            except OSError as exc:
                raise _unwritable(self.index_dir, self.documents_dir, exc) from exc
            fields = ", ".join(sorted(k for k, v in changes.items() if v is not None))
            record = audit_record(
                "correct",
                file,
                self._view.store.manifest.documents[file].sha256,
                actor=actor,
                via=via,
                client=client,
                fields=fields,
                index_version=self._view.store.version,
            )
            try:
                append_audit(self.index_dir, [record])
            except OSError as exc:
                log.error("could not write the audit log in %s: %s; change: %s", self.index_dir, exc, record)
            return info, report

    def _update_locked(self, progress: Progress | None, staged: Sequence[Path] = ()) -> UpdateReport:
        """update() for a caller that already holds self._write_lock."""
        report = update_index(
            self.documents_dir,
            self.index_dir,
            self.settings,
            encoder=self._encoder.loaded,
            progress=progress,
            staged=staged,
            kb=self.kb,
        )
        if report.written and self._target is not None:
            self._refresh(force=True)
        return report

    def _doc_hashes(self) -> dict[str, str]:
        return {name: e.sha256 for name, e in self._view.store.manifest.documents.items()}

    def _audit(self, before: dict[str, str], **who: str) -> None:
        records = corpus_changes(before, self._doc_hashes(), **who, index_version=self._view.store.version)
        try:
            append_audit(self.index_dir, records)
        except OSError as exc:  # the change is made and live; say so loudly, but do not undo it
            log.error("could not write the audit log in %s: %s; changes: %s", self.index_dir, exc, records)

    def add_upload(
        self,
        filename: str,
        data: bytes,
        progress: Progress | None = None,
        *,
        replace: bool = False,
        actor: str = "library",
        via: str = "upload",
        client: str = "",
    ) -> UpdateReport:
        """Check, stage, index and only then commit one uploaded file into the documents folder.

        The file is written into ``documents/.staging/…``, indexed from there, and moved into the
        documents folder by the build that makes the new index version live; a file that cannot be
        indexed never enters it. `replace=True` puts it in place of the document of the same name (its
        passages are re-made; NoSuchDocument when there is none). The change is recorded in the audit
        log (`actor`, `via`, `client`).
        """
        report = UpdateReport()
        try:
            name = check_upload(filename, data, self.settings.max_upload_mb)
        except UploadRefused as exc:
            report.errors.append(str(exc))
            return report
        digest = sha256_bytes(data)
        # one upload at a time: the duplicate check, the choice of a free name and the indexing belong
        # together, across threads and across worker processes (the index's writer lock)
        with self._write_lock, self._writing():
            self._refresh(force=True)  # another worker may have written a version since this one looked
            before = self._doc_hashes()
            for entry_name, sha in before.items():
                if sha == digest:
                    report.errors.append(f"{name}: 内容与已索引的 {entry_name} 相同，未重复添加。")
                    report.duplicates.append(name)
                    return report
            if replace:
                if not (self.documents_dir / name).is_file():
                    raise NoSuchDocument(f"没有名为 {name} 的文档可替换；用 qa documents 查看已索引的文档。")
                try:
                    report = self._replace_locked(name, data, progress)
                except OSError as exc:
                    raise _unwritable(self.index_dir, self.documents_dir, exc) from exc
                self._audit(before, actor=actor, via=via, client=client)
                return report
            skip = read_catalog(self.documents_dir).skip if self.documents_dir.is_dir() else set()
            if name in skip:  # the catalog says to skip this name: it would never be indexed
                name = f"{Path(name).stem}-upload{Path(name).suffix}"
            name = free_name(self.documents_dir, name, taken=[*before, *skip])
            try:
                with staging(self.documents_dir) as folder:
                    staged = stage_file(folder, name, data)
                    report = self._update_locked(progress, staged=[staged])
            except OSError as exc:
                raise _unwritable(self.index_dir, self.documents_dir, exc) from exc
            self._audit(before, actor=actor, via=via, client=client)
            return report

    def _replace_locked(self, name: str, data: bytes, progress: Progress | None) -> UpdateReport:
        """Stage new bytes for a document and re-index: like an upload, they replace the file in the
        documents folder only once the version holding them is live. Bytes that cannot be read leave the
        file as it was, and the index is brought back to it."""
        with staging(self.documents_dir) as folder:
            staged = stage_file(folder, name, data)
            result = self._update_locked(progress, staged=[staged])
        if name in {e.split(":")[0] for e in result.errors}:
            self._update_locked(None)  # the version built without the unreadable bytes lacks the document
        return result

    def remove_document(
        self,
        name: str,
        progress: Progress | None = None,
        *,
        actor: str = "library",
        via: str = "delete",
        client: str = "",
    ) -> UpdateReport:
        """Take a document out of the corpus: its file leaves the documents folder and a new index version
        without its passages goes live. NoSuchDocument (a QAError) when no document has that name.

        The file is first renamed to a hidden name (which no build reads), so a build killed midway
        can never bring it back; on a failed build it is put back and the error raised."""
        with self._write_lock, self._writing():
            view = self._refresh(force=True)
            before = self._doc_hashes()
            if safe_filename(name) != name or name.startswith("."):
                raise NoSuchDocument(
                    f"没有名为 {name[:80]} 的文档（这不是一个文档名）；文件名见 GET /api/documents 或 `qa documents`。"
                )
            path = self.documents_dir / name
            if name not in view.store.manifest.documents and not path.is_file():
                raise NoSuchDocument(
                    f"没有名为 {name} 的文档；文件名见 GET /api/documents 或 `qa documents`。"
                )
            # a removal killed after its rename left its file hidden; under the lock none is in flight
            for stale in self.documents_dir.glob(".removing-*"):
                stale.unlink(missing_ok=True)
            staged = self.documents_dir / f".removing-{name}"
            try:
                if path.is_file():
                    os.replace(path, staged)
                report = self._update_locked(progress)
            except OSError as exc:
                if staged.exists() and not path.exists():
                    os.replace(staged, path)
                raise _unwritable(self.index_dir, self.documents_dir, exc) from exc
            except BaseException:
                if staged.exists() and not path.exists():
                    os.replace(staged, path)
                raise
            staged.unlink(missing_ok=True)
            self._audit(before, actor=actor, via=via, client=client)
            return report

    # ---- reading ----------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The index version currently served."""
        return self._refresh().store

    @property
    def loaded_encoder(self) -> Any | None:
        """The query encoder if a question has loaded it (other knowledge bases of the same model share it)."""
        return self._encoder.loaded

    @property
    def corpus(self) -> CorpusView:
        """The index version currently served, as the query side sees it (catalog, lexicon, idf)."""
        return self._refresh()

    def documents(self) -> list[DocumentSummary]:
        """Indexed documents with passage counts."""
        return [DocumentSummary(info, n) for info, n in self._refresh().store.document_infos()]

    def context(self, passage_id: str, radius_lines: int = 3) -> SourceContext:
        """The original file's lines around a passage (for 'show the source')."""
        return self._answering(lambda view: self._context(view, passage_id, radius_lines))

    def _context(self, view: CorpusView, passage_id: str, radius_lines: int) -> SourceContext:
        store = view.store
        row = store.row_of(passage_id)
        if row is None:
            raise QAError(f"没有编号为 {passage_id} 的段落。")
        p = store.passage(row)
        lines = store.source_text(p.doc).splitlines()
        a = max(1, p.span.start_line - radius_lines)
        b = min(len(lines), p.span.end_line + radius_lines)
        return SourceContext(
            p.doc, p.title, a, b, "\n".join(lines[a - 1 : b]), p.span.start_line, p.span.end_line
        )

    def understand(self, question: str, history: Sequence[str] = (), filters: dict | None = None) -> Query:
        """How the question is read: years, routing, filters, search terms, follow-up rewriting."""
        return self._understand(self._refresh(), question, history, filters)[0]

    def _understand(
        self, view: CorpusView, question: str, history: Sequence[str], filters: dict | None
    ) -> tuple[Query, list]:
        return understand(
            question,
            view.catalog,
            history,
            filters,
            self.settings.max_question_chars,
            view.stated_years,
            view.lexicon,
        )

    def reranker(self, rerank: bool | None = None) -> Reranker | None:
        """The reranker a call uses: the configured one, or none when `rerank` is False."""
        name = self.settings.reranker
        if rerank is False or (rerank is None and name in NO_RERANKER):
            return None
        if name in NO_RERANKER:  # rerank=True with reranking configured off: the default reranker
            name = "default"
        with self._rerankers_lock:
            if name not in self._rerankers:
                self._rerankers[name] = load_reranker(name, self.settings.reranker_weights)
            return self._rerankers[name]

    def question_vector(self, query: Query) -> np.ndarray | None:
        """A question's embedding as the first stage and the answer line use it (None when the retrieval
        mode uses no vectors); for callers that rebuild the answer line themselves (qa.eval.calibrate)."""
        return self._answering(lambda view: question_vector(view, query, self.settings, self._encoder, {}))

    def candidates(self, question: str, k: int = 10, filters: dict | None = None) -> list[Candidate]:
        """The first stage alone: candidates with their features, in first-stage order (Candidate.score)."""

        def run(view: CorpusView) -> list[Candidate]:
            query, routes = self._understand(view, question, (), filters)
            return first_stage(view, query, routes, k, self.settings, self._encoder, {})

        return self._answering(run)

    def search(
        self, question: str, k: int = 5, filters: dict | None = None, rerank: bool | None = None
    ) -> list[Hit]:
        """The k best passages for a question."""
        return self.ask(question, k=k, filters=filters, rerank=rerank).hits

    def ask(
        self,
        question: str,
        k: int = 5,
        filters: dict | None = None,
        rerank: bool | None = None,
        history: Sequence[str] = (),
    ) -> Answer:
        """Answer a question: a short verbatim answer line with [n] markers and the cited passages."""
        if not 1 <= int(k) <= 100:
            raise QAError("k 必须在 1 到 100 之间。")
        # one index version for the whole question, even if an update swaps it meanwhile
        return self._answering(lambda view: self._ask(view, question, k, filters, rerank, history))

    def _ask(
        self,
        view: CorpusView,
        question: str,
        k: int,
        filters: dict | None,
        rerank: bool | None,
        history: Sequence[str],
    ) -> Answer:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        query, routes = self._understand(view, question, history, filters)
        timings["understand"] = time.perf_counter() - t0
        question = question.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be encoded
        if sum(1 for ch in query.normalized if ch.isalnum()) < 2:
            return Answer(question, query, "请用文字提问，例如：2023年郑州GDP是多少？", [], True, timings)
        qvec = question_vector(view, query, self.settings, self._encoder, timings)
        cands = first_stage(view, query, routes, k, self.settings, self._encoder, timings, qvec)
        t = time.perf_counter()
        reranker = self.reranker(rerank)
        if reranker is not None and cands:
            for c, sc in zip(cands, reranker.score(query.text, cands).tolist(), strict=True):
                c.score = sc
            cands.sort(key=lambda c: -c.score)
        timings["rerank"] = time.perf_counter() - t
        hits = [
            Hit(
                passage=c.passage,
                score=float(c.score),
                rank=i + 1,
                signals={kk: round(v, 4) for kk, v in c.features.items()},
            )
            for i, c in enumerate(cands[:k])
        ]
        t = time.perf_counter()
        top = cands[0] if cands else None
        p = answer_probability(top, reranker) if top is not None else None
        line = compose(query, hits, view, self._answer_model, p, qvec=qvec) if hits else None
        verdict = decide(query, top, reranker, view, line, self._answer_model)
        text = reply_text(query, line, verdict)
        timings["answer"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        conf = line.confidence if line is not None else None
        return Answer(question, query, text, hits, verdict.refuse, timings, verdict.unsure, conf)
