"""CorpusView: what the query side derives once per index version (idf, catalog, stated years, lexicon)
and the per-passage text it memoises (normalised text, sentences, section paths)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property

from qa.index.backend import Store
from qa.index.sentences import SentenceVectors, load_table
from qa.text.english import TABLE_FILE, EnglishReader
from qa.text.lexicon import Lexicon, genre_lexicon
from qa.text.normalize import normalize_for_matching
from qa.text.periods import arabic_years
from qa.text.sentences import MATCHING_ENDS, split_sentences
from qa.types import DocumentInfo

_STATED_YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d\d)\s*年")


class CorpusView:
    """One index version as the query side sees it. Lives and dies with the store it wraps."""

    def __init__(self, store: Store, lexicon: Lexicon | None = None) -> None:
        self.store = store
        self.catalog: list[DocumentInfo] = [info for info, _ in store.document_infos()]
        self.kinds = {i.file: i.kind for i in self.catalog}
        self._by_file = {i.file: i for i in self.catalog}
        base = lexicon or genre_lexicon().extended(store.manifest.lexicon, "the corpus lexicon")
        self.lexicon = base.for_corpus([i.place for i in self.catalog], [i.title for i in self.catalog])
        if self.lexicon.english is None:  # English is read with this index version's dictionary table
            self.lexicon = self.lexicon.with_english(EnglishReader.from_table(store.extra_file(TABLE_FILE)))
        self._norm: dict[int, str] = {}
        self._sentences: dict[int, list[str]] = {}
        self._section: dict[int, str] = {}

    @property
    def idf(self) -> Mapping[str, float]:
        """idf of every corpus term (the store's own)."""
        return self.store.idf()

    @cached_property
    def stated_years(self) -> frozenset[int]:
        """Years the documents state something for ("2015年" as a table column), not years they only
        compare to ("比2015年增加", "较2010年翻一番")."""
        years: set[int] = set()
        for doc in self.store.manifest.documents:
            text = self.store.source_text(doc)
            for m in _STATED_YEAR_RE.finditer(text):
                before = text[max(0, m.start() - 3) : m.start()].strip()
                if not before.endswith(("较", "比", "与", "同", "到", "至")):
                    years.add(int(m.group(1)))
        return frozenset(years)

    @cached_property
    def sentence_vectors(self) -> SentenceVectors | None:
        """The version's sentence vectors (qa.index.sentences), or None for an index built without them."""
        return load_table(self.store)

    def norm_text(self, row: int) -> str:
        """A passage's text in matching form, years written in Chinese numerals as digits (一九五七年 ->
        1957年) so that they meet the question's years."""
        v = self._norm.get(row)
        if v is None:
            v = self._norm[row] = arabic_years(normalize_for_matching(self.store.passage(row).text))
        return v

    def sentences(self, row: int) -> list[str]:
        """A passage's sentences, in matching form."""
        v = self._sentences.get(row)
        if v is None:
            v = self._sentences[row] = [
                s for s in split_sentences(self.norm_text(row), MATCHING_ENDS) if s.strip()
            ]
        return v

    def norm_section(self, row: int) -> str:
        """A passage's section path, in matching form."""
        v = self._section.get(row)
        if v is None:
            v = self._section[row] = normalize_for_matching(self.store.passage(row).section_path)
        return v

    def info(self, doc: str) -> DocumentInfo | None:
        """Catalog info of one document."""
        return self._by_file.get(doc)
