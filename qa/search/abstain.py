"""Abstention: when the reports do not answer, say so instead of answering; when the evidence is weak,
say that instead of stating a figure.

A reply is one of three things: an answer (the line is stated as the answer), an *unsure* line (the
nearest material, marked as such: "…[1]（最接近的资料，未能确认…）"), or a refusal ("资料中没有找到…",
with the nearest passages shown for the reader to judge).

Rules that refuse with or without a reranker:

- nothing was found, or the question has no words (only digits and symbols: ``{{7*7}}``), or it is
  code rather than a question (``' OR 1=1; DROP TABLE passages;--``, ``<script>``: the probes of
  someone testing the input);
- the question names years no document covers (and no explicit filter);
- it asks what was achieved (实际完成, 增长了) in a year no document looks back on: the reports hold
  only plans for it (2025年实际完成的地区生产总值, asked of reports delivered up to 2024);
- the question is about another place than the corpus's and the top passage does not name it;
- most of the question's key Chinese terms occur nowhere in the corpus (another city's project, a
  topic the reports never mention);
- an English question names something by a capitalised name that no report uses in any Chinese
  rendering ("How many Tesla cars…");
- no sentence of the top passages was found to answer with.

A line about another year than the one asked (the year of a sentence is often implicit: "过去一年" in
the 2024 report is 2023, a target is about the years its report plans for) is not an answer: the reply
is a refusal that names the year the nearest figure is for ("资料中没有找到2019年的数字。最接近的是
2023年的：…[1]"), with or without a reranker. Nor is a line about home when the question asks about
another place: "美国的钢产量是多少？" meets a passage that names 美国 among the older industrial countries and
then gives 我国's steel; the sentence chosen names no place asked about, so the reply is a refusal. So is a
line whose figures are all in another unit than the unit of measure asked for (多少元 met by "增长6.7%";
counts, people and shares are not held to their unit: 第几个年头 is answered by 十周年), and a line that
gives only changes when the question asks the level of a rate or share (研发投入强度是多少 met by
"研发投入增长16.8%").

With the default (feature) reranker the calibrated confidence that the line holds the answer (the
answer model of qa.search.answer, calibrated by qa.eval.calibrate) also decides: under its refusal
threshold the reply is a refusal, under its unsure threshold the line is marked unsure. Before an answer
model is calibrated, the reranker's own calibrated probability that the top passage answers is compared
with its fitted threshold instead (the shipped answer model is calibrated on the Chinese and the English
gold sets, so English questions meet the same thresholds). The reranker passed in is the one that ranked this question, so
turning reranking off for one call (the chat's checkbox, ``rerank=False``) or using a cross-encoder never
applies a threshold fitted for the default reranker's order to anything else: those replies are refused
by the rules above and for a year, a place, a unit or a level that does not match only, and never marked unsure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from qa.search.answer import AnswerLine, AnswerModel, abstain_text, as_of_years, refusal_text, unsure_text
from qa.search.corpus import CorpusView
from qa.search.features import Candidate
from qa.search.rerank import FeatureReranker, Reranker
from qa.text.english import read_english, word_key
from qa.types import Query


@dataclass(frozen=True)
class Verdict:
    """What the reply is: a refusal, an unsure line, or an answer; and why."""

    refuse: bool
    unsure: bool = False
    reason: str = ""  # why it is refused or unsure ("" for an answer)


def rule_refusal(query: Query, top: Candidate | None, view: CorpusView) -> str:
    """The rule that refuses this question whatever the reranker, or '' when none does."""
    if top is None:
        return "nothing found"
    if not any(ch.isalpha() for ch in query.normalized):
        return "no words"
    if _looks_like_code(query.text):
        return "not a question"
    if query.uncovered_years and not query.filters:
        return "uncovered year"
    if (
        query.intent == "result"
        and query.years
        and not query.filters
        and not _looked_back(view) & set(query.years)
        # "到1975年…" is also stated by a report delivered in 1975
        and not as_of_years(query) & {info.year for info in view.catalog}
    ):
        return "no review of the year"
    if query.other_places and not any(p in top.text for p in query.other_places):
        return "another place"
    if _key_terms_missing(query, view):
        return "unknown terms"
    if _unknown_name(query, view):
        return "unknown name"
    return ""


def should_abstain(query: Query, top: Candidate | None, reranker: Reranker | None, view: CorpusView) -> bool:
    """True when the rules, or the default reranker's own threshold on its top passage, refuse.

    This is the refusal without an answer model; `decide` is what the retriever uses.
    """
    if rule_refusal(query, top, view):
        return True
    return top is not None and _reranker_refuses(top, reranker)


def decide(
    query: Query,
    top: Candidate | None,
    reranker: Reranker | None,
    view: CorpusView,
    line: AnswerLine | None,
    model: AnswerModel,
) -> Verdict:
    """Answer, unsure or refuse (see the module docstring for the rules)."""
    reason = rule_refusal(query, top, view)
    if reason:
        return Verdict(True, False, reason)
    calibrated = isinstance(reranker, FeatureReranker) and model.calibrated
    if not calibrated and top is not None and _reranker_refuses(top, reranker):
        return Verdict(True, False, "low confidence")
    return judge(line, model, calibrated)


def judge(line: AnswerLine | None, model: AnswerModel, calibrated: bool) -> Verdict:
    """The answer model's part of the decision, once the rules have let the question through."""
    if line is None or not line.text:
        return Verdict(True, False, "nothing fits")
    if line.year_conflict:
        # a figure for another year is not an answer: the refusal says which year the nearest one is for
        return Verdict(True, False, "other year")
    if line.unit_conflict:
        # 多少元 answered by a sentence whose figures are all percentages or areas: not the figure asked for
        return Verdict(True, False, "another unit")
    if line.rate_conflict:
        # 研发投入强度是多少 answered by "研发投入增长16.8%": a change is not the level asked for
        return Verdict(True, False, "a change, not the level")
    if line.place_conflict:
        # the question is about another place; the passage named it, the sentence chosen does not
        return Verdict(True, False, "another place")
    conf = line.confidence if calibrated else None
    if conf is not None and model.refuse_below is not None and conf < model.refuse_below:
        return Verdict(True, False, "low confidence")
    if conf is not None and model.unsure_below is not None and conf < model.unsure_below:
        return Verdict(False, True, "low confidence")
    return Verdict(False, False, "")


def reply_text(query: Query, line: AnswerLine | None, verdict: Verdict) -> str:
    """The first line of the reply for this verdict."""
    if verdict.refuse:
        # a refusal after reading the passages names the nearest figure's year; a rule's refusal does not
        return refusal_text(query, line) if verdict.reason in _READ_REFUSALS else abstain_text(query)
    if line is None:
        return ""
    return unsure_text(line) if verdict.unsure else line.text


_READ_REFUSALS = ("other year", "low confidence")


def answer_probability(top: Candidate, reranker: Reranker | None) -> float | None:
    """The default reranker's calibrated probability that the top passage answers (None for others)."""
    if isinstance(reranker, FeatureReranker):
        return reranker.answer_probability(top)
    return None


def _reranker_refuses(top: Candidate, reranker: Reranker | None) -> bool:
    if isinstance(reranker, FeatureReranker):
        p = reranker.answer_probability(top)
        threshold = reranker.abstain_threshold
        return p is not None and threshold is not None and p < threshold
    return False


_SQL = re.compile(
    r"(?i)\b(?:select|drop|insert|delete|update|union|alter|exec)\b.{0,40}\b(?:table|from|into|set|select|database)\b"
)
_PROBE = re.compile(r"(?i)\{\{|\}\}|\$\{|<\s*/?\s*(?:script|img|iframe|svg)\b|;\s*--|'\s*or\s+\d+\s*=\s*\d+")


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _looks_like_code(text: str) -> bool:
    # no Chinese at all, and a template or markup probe, or SQL with its punctuation
    if _has_chinese(text):
        return False
    return bool(_PROBE.search(text)) or (bool(_SQL.search(text)) and bool(re.search(r"[;=*'`]|--", text)))


_LOOKED_BACK: dict[int, tuple[object, frozenset[int]]] = {}


def _looked_back(view: CorpusView) -> frozenset[int]:
    # the years some document reviews, per catalog (one catalog per index version)
    got = _LOOKED_BACK.get(id(view.catalog))
    if got is not None and got[0] is view.catalog:
        return got[1]
    years = frozenset(y for info in view.catalog for y in info.looks_back)
    if len(_LOOKED_BACK) > 16:
        _LOOKED_BACK.clear()
    _LOOKED_BACK[id(view.catalog)] = (view.catalog, years)
    return years


def _key_terms_missing(query: Query, view: CorpusView) -> bool:
    # key Chinese terms of the question that occur nowhere in the corpus (another city, an unknown
    # project); English words are left to the multilingual dense side. The question's own asking words
    # (哪几个, 几条, 多少) are not what it is about: "哪几条地铁线" is about 地铁线, and the jieba pieces
    # 哪几 / 几条 occur in no report
    terms = [t for t in query.terms if not _ASKING.search(t)]
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


def _unknown_name(query: Query, view: CorpusView) -> bool:
    # an English question that names something by a capitalised name no report uses in any Chinese
    # rendering ("How many Tesla cars…", "Shenzhen's GDP" asked of Zhengzhou's reports): the name is what
    # the question is about, so the reports cannot answer it (a lower-case word without Chinese is only a
    # word the dictionary lacks, and the first word of a question is capitalised anyway)
    reading = read_english(query.normalized, view.lexicon)
    if not reading.unknown:
        return False
    unknown = set(reading.unknown)
    return any(word_key(m.group(1)) in unknown for m in _NAME_INSIDE.finditer(query.text))


_NAME_INSIDE = re.compile(r"(?<=[\s(\"“‘])([A-Z][a-z]{2,})(?=['’]s\b|\b)")


_ASKING = re.compile(r"哪|几|多少|什么|怎么|怎样|如何|为何|为什么|是否|啥")
