"""The reranker's signals: their schema (FEATURES) and their computation, in one place.

Adding a signal means adding its name to FEATURES and computing it in `add_features`; the default
reranker's weights are then refitted (`qa fit-reranker`). A fitted weights file that lacks a feature
gives it weight 0, so an old file keeps working.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from qa.search.answer import asked_unit_pattern, asks_quantity
from qa.search.corpus import CorpusView
from qa.search.understand import Route
from qa.text.english import read_english
from qa.text.tokenize import char_bigrams, numbers, tokenize
from qa.types import Passage, Query

FEATURES = (
    "dense",  # cosine similarity of question and passage embeddings
    "dense_gap",  # dense minus the best dense among candidates
    "bm25",  # BM25 over the best BM25 among candidates
    "rrf",  # reciprocal-rank fusion of the two first-stage ranks, scaled to the best
    "coverage",  # idf-weighted share of question terms found in the passage
    "bigram",  # share of question character bigrams found in the passage
    "numbers",  # share of the question's numbers (not years) found in the passage
    "year_text",  # the question's year appears in the passage text
    "route",  # routing weight of the passage's document (looks back on / plans for the year)
    "route_none",  # the question named years but this document is not routed
    "heading",  # share of question terms in the section path
    "length",  # log of passage length, centred on 200 characters
    "numeric_q",  # question asks for a quantity and the passage has numbers
    "kind",  # the question names the kind of this document (规划纲要 / 政府工作报告)
    "sentence",  # idf-weighted coverage of the question by the passage's best sentence
    "sentence_num",  # that sentence has a number and the question asks for a quantity
    "route_fit",  # the document plans for the year of a target question / looks back on a result's year
    "route_misfit",  # the opposite
    "unit",  # a number with the unit the question asks for (多少家 -> "1980家") is in the passage
    # Questions asked in English (qa.text.english reads their words into the corpus's Chinese); all 0 for
    # a Chinese question. Written as their own signals so the fit can weigh them per language.
    "en_share",  # share of the question's letters that are Latin (1 for English): calibrates abstention
    "en_domain",  # idf-weighted share of the question's report phrases, plans and amounts the passage renders
    "en_dict",  # idf-weighted share of its dictionary-read words the passage renders (noisier)
    "en_sentence",  # the share of all of them that the passage's best sentence renders
    "en_dense",  # en_share x dense_gap: how far the passage is from the best dense match, for English
)
_DIGIT = re.compile(r"\d")


@dataclass
class Candidate:
    """A first-stage candidate: its passage, first-stage scores and the signals the reranker reads."""

    row: int
    passage: Passage
    dense: float = 0.0
    bm25: float = 0.0
    rrf: float = 0.0
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0

    @property
    def text(self) -> str:
        """The passage text."""
        return self.passage.text

    @property
    def doc(self) -> str:
        """The passage's document (file name)."""
        return self.passage.doc


def add_features(
    query: Query, view: CorpusView, cands: Sequence[Candidate], routes: Sequence[Route], routing: str
) -> None:
    """Fill Candidate.features with the signals the default reranker reads."""
    if not cands:
        return
    lex = view.lexicon
    terms = query.terms
    idf = view.idf
    weights = {t: lex.term_weight(t, idf) for t in terms}
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
    route_w = {r.doc: r.weight for r in routes}
    by_doc = {r.doc: r for r in routes}
    want = query.intent
    # each term with its report-wording synonyms, looked up once per question (this loop is the hot path)
    alts = {t: lex.alternatives(t) for t in terms}
    for c in cands:
        text = view.norm_text(c.row)
        sec = view.norm_section(c.row)
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
        f["numeric_q"] = 1.0 if numeric_q and _DIGIT.search(text) else 0.0
        f["kind"] = 1.0 if query.kinds and view.kinds.get(c.doc) in query.kinds else 0.0
        # the answer usually sits in one sentence: how much of the question the best sentence covers
        best = 0.0
        best_num = 0.0
        if present:
            for sent in view.sentences(c.row):
                cov = sum(weights[t] for t in present if any(a in sent for a in alts[t])) / total_idf
                if cov > best:
                    best = cov
                    best_num = 1.0 if numeric_q and _DIGIT.search(sent) else 0.0
        f["sentence"] = best
        f["sentence_num"] = best_num
        f["unit"] = 1.0 if unit_re is not None and unit_re.search(text) else 0.0
    add_english_features(query, view, cands)


def add_english_features(query: Query, view: CorpusView, cands: Sequence[Candidate]) -> None:
    """The en_* signals: how much of an English question's reading (its Chinese renderings) a passage
    holds, and how English the question is (read after the other signals: en_dense uses dense_gap)."""
    reading = read_english(query.normalized, view.lexicon)
    names = ("en_share", "en_domain", "en_dict", "en_sentence", "en_dense")
    if not reading.english:
        for c in cands:
            c.features.update(dict.fromkeys(names, 0.0))
        return
    idf = view.idf
    lex = view.lexicon
    # each concept: the renderings that count as present (a dictionary reading only its searched ones),
    # weighted by the rarest corpus word among them, so "郑州"-like common words count little
    concepts: list[tuple[tuple[str, ...], float, bool]] = []
    for con in reading.concepts:
        alts = con.chinese if con.source != "dictionary" else con.searched
        alts = tuple(a for a in alts if a and a not in lex.designators)
        if not alts:
            continue
        toks = [t for a in alts for t in (tokenize(a, normalized=True) or [a])]
        weight = max((lex.term_weight(t, idf) for t in toks), default=1.0)
        concepts.append((alts, weight, con.source == "dictionary"))
    dom_total = sum(w for _, w, d in concepts if not d) or 1.0
    dict_total = sum(w for _, w, d in concepts if d) or 1.0
    all_total = sum(w for _, w, _ in concepts) or 1.0
    share = reading.share
    for c in cands:
        text = view.norm_text(c.row)
        present = [(alts, w, d) for alts, w, d in concepts if any(a in text for a in alts)]
        f = c.features
        f["en_share"] = share
        f["en_domain"] = sum(w for _, w, d in present if not d) / dom_total
        f["en_dict"] = sum(w for _, w, d in present if d) / dict_total
        best = 0.0
        if present:
            for sent in view.sentences(c.row):
                best = max(best, sum(w for alts, w, _ in present if any(a in sent for a in alts)) / all_total)
        f["en_sentence"] = best
        f["en_dense"] = share * f.get("dense_gap", 0.0)
