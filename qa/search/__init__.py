"""The query side, one stage per module:

understand (years, kinds, routing, follow-ups) -> candidates (dense ∪ lexical) -> fusion (RRF) ->
features (the reranker's signals) -> rerank -> answer (the answer line) -> abstain; `Retriever`
(retriever.py) only wires them.
"""

from __future__ import annotations

from qa.search.retriever import DocumentSummary, Retriever, SourceContext

__all__ = ["DocumentSummary", "Retriever", "SourceContext"]
