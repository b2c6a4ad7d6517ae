"""The retriever other apps embed: hybrid candidates (dense ∪ BM25), reranking, cited answers."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer import abstain_text, answer_line, asked_unit_pattern, asks_quantity
from qa.config import Settings, load_settings
from qa.errors import IndexProblem, QAError
from qa.indexer import UpdateReport, update_index
from qa.ingest import NOT_DOCUMENTS
from qa.ingest.loaders import SUPPORTED_SUFFIXES as DOCUMENT_SUFFIXES
from qa.rerank import Candidate, FeatureReranker, Reranker, load_reranker
from qa.store import IndexStore, Progress, sha256_bytes
from qa.text import (
    DESIGNATORS,
    SYNONYMS,
    char_bigrams,
    expand_terms,
    normalize,
    numbers,
    term_weight,
    tokenize,
)
from qa.types import Answer, DocumentInfo, Hit, Query
from qa.understand import Route, filter_docs, understand


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


@dataclass
class _Prepared:
    """Per-index-version caches used by the reranker features."""

    store: IndexStore
    idf: dict[str, float]
    catalog: list[DocumentInfo]
    kinds: dict[str, str]
    years: frozenset[int]  # years the text states figures for (2015年 table columns), not just compares to


class Retriever:
    """Open an index and answer questions with cited passages. Safe for concurrent readers."""

    def __init__(
        self, index_dir: str | Path, settings: Settings, documents_dir: str | Path | None = None
    ) -> None:
        self.index_dir = Path(index_dir)
        self.settings = settings
        self.documents_dir = Path(documents_dir) if documents_dir else Path(settings.documents_dir)
        self._prep = self._prepare(IndexStore.open(self.index_dir))
        self._encoder: Any = None
        self._encoder_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._rerankers: dict[str, Reranker | None] = {}

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
    ) -> Retriever:
        """Open an index; with build=True (or no index yet and a documents folder) build/update it first."""
        settings = settings or load_settings()
        index_dir = Path(index_dir)
        if build or (documents_dir is not None and not (index_dir / "CURRENT").exists()):
            docs = Path(documents_dir or settings.documents_dir)
            report = update_index(docs, index_dir, settings, progress=progress)
            if progress:
                progress(report.summary(), 1.0)
                for err in report.errors:
                    progress(f"无法读取：{err}", None)
        return cls(index_dir, settings, documents_dir)

    @staticmethod
    def _prepare(store: IndexStore) -> _Prepared:
        catalog = [info for info, _ in store.document_infos()]
        return _Prepared(
            store, _idf_table(store), catalog, {i.file: i.kind for i in catalog}, _stated_years(store)
        )

    def update(self, progress: Progress | None = None) -> UpdateReport:
        """Re-sync the index with the documents folder; readers keep the old index until the swap."""
        with self._write_lock:
            return self._update_locked(progress)

    def _update_locked(self, progress: Progress | None) -> UpdateReport:
        """update() for a caller that already holds self._write_lock."""
        report = update_index(
            self.documents_dir, self.index_dir, self.settings, encoder=self._encoder, progress=progress
        )
        if report.written:
            self._prep = self._prepare(IndexStore.open(self.index_dir))
        return report

    def add_upload(self, filename: str, data: bytes, progress: Progress | None = None) -> UpdateReport:
        """Validate, save into the documents folder and index one uploaded file."""
        report = UpdateReport()
        name = safe_filename(filename)
        if not name:
            report.errors.append(f"{filename}: 文件名无效，请改名后再上传。")
            return report
        suffix = Path(name).suffix.lower()
        if suffix not in DOCUMENT_SUFFIXES:
            report.errors.append(
                f"{name}: 不支持的文件类型 {suffix or '(无后缀)'}；可上传 {' '.join(DOCUMENT_SUFFIXES)}。"
            )
            return report
        limit = self.settings.max_upload_mb * 1024 * 1024
        if len(data) > limit:
            report.errors.append(
                f"{name}: 文件太大（{len(data) / 1e6:.1f} MB），上限 {self.settings.max_upload_mb} MB。"
            )
            return report
        if not data.strip():
            report.errors.append(f"{name}: 文件是空的。")
            return report
        if name.lower() in NOT_DOCUMENTS:
            # a name the documents folder reserves for notes (README.md) would never be indexed
            name = f"{Path(name).stem}-upload{suffix}"
        digest = sha256_bytes(data)
        # one upload at a time: the duplicate check, the choice of a free name and the indexing belong together
        with self._write_lock:
            for entry_name, entry in self._prep.store.manifest.documents.items():
                if entry.sha256 == digest:
                    report.errors.append(f"{name}: 内容与已索引的 {entry_name} 相同，未重复添加。")
                    report.duplicates.append(name)
                    return report
            self.documents_dir.mkdir(parents=True, exist_ok=True)
            target = self.documents_dir / name
            stem, n = target.stem, 1
            while target.exists():
                n += 1
                target = self.documents_dir / f"{stem}-{n}{suffix}"
            tmp = target.with_name(f".upload-{target.name}")
            tmp.write_bytes(data)
            tmp.replace(target)
            try:
                result = self._update_locked(progress)
            except BaseException:
                target.unlink(missing_ok=True)  # never leave an unindexed upload behind
                raise
            if target.name in {e.split(":")[0] for e in result.errors}:
                target.unlink(missing_ok=True)
            return result

    # ---- reading ----------------------------------------------------------------------
    @property
    def store(self) -> IndexStore:
        """The index version currently served."""
        return self._prep.store

    def documents(self) -> list[DocumentSummary]:
        """Indexed documents with passage counts."""
        return [DocumentSummary(info, n) for info, n in self._prep.store.document_infos()]

    def context(self, passage_id: str, radius_lines: int = 3) -> SourceContext:
        """The original file's lines around a passage (for 'show the source')."""
        store = self._prep.store
        row = store.by_id.get(passage_id)
        if row is None:
            raise QAError(f"没有编号为 {passage_id} 的段落。")
        p = store.passages[row]
        lines = store.source_text(p.doc).splitlines()
        a = max(1, p.span.start_line - radius_lines)
        b = min(len(lines), p.span.end_line + radius_lines)
        return SourceContext(
            p.doc, p.title, a, b, "\n".join(lines[a - 1 : b]), p.span.start_line, p.span.end_line
        )

    def understand(self, question: str, history: Sequence[str] = (), filters: dict | None = None) -> Query:
        """How the question is read: years, routing, filters, follow-up rewriting."""
        q, _, _ = understand(
            question, self._prep.catalog, history, filters, self.settings.max_question_chars, self._prep.years
        )
        return q

    def _encoder_for_queries(self) -> Any:
        if self._encoder is None:
            with self._encoder_lock:
                if self._encoder is None:
                    from qa.encoders import load_encoder

                    enc = load_encoder(self.settings)
                    m = self._prep.store.manifest
                    if enc.fingerprint != m.model_fingerprint:
                        built = (
                            f"another build of model {m.model_id}"
                            if m.model_id == enc.model_id
                            else f"model {m.model_id}, but the settings name {enc.model_id}"
                        )
                        raise IndexProblem(
                            f"The index was built with {built}; "
                            f"run `qa index --force` to rebuild it with this model, or set the model back."
                        )
                    self._encoder = enc
        return self._encoder

    def _reranker(self, name: str) -> Reranker | None:
        if name not in self._rerankers:
            self._rerankers[name] = load_reranker(name)
        return self._rerankers[name]

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
        prep = self._prep  # one index version for the whole question, even if an update swaps it
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        query, routes, want = understand(
            question, prep.catalog, history, filters, self.settings.max_question_chars, prep.years
        )
        timings["understand"] = time.perf_counter() - t0
        question = question.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be encoded
        if sum(1 for ch in query.normalized if ch.isalnum()) < 2:
            return Answer(question, query, "请用文字提问，例如：2023年郑州GDP是多少？", [], True, timings)
        hits, top_prob, terms = self._rank(prep, query, routes, k, rerank, timings)
        t = time.perf_counter()
        text = answer_line(query, hits, terms, prep.idf) if hits else ""
        abstained = self._should_abstain(query, hits, top_prob, terms, prep)
        if abstained:
            text = abstain_text(query)
        timings["answer"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        return Answer(question, query, text, hits, abstained, timings)

    # ---- the pipeline -----------------------------------------------------------------
    def candidates(
        self, prep: _Prepared, query: Query, routes: list[Route], k: int, timings: dict[str, float]
    ) -> tuple[list[Candidate], list[str]]:
        """First stage: dense top-N ∪ BM25 top-N (plus the best of the routed reports), with features."""
        s = self.settings
        store = prep.store
        n_cand = max(s.candidates, k)
        allowed = filter_docs(query.filters, prep.catalog)
        if s.routing == "filter" and routes and allowed is None:
            allowed = {r.doc for r in routes if r.weight >= 0.5} or None
        rows_allowed = None
        if allowed is not None:
            parts = [store.doc_rows[d] for d in sorted(allowed) if d in store.doc_rows]
            rows_allowed = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        terms = search_terms(query)
        lex_terms = _dedupe([*terms, *expand_terms(terms)])
        mode = s.retrieval_mode

        dense_rank: dict[int, int] = {}
        dense_sim: dict[int, float] = {}
        qvec = None
        if mode in ("hybrid", "dense"):
            t = time.perf_counter()
            enc = self._encoder_for_queries()
            qvec = enc.encode_queries([_dense_text(query.text)])[0]
            timings["embed"] = time.perf_counter() - t
            t = time.perf_counter()
            ids, sims = store.dense_search(qvec, n_cand, rows_allowed)
            for r, (i, sim) in enumerate(zip(ids.tolist(), sims.tolist(), strict=True)):
                dense_rank[i] = r
                dense_sim[i] = sim
            if s.routing == "prior" and routes and rows_allowed is None:
                routed = [
                    store.doc_rows[r.doc] for r in routes if r.weight >= 0.5 and r.doc in store.doc_rows
                ]
                if routed:
                    ids2, sims2 = store.dense_search(qvec, 20, np.concatenate(routed))
                    for i, sim in zip(ids2.tolist(), sims2.tolist(), strict=True):
                        dense_sim.setdefault(i, sim)
            timings["dense"] = time.perf_counter() - t

        lex_rank: dict[int, int] = {}
        bm25_all = None
        if mode in ("hybrid", "lexical"):
            t = time.perf_counter()
            bm25_all = store.lexical.scores(lex_terms)
            if rows_allowed is not None:
                mask = np.full(bm25_all.shape[0], -np.inf, dtype=np.float32)
                mask[rows_allowed] = bm25_all[rows_allowed]
                scores = mask
            else:
                scores = bm25_all
            top = _top_positive(scores, n_cand)
            lex_rank = {int(i): r for r, i in enumerate(top)}
            if s.routing == "prior" and routes and rows_allowed is None:
                routed = [
                    store.doc_rows[r.doc] for r in routes if r.weight >= 0.5 and r.doc in store.doc_rows
                ]
                if routed:
                    rr = np.concatenate(routed)
                    sub = rr[_top_positive(bm25_all[rr], 20)]
                    for i in sub.tolist():
                        lex_rank.setdefault(int(i), n_cand)
            timings["lexical"] = time.perf_counter() - t

        t = time.perf_counter()
        cand_rows = list(dict.fromkeys([*dense_rank, *lex_rank, *dense_sim]))
        if not cand_rows:
            timings["fusion"] = time.perf_counter() - t
            return [], terms
        rrf_k = s.rrf_k
        miss = n_cand + rrf_k
        cands: list[Candidate] = []
        for row in cand_rows:
            p = store.passages[row]
            rrf = 0.0
            if mode in ("hybrid", "dense"):
                rrf += 1.0 / (rrf_k + dense_rank.get(row, miss))
            if mode in ("hybrid", "lexical"):
                rrf += 1.0 / (rrf_k + lex_rank.get(row, miss))
            if qvec is not None and row not in dense_sim:
                dense_sim[row] = float(np.dot(store.vectors[row], qvec))
            cands.append(
                Candidate(
                    row=row,
                    text=p.text,
                    section=p.section_path,
                    doc=p.doc,
                    dense=dense_sim.get(row, 0.0),
                    bm25=float(bm25_all[row]) if bm25_all is not None else 0.0,
                    rrf=rrf,
                )
            )
        for c in cands:
            c.score = c.rrf
        add_features(
            query, terms, prep, cands, {r.doc: r.weight for r in routes}, s.routing, routes, query.intent
        )
        timings["fusion"] = time.perf_counter() - t
        return cands, terms

    def _rank(
        self,
        prep: _Prepared,
        query: Query,
        routes: list[Route],
        k: int,
        rerank: bool | None,
        timings: dict[str, float],
    ) -> tuple[list[Hit], float, list[str]]:
        s = self.settings
        route_w = {r.doc: r.weight for r in routes}
        cands, terms = self.candidates(prep, query, routes, k, timings)
        if not cands:
            return [], 0.0, terms
        t = time.perf_counter()
        use_rerank = s.reranker not in ("none", "off", "") if rerank is None else rerank
        reranker = (
            self._reranker(s.reranker if s.reranker not in ("none", "off", "") else "default")
            if use_rerank
            else None
        )
        if reranker is not None:
            scores = reranker.score(query.text, cands)
            for c, sc in zip(cands, scores.tolist(), strict=True):
                c.score = sc
        elif s.routing == "prior" and route_w:
            # without a learned reranker the routing prior still nudges the fused score
            for c in cands:
                c.score = c.rrf * (1.0 + 0.5 * route_w.get(c.doc, 0.0))
        cands.sort(key=lambda c: -c.score)
        timings["rerank"] = time.perf_counter() - t
        # what abstention reads: a calibrated probability that the top passage answers, else its coverage
        top_prob: float = cands[0].features.get("coverage", 0.0)
        if isinstance(reranker, FeatureReranker):
            p = reranker.answer_probability(cands[0])
            top_prob = p if p is not None else top_prob
        hits = [
            Hit(
                passage=prep.store.passages[c.row],
                score=float(c.score),
                rank=i + 1,
                signals={kk: round(v, 4) for kk, v in c.features.items()},
            )
            for i, c in enumerate(cands[:k])
        ]
        return hits, top_prob, terms

    def _should_abstain(
        self, query: Query, hits: list[Hit], top_prob: float, terms: list[str], prep: _Prepared
    ) -> bool:
        if not hits:
            return True
        if query.uncovered_years and not query.filters:
            return True
        if query.other_places and not any(p in hits[0].passage.text for p in query.other_places):
            return True
        reranker = self._rerankers.get(self.settings.reranker)
        if (
            isinstance(reranker, FeatureReranker)
            and "abstain_threshold" in reranker.meta
            and top_prob < float(reranker.meta["abstain_threshold"])
        ):
            return True
        # key Chinese terms of the question that occur nowhere in the corpus (another city, an unknown
        # project); English words are left to the multilingual dense side
        missing = [
            t
            for t in terms
            if len(t) >= 2
            and t not in prep.idf
            and not t.isdigit()
            and term_weight(t, prep.idf) == 1.0
            and not t.isascii()
        ]
        return bool(terms) and len(missing) >= max(1, math.ceil(len(terms) * 0.5))


# ---- features ---------------------------------------------------------------------------


def add_features(
    query: Query,
    terms: list[str],
    prep: _Prepared,
    cands: list[Candidate],
    route_w: dict[str, float],
    routing: str,
    routes: Sequence[Route] = (),
    want: str = "",
) -> None:
    """Fill Candidate.features with the signals the default reranker reads."""
    if not cands:
        return
    idf = prep.idf
    weights = {t: term_weight(t, idf) for t in terms}
    total_idf = sum(weights.values()) or 1.0
    qbig = char_bigrams(query.normalized)
    years = {str(y) for y in query.years}
    qnums = {n for n in numbers(query.normalized) if n not in years}
    numeric_q = asks_quantity(query.normalized)
    unit_re = asked_unit_pattern(query.normalized)
    max_dense = max(c.dense for c in cands)
    max_bm25 = max(c.bm25 for c in cands) or 1.0
    max_rrf = max(c.rrf for c in cands) or 1.0
    use_route = routing != "off"
    by_doc = {r.doc: r for r in routes}
    # each term with its report-wording synonyms, looked up once per question (this loop is the hot path)
    alts = {t: (t, *SYNONYMS.get(t, ())) for t in terms}
    memo = prep.store.memo.setdefault("section", {})
    for c in cands:
        text = _norm_passage(prep.store, c.row)
        sec = memo.get(c.row)
        if sec is None:
            sec = memo[c.row] = normalize(c.section)
        present = [t for t in terms if any(a in text for a in alts[t])]
        f = c.features
        f["dense"] = c.dense
        f["dense_gap"] = c.dense - max_dense
        f["bm25"] = c.bm25 / max_bm25 if max_bm25 > 0 else 0.0
        f["rrf"] = c.rrf / max_rrf
        f["coverage"] = sum(weights[t] for t in present) / total_idf if terms else 0.0
        f["bigram"] = sum(1 for b in qbig if b in text) / len(qbig) if qbig else 0.0
        f["numbers"] = sum(1 for n in qnums if n in text) / len(qnums) if qnums else 0.0
        f["year_text"] = 1.0 if years and any(y in text for y in years) else 0.0
        rw = route_w.get(c.doc, 0.0) if use_route else 0.0
        f["route"] = rw
        f["route_none"] = 1.0 if use_route and route_w and rw == 0.0 else 0.0
        r = by_doc.get(c.doc) if use_route else None
        # does the document's relation to the year fit what is asked (a target or a result)?
        f["route_fit"] = (
            1.0 if r and ((want == "target" and r.plan) or (want == "result" and r.back)) else 0.0
        )
        f["route_misfit"] = (
            1.0 if r and ((want == "target" and not r.plan) or (want == "result" and not r.back)) else 0.0
        )
        f["heading"] = (
            sum(1 for t in terms if any(a in sec for a in alts[t])) / len(terms) if terms and sec else 0.0
        )
        f["length"] = math.log(max(len(c.text), 10) / 200.0)
        f["numeric_q"] = 1.0 if numeric_q and re.search(r"\d", text) else 0.0
        f["kind"] = 1.0 if query.kinds and prep.kinds.get(c.doc) in query.kinds else 0.0
        # the answer usually sits in one sentence: how much of the question the best sentence covers
        best = 0.0
        best_num = 0.0
        if present:
            for sent in _sentences_of(prep.store, c.row):
                cov = sum(weights[t] for t in present if any(a in sent for a in alts[t])) / total_idf
                if cov > best:
                    best = cov
                    best_num = 1.0 if numeric_q and re.search(r"\d", sent) else 0.0
        f["sentence"] = best
        f["sentence_num"] = best_num
        f["unit"] = 1.0 if unit_re is not None and unit_re.search(text) else 0.0


def _norm_passage(store: IndexStore, row: int) -> str:
    memo = store.memo["norm"]
    v = memo.get(row)
    if v is None:
        v = memo[row] = normalize(store.passages[row].text)
    return v


def _sentences_of(store: IndexStore, row: int) -> list[str]:
    memo = store.memo["sentences"]
    v = memo.get(row)
    if v is None:
        v = memo[row] = [s for s in re.split(r"(?<=[。！？；!?;])", _norm_passage(store, row)) if s.strip()]
    return v


def _stated_years(store: IndexStore) -> frozenset[int]:
    """Years the documents state something for ("2015年" as a table column), not years they only compare
    to ("比2015年增加", "较2010年翻一番")."""
    years: set[int] = set()
    for doc in store.manifest.documents:
        text = store.source_text(doc)
        for m in re.finditer(r"(?<!\d)((?:19|20)\d\d)\s*年", text):
            before = text[max(0, m.start() - 3) : m.start()].strip()
            if not before.endswith(("较", "比", "与", "同", "到", "至")):
                years.add(int(m.group(1)))
    return frozenset(years)


def _idf_table(store: IndexStore) -> dict[str, float]:
    """idf of every corpus term, read off the BM25 index's document frequencies."""
    bm25 = store.lexical.bm25
    if bm25 is None:
        return {}
    n = max(store.lexical.n_docs, 1)
    indptr = np.asarray(bm25.scores["indptr"])
    df = np.diff(indptr)
    out: dict[str, float] = {}
    for term, tid in bm25.vocab_dict.items():
        if 0 <= tid < len(df) and df[tid] > 0:
            out[term] = math.log(1.0 + (n - df[tid] + 0.5) / (df[tid] + 0.5))
    return out


def _top_positive(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the n highest positive scores, best first (equal scores by row)."""
    if scores.size == 0:
        return np.zeros(0, np.int64)
    n = min(n, scores.size)
    # Partition on the scores themselves: a negated copy costs a pass over all N rows (1M in the scale test).
    idx = np.argpartition(scores, scores.size - n)[scores.size - n :]
    idx = idx[scores[idx] > 0]
    return idx[np.lexsort((idx, -scores[idx]))]


def search_terms(query: Query) -> list[str]:
    """Query terms for lexical matching, without words that only designate the document or year."""
    toks = _dedupe(tokenize(query.normalized, normalized=True))
    years = {str(y) for y in query.years}
    kept = [t for t in toks if t not in DESIGNATORS and t not in years]
    return kept or toks


def _dedupe(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(tokens))


@lru_cache(maxsize=1024)
def _dense_text(text: str) -> str:
    import unicodedata

    from qa.text import _t2s

    return _t2s().convert(unicodedata.normalize("NFKC", text))


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def safe_filename(name: str) -> str:
    """A file name safe to write into the documents folder (no directories, no traversal)."""
    name = name.replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".")
    name = re.sub(r"\s+", " ", name)
    if not name or name in {".", ".."}:
        return ""
    if len(name.encode("utf-8")) > 200:
        stem, suffix = Path(name).stem, Path(name).suffix
        name = stem[:60] + suffix
    return name
