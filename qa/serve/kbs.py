"""The knowledge bases one serving process answers for: each opened on first use, sharing one encoder.

Every retriever follows its knowledge base's live version (Retriever's version check), so a process holds
no state another worker could make stale: a document uploaded or removed through any worker is answered
by every worker within a second.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from qa.errors import QAError
from qa.index.kb import DEFAULT_KB, KnowledgeBase, check_kb_name, list_kbs, resolve_kb

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.search.retriever import Retriever


class UnknownKnowledgeBase(QAError):
    """A knowledge base name that is not registered (HTTP 404)."""


class KnowledgeBases:
    """Retrievers by knowledge-base name, opened lazily (no build: `qa index --kb` builds)."""

    def __init__(self, settings: Settings, default: Retriever | None = None) -> None:
        self.settings = settings
        self._open: dict[str, Retriever] = {}
        if default is not None:
            self._open[DEFAULT_KB] = default
        self._lock = threading.Lock()

    def known(self) -> list[KnowledgeBase]:
        """The default knowledge base and every registered one."""
        return list_kbs(self.settings)

    def get(self, name: str) -> Retriever:
        """The retriever of a knowledge base; UnknownKnowledgeBase (404) or IndexProblem (not indexed yet)."""
        from qa.search.retriever import Retriever

        with self._lock:
            r = self._open.get(name)
            if r is not None:
                return r
            check_kb_name(name)
            try:
                base = resolve_kb(self.settings, name)
            except QAError as exc:
                raise UnknownKnowledgeBase(str(exc)) from exc
            r = Retriever.open(
                base.index_dir,
                self.settings,
                documents_dir=base.documents_dir,
                encoder=self._encoder(),
                kb=name,
            )
            self._open[name] = r
            return r

    def _encoder(self) -> Any | None:
        """An encoder another knowledge base already loaded (the same model: checked on first use)."""
        for r in self._open.values():
            enc = r.loaded_encoder
            if enc is not None:
                return enc
        return None
