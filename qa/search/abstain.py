"""Abstention: when the reports do not answer, say so instead of answering.

Rules that hold with or without a reranker:

- nothing was found, or the question names years no document covers (and no explicit filter);
- the question is about another place than the corpus's and the top passage does not name it;
- most of the question's key Chinese terms occur nowhere in the corpus (another city's project, a
  topic the reports never mention).

With the default (feature) reranker, also: its calibrated probability that the top passage answers is
under the fitted threshold. The reranker passed in is the one that ranked this question, so turning
reranking off for one call (the chat's checkbox, ``rerank=False``) never applies a threshold fitted
for the reranker's probabilities to anything else.
"""

from __future__ import annotations

import math

from qa.search.corpus import CorpusView
from qa.search.features import Candidate
from qa.search.rerank import FeatureReranker, Reranker
from qa.types import Query


def should_abstain(query: Query, top: Candidate | None, reranker: Reranker | None, view: CorpusView) -> bool:
    """True when the answer should be 'the reports do not say'."""
    if top is None:
        return True
    if query.uncovered_years and not query.filters:
        return True
    if query.other_places and not any(p in top.text for p in query.other_places):
        return True
    if isinstance(reranker, FeatureReranker):
        p = reranker.answer_probability(top)
        threshold = reranker.abstain_threshold
        if p is not None and threshold is not None and p < threshold:
            return True
    return _key_terms_missing(query, view)


def _key_terms_missing(query: Query, view: CorpusView) -> bool:
    # key Chinese terms of the question that occur nowhere in the corpus (another city, an unknown
    # project); English words are left to the multilingual dense side
    terms = query.terms
    idf = view.idf
    missing = [
        t
        for t in terms
        if len(t) >= 2
        and t not in idf
        and not t.isdigit()
        and view.lexicon.term_weight(t, idf) == 1.0
        and not t.isascii()
    ]
    return bool(terms) and len(missing) >= max(1, math.ceil(len(terms) * 0.5))
