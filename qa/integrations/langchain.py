"""LangChain retriever over a qa.Retriever: `Document`s whose metadata carries the citation.

Needs the optional extra: ``pip install zhengzhou-qa[langchain]``.

    from qa import Retriever
    from qa.integrations.langchain import QARetriever

    lc = QARetriever(retriever=Retriever.open("index/"), k=5)
    docs = lc.invoke("2023年郑州GDP是多少？")
    docs[0].metadata["citation"]  # '2024年郑州市政府工作报告 · 一、2023年工作回顾 · 第20–21行'
"""

from __future__ import annotations

from typing import Any

from qa.errors import QAError
from qa.types import Hit

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # the extra is optional; say how to get it instead of a traceback
    raise QAError(
        "The LangChain integration needs langchain-core; install it with `pip install zhengzhou-qa[langchain]`."
    ) from exc

__all__ = ["QARetriever", "hit_to_document"]


def hit_to_document(hit: Hit) -> Document:
    """A LangChain Document for one hit: the passage text, with the citation in the metadata."""
    p = hit.passage
    return Document(
        page_content=p.text,
        id=p.id,
        metadata={
            "doc": p.doc,
            "title": p.title,
            "year": p.year,
            "section": p.section_path,
            "citation": p.citation(),
            "start_line": p.span.start_line,
            "end_line": p.span.end_line,
            "page": p.span.page_start,
            "score": hit.score,
            "rank": hit.rank,
            "highlight": hit.highlight,
            "id": p.id,
        },
    )


class QARetriever(BaseRetriever):
    """A LangChain BaseRetriever backed by qa.Retriever.search (hybrid retrieval, reranking, routing)."""

    retriever: Any
    """An opened qa.Retriever (typed Any so pydantic does not try to validate it)."""
    k: int = 5
    filters: dict[str, Any] | None = None
    """Explicit filters, e.g. {"doc": ["2024-zhengzhou-government-work-report.txt"], "year": [2023]}."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        """The k best passages as Documents, best first."""
        hits = self.retriever.search(query, k=self.k, filters=self.filters)
        return [hit_to_document(h) for h in hits]
