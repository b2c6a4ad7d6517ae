"""Retrieval-augmented Q&A over Chinese government reports, with cited passages.

Public API (small on purpose)::

    from qa import Retriever
    r = Retriever.open("index/", documents_dir="documents/")
    answer = r.ask("2023年郑州GDP是多少？")
    hits = r.search("十四五期间要建成哪些国家级平台？", k=5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qa.config import Settings, load_settings
from qa.errors import DocumentError, IndexProblem, QAError
from qa.types import Answer, DocumentInfo, Hit, Passage, Query, SourceSpan

if TYPE_CHECKING:
    from qa.search.retriever import Retriever

__all__ = [
    "Answer",
    "DocumentError",
    "DocumentInfo",
    "Hit",
    "IndexProblem",
    "Passage",
    "QAError",
    "Query",
    "Retriever",
    "Settings",
    "SourceSpan",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    # Retriever pulls in faiss/torch; import it only when asked for.
    if name == "Retriever":
        from qa.search.retriever import Retriever

        return Retriever
    raise AttributeError(name)
