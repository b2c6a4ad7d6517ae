"""Synonyms, designators and place names, loaded from data files rather than written into code.

Three layers, each replaceable:

1. the genre lexicon shipped with the package (``qa/text/data/lexicon.toml`` and ``places.toml``):
   indicator synonyms, words that only designate a document or period, China's provinces and cities,
   other countries;
2. a corpus lexicon, ``lexicon.toml`` in the documents folder (same shape as the genre file), which
   `qa index` stores with the index: extra synonyms, designators and ``[places] home = [...]``;
3. what the documents' own metadata say they are about (``DocumentInfo.place`` and place names in
   their titles): `Lexicon.for_corpus`. A corpus of one city's reports treats other cities and
   provinces as out of scope; a national corpus (place 全国) treats only other countries so.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from qa.errors import QAError

DATA_DIR = Path(__file__).parent / "data"
LEXICON_FILE = "lexicon.toml"
_PLACE_SUFFIXES = (
    "特别行政区",
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "省",
    "市",
    "地区",
    "州",
)


@dataclass(frozen=True)
class Lexicon:
    """What the query side knows about words: report wording, designators and places."""

    synonyms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    designators: frozenset[str] = frozenset()
    function_words: frozenset[str] = frozenset()  # question words that are no search terms (要, 到, 提出)
    # province -> its cities (Chinese places), and names of other countries
    provinces: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    nation: frozenset[str] = frozenset()
    foreign: frozenset[str] = frozenset()
    # what the corpus is about: set by for_corpus and by a corpus file's [places] home
    home: frozenset[str] = frozenset()
    national: bool = False
    # how English words of a question are read into this corpus's Chinese (qa.text.english.EnglishReader);
    # None: the domain phrases alone
    english: Any = None

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def from_data(cls, data: Mapping[str, Any], source: str = "lexicon") -> Lexicon:
        """A lexicon from parsed TOML data (the genre file's shape); QAError naming `source` if malformed."""
        return cls().extended(data, source)

    def extended(self, data: Mapping[str, Any], source: str = "lexicon") -> Lexicon:
        """This lexicon with a corpus file's additions merged in (synonyms per term, lists added)."""
        known = {"synonyms", "designators", "function_words", "provinces", "nation", "foreign", "places"}
        unknown = set(data) - known
        if unknown:
            raise QAError(
                f"{source}: unknown table(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(known))}."
            )
        syn = dict(self.synonyms)
        for term, alts in _table(data, "synonyms", source).items():
            syn[_norm_key(term)] = tuple(
                dict.fromkeys([*syn.get(_norm_key(term), ()), *_strings(alts, source)])
            )
        provinces = dict(self.provinces)
        for prov, cities in _table(data, "provinces", source).items():
            provinces[prov] = tuple(dict.fromkeys([*provinces.get(prov, ()), *_strings(cities, source)]))
        places = _table(data, "places", source)
        return replace(
            self,
            synonyms=syn,
            designators=self.designators | _words(data, "designators", source),
            function_words=self.function_words | _words(data, "function_words", source),
            provinces=provinces,
            nation=self.nation | _words(data, "nation", source, key="names"),
            foreign=self.foreign | _words(data, "foreign", source, key="names"),
            home=self.home | frozenset(_strings(places.get("home", []), source)),
        )

    def for_corpus(self, places: Iterable[str | None], titles: Iterable[str] = ()) -> Lexicon:
        """This lexicon told which places a corpus is about: its documents' places and the places
        their titles name, with each city's province; the home names become designators too."""
        named: set[str] = set()
        national = False
        for p in places:
            if not p:
                continue
            base = strip_place_suffix(p)
            if base in self.nation or p in self.nation:
                national = True
            elif base:
                named.add(base)
        for t in titles:
            named.update(self.places_in(t))
        if any(n in self.nation for t in titles for n in ("国务院", "中华人民共和国") if n in t):
            national = True
        home = set(named)
        for prov, cities in self.provinces.items():
            if any(c in named for c in cities):
                home.add(prov)
        full_names = {f"{h}市" for h in named} | {f"{h}省" for h in named if h in self.provinces}
        return replace(
            self,
            home=self.home | frozenset(home),
            national=self.national or national,
            designators=self.designators | frozenset(named) | frozenset(full_names),
        )

    def with_english(self, reader: Any) -> Lexicon:
        """This lexicon reading English with `reader` (an index version's dictionary table)."""
        return replace(self, english=reader)

    # -- places -----------------------------------------------------------------------------
    @property
    def chinese_places(self) -> tuple[str, ...]:
        """Every province and city name this lexicon knows, longest first."""
        return _chinese_places(tuple(sorted(self.provinces.items())))

    def places_in(self, text: str) -> list[str]:
        """Chinese place names that occur in text (longest names first)."""
        return [p for p in self.chinese_places if p in text]

    def other_places(self, normalized_question: str) -> list[str]:
        """Places a question names that the corpus is not about (empty when it names a home place)."""
        q = normalized_question
        if any(h in q for h in self.home) or (self.national and any(n in q for n in self.nation)):
            return []
        others = [p for p in sorted(self.foreign) if p in q]
        if not self.national:
            others += [p for p in self.places_in(q) if p not in self.home]
        return others

    # -- terms ------------------------------------------------------------------------------
    def alternatives(self, term: str) -> tuple[str, ...]:
        """The term followed by its report-wording synonyms."""
        return (term, *self.synonyms.get(term, ()))

    def term_present(self, term: str, text: str) -> bool:
        """The term, or one of its report-wording synonyms, occurs in (normalised) text."""
        return term in text or any(s in text for s in self.synonyms.get(term, ()))

    def term_weight(self, term: str, idf: Mapping[str, float]) -> float:
        """idf of a term; for a colloquial term absent from the corpus, the idf of its report wording."""
        if term in idf:
            return idf[term]
        alts = [idf[s] for s in self.synonyms.get(term, ()) if s in idf]
        return max(alts) if alts else 1.0

    def expand_terms(self, terms: Sequence[str]) -> list[str]:
        """Report wording for colloquial terms in the question (extra lexical tokens)."""
        from qa.text.tokenize import tokenize

        extra: list[str] = []
        for t in terms:
            for syn in self.synonyms.get(t, ()):
                extra.extend(tokenize(syn, normalized=True) if syn != t else [])
        return [e for e in dict.fromkeys(extra) if e not in terms]


def strip_place_suffix(name: str) -> str:
    """郑州市 -> 郑州, 河南省 -> 河南, 广西壮族自治区 -> 广西 (a name without a suffix is returned as is)."""
    for suf in _PLACE_SUFFIXES:
        if name.endswith(suf) and len(name) > len(suf) + 1:
            return name[: -len(suf)]
    return name


@lru_cache(maxsize=8)
def _chinese_places(provinces: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, ...]:
    names = {p for prov, cities in provinces for p in (prov, *cities)}
    return tuple(sorted(names, key=lambda p: (-len(p), p)))


def _norm_key(term: str) -> str:
    from qa.text.normalize import normalize_for_matching

    return normalize_for_matching(term).strip()


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise QAError(f"{source}: [{key}] must be a table.")
    return value


def _strings(value: Any, source: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise QAError(f"{source}: expected a list of non-empty strings, not {value!r}.")
    return [v.strip() for v in value]


def _words(data: Mapping[str, Any], table: str, source: str, key: str = "words") -> frozenset[str]:
    t = _table(data, table, source)
    return frozenset(_strings(t.get(key, []), source))


def read_lexicon_file(path: Path) -> dict[str, Any]:
    """Parse a lexicon TOML file and check its shape; QAError with one sentence if it is malformed."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise QAError(f"The lexicon {path} is not valid TOML ({exc}); fix it or delete it.") from exc
    Lexicon.from_data(data, str(path))  # validate
    return data


@lru_cache(maxsize=1)
def genre_lexicon() -> Lexicon:
    """The lexicon shipped with the package: report synonyms, designators, places."""
    lex = Lexicon()
    for name in ("lexicon.toml", "places.toml"):
        lex = lex.extended(read_lexicon_file(DATA_DIR / name), f"qa/text/data/{name}")
    return lex


def corpus_lexicon_data(documents_dir: Path) -> dict[str, Any]:
    """The corpus's own additions (documents_dir/lexicon.toml), or {} when it has none."""
    path = Path(documents_dir) / LEXICON_FILE
    return read_lexicon_file(path) if path.is_file() else {}
