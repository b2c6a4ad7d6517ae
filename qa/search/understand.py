"""Query understanding: clean the question, read its years, periods and document kinds, resolve
follow-ups, and route it through the catalog onto the documents that look back on or plan for
those years."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from qa.errors import QAError
from qa.text.english import read_english
from qa.text.lexicon import Lexicon, genre_lexicon
from qa.text.normalize import normalize_for_matching
from qa.text.periods import NPC_NAMED_RE, cn_number, npc_session_year, plans_named
from qa.text.tokenize import tokenize
from qa.types import DocumentInfo, Query

_CN_DIGITS = {
    "〇": "0",
    "零": "0",
    "○": "0",
    "Ｏ": "0",
    "一": "1",
    "二": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
_CN_YEAR_RE = re.compile(r"([〇零○一二三四五六七八九]{4})年")
# A 4-digit year, not part of a longer number or an amount (2000亿元 is money, not a year).
_YEAR_RE = re.compile(
    r"(?<![\d.])((?:19[4-9]|20\d)\d)(?![\d.])(?!\s*(?:[万亿千百]|元|个|家|人|项|所|座|条|公里|千米|吨|平方|米|倍|%|户|辆|台|套|张|亩|公顷|件|位|名|次|处|栋|间))"
)
_RANGE_RE = re.compile(r"((?:19|20)\d\d)\s*[-—–~至到]\s*((?:19|20)\d\d)")
# A question that names a report by its year: 1958年报告, 1981年的报告, 2024年政府工作报告, 1956年的预算报告
_REPORT_NAMED_RE = re.compile(r"((?:19|20)\d\d)年(?:的|度)?[^\d，。？?、；;]{0,10}?报告")

_KIND_WORDS = {
    "五年规划纲要": ("规划", "纲要", "十四五", "十三五", "远景目标"),
    "政府工作报告": ("政府工作报告", "工作报告"),
}
_TARGET_WORDS = (
    *("目标", "计划", "预期", "力争", "打算", "将要", "要", "预计", "安排", "任务", "争取", "部署", "确保"),
    *("控制在", "将", "准备", "拟", "规划", "plan", "target"),
)
_RESULT_WORDS = (
    *("完成", "实现了", "达到了", "取得", "成效", "成绩", "回顾", "去年", "增长了", "了多少", "全年"),
    *("实际", "比上年", "累计", "已经", "已", "了"),
)
_FOLLOWUP_RE = re.compile(r"^(那么?|那|还有|另外|同样|再问|and|what about|how about)", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


@dataclass
class Route:
    """How strongly a question points at one document."""

    doc: str
    weight: float  # 0..1
    why: str  # "回顾" (looks back on the year) | "计划" (plans for it) | "类型"
    back: bool = False  # the document looks back on a year the question names
    plan: bool = False  # the document plans for a year the question names


def clean_question(text: str, max_chars: int) -> tuple[str, list[str]]:
    """Strip control characters and lone surrogates, collapse spaces, cut to max_chars."""
    if not isinstance(text, str):
        raise QAError("请输入文字问题。")
    notes: list[str] = []
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text
    text = _CONTROL_RE.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise QAError("请输入问题（问题不能为空）。")
    if len(text) > max_chars:
        text = text[:max_chars].rstrip()
        notes.append(f"问题过长，已截取前{max_chars}字")
    return text, notes


def _has_surrogates(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def has_content(text: str) -> bool:
    """True when the text has at least one letter, digit or CJK character."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


def extract_years(text: str) -> list[int]:
    """Years and periods named in normalised text: 2023年, 二〇二三年, 十四五, 2021-2025年."""
    return sorted({y for group in year_groups(text) for y in group})


def year_groups(text: str) -> list[list[int]]:
    """The years named, grouped as named: one year (2023年), or a period (2021-2025年, 六五, 十四五)."""
    groups: list[list[int]] = []
    spans: list[tuple[int, int]] = []
    for m in _RANGE_RE.finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        if a <= b <= a + 15:
            groups.append(list(range(a, b + 1)))
            spans.append(m.span())

    def in_range(m: re.Match[str]) -> bool:
        return any(a <= m.start() < b for a, b in spans)

    for m in _CN_YEAR_RE.finditer(text):
        groups.append([int("".join(_CN_DIGITS[c] for c in m.group(1)))])
    for m in _YEAR_RE.finditer(text):
        if not in_range(m):  # the ends of 1965到1974年 belong to the period, not to years of their own
            groups.append([int(m.group(1))])
    for _, plan_years in plans_named(text):
        groups.append(plan_years)
    return [g for g in ([y for y in g if 1949 <= y <= 2100] for g in groups) if g]


# A year a figure is compared with (比1977年增长, 较2010年翻一番, 与2019年相比) is not the year asked about.
_BASE_YEAR_RE = re.compile(
    r"(?:比|较|比上|同|与|和)\s*((?:19|20)\d\d)年(?!\d)(?![^，。？?]{0,6}?(?:和|与|、))"
)
_BASE_YEAR_AFTER_RE = re.compile(r"((?:19|20)\d\d)年(?:相比|比较|同期相比)")


def base_years(text: str) -> set[int]:
    """Years a question only compares with (比1977年增长了多少 asks about another year)."""
    return {int(m.group(1)) for m in _BASE_YEAR_RE.finditer(text)} | {
        int(m.group(1)) for m in _BASE_YEAR_AFTER_RE.finditer(text)
    }


def reports_named(text: str) -> tuple[list[int], str]:
    """Years of the reports a question names as such (1981年的报告, 第四届全国人大的报告), and the question
    with those designations taken out (so their years are not also read as what is asked about)."""
    named: list[int] = []
    rest = text
    for m in _REPORT_NAMED_RE.finditer(text):
        named.append(int(m.group(1)))
        rest = rest.replace(m.group(0), "报告", 1)
    for m in NPC_NAMED_RE.finditer(text):
        term = cn_number(m.group("term"))
        sitting = cn_number(m.group("sitting")) if m.group("sitting") else None
        year = npc_session_year(term, sitting) if term else None
        if year:
            named.append(year)
    return sorted(set(named)), rest


def extract_kinds(text: str) -> list[str]:
    """Document kinds the question names."""
    return [kind for kind, words in _KIND_WORDS.items() if any(w in text for w in words)]


def intent(text: str) -> str:
    """'target' when the question asks about plans, 'result' for outcomes, '' when unclear."""
    t = any(w in text for w in _TARGET_WORDS)
    # "了" marks a completed action; ignore it inside the fixed phrases where it does not ("为了")
    r = any(w in text.replace("为了", "").replace("了解", "") for w in _RESULT_WORDS)
    if t and not r:
        return "target"
    if r and not t:
        return "result"
    return ""


def resolve_followup(question: str, history: Sequence[str]) -> str | None:
    """Rewrite a follow-up like '那2024年呢？' using the previous question; None if not a follow-up."""
    if not history:
        return None
    prev = history[-1]
    q = question.strip()
    short = len(q) <= 14 or len(q.split()) <= 4  # "那2024年呢？" / "and what about 2024?"
    looks_followup = bool(_FOLLOWUP_RE.match(q)) or q.rstrip("？?。 ").endswith("呢")
    if not (short and looks_followup):
        return None
    core = _FOLLOWUP_RE.sub("", q).strip()
    core = re.sub(r"[呢吗？?。，,\s]+$", "", core).strip()
    new_years = extract_years(normalize_for_matching(core))
    prev_years_text = re.findall(r"(?:(?:19|20)\d\d|[〇零○一二三四五六七八九]{4})年|十[一二三四五六]五", prev)
    # an English question names its years without 年 ("… GDP in 2023?")
    prev_years_text = prev_years_text or re.findall(r"(?<![\d.])(?:19|20)\d\d(?![\d.])", prev)
    rest = core
    for y in re.findall(r"(?:(?:19|20)\d\d|[〇零○一二三四五六七八九]{4})年?|十[一二三四五六]五", core):
        rest = rest.replace(y, "")
    rest = re.sub(r"(?i)\b(?:in|for|of|the|year)\b", "", rest).strip(" 的")
    if new_years and not rest:
        # only the period changed: same question, new year
        if prev_years_text:
            out = prev
            year_text = re.findall(
                r"(?:(?:19|20)\d\d|[〇零○一二三四五六七八九]{4})年?|十[一二三四五六]五", core
            )[0]
            if prev_years_text[0].isdigit():  # an English question: its year without 年
                year_text = year_text.removesuffix("年")
            elif not year_text.endswith("年") and not year_text.startswith("十"):
                year_text += "年"
            out = out.replace(prev_years_text[0], year_text, 1)
            for extra in prev_years_text[1:]:
                out = out.replace(extra, "", 1)
            return out
        return core + prev
    if rest:
        # a new topic in the same period: keep the previous question's years and its question form
        years = "".join(prev_years_text[:1])
        if years.isdigit() and not new_years:  # after an English question: "jobs in 2023?"
            return f"{core} in {years}?"
        tail = "是多少？" if "多少" in prev else ("有哪些？" if "哪些" in prev else "？")
        return f"{years}{core}{tail}" if not new_years else f"{core}{tail}"
    return None


@dataclass
class _CatalogIndex:
    """What routing needs from a catalog, looked up by year and kind instead of scanned per question.

    A corpus with thousands of documents (the 1M-passage benchmark has 3,300) made the scan the slowest
    stage of understanding a question (9 ms p50).
    """

    catalog: Sequence[DocumentInfo]
    order: dict[str, int]
    by_file: dict[str, DocumentInfo]
    by_year: dict[int, list[DocumentInfo]]
    by_kind: dict[str, list[DocumentInfo]]
    by_delivered: dict[int, list[DocumentInfo]]
    covered: frozenset[int]
    delivered: frozenset[int]


_CATALOG_INDEXES: dict[int, _CatalogIndex] = {}


def catalog_index(catalog: Sequence[DocumentInfo]) -> _CatalogIndex:
    """The index of this catalog object, built on first use (a retriever keeps one catalog per index version)."""
    got = _CATALOG_INDEXES.get(id(catalog))
    if got is not None and got.catalog is catalog and len(got.order) == len(catalog):
        return got
    by_year: dict[int, list[DocumentInfo]] = {}
    by_kind: dict[str, list[DocumentInfo]] = {}
    by_delivered: dict[int, list[DocumentInfo]] = {}
    for info in catalog:
        if info.year:
            by_delivered.setdefault(info.year, []).append(info)
        for y in {*info.looks_back, *info.plans_for}:
            by_year.setdefault(y, []).append(info)
        by_kind.setdefault(info.kind, []).append(info)
    got = _CatalogIndex(
        catalog=catalog,
        order={info.file: n for n, info in enumerate(catalog)},
        by_file={info.file: info for info in catalog},
        by_year=by_year,
        by_kind=by_kind,
        by_delivered=by_delivered,
        covered=frozenset(by_year),
        delivered=frozenset(info.year for info in catalog if info.year),
    )
    if len(_CATALOG_INDEXES) > 16:  # old index versions: drop them all, the live one is rebuilt at once
        _CATALOG_INDEXES.clear()
    _CATALOG_INDEXES[id(catalog)] = got
    return got


def route(
    years: Sequence[int],
    kinds: Sequence[str],
    want: str,
    catalog: Sequence[DocumentInfo],
    reports: Sequence[int] = (),
) -> list[Route]:
    """Documents that look back on or plan for the years, weighted; kinds narrow the choice; a report the
    question names by its year (`reports`) is pointed at outright."""
    routes: dict[str, Route] = {}
    ci = catalog_index(catalog)
    for y in reports:
        for info in ci.by_delivered.get(y, ()):
            # "2021年政府工作报告" names the work report of 2021, not the plan outline of the same year
            w = 1.0 if not kinds or info.kind in kinds else 0.5
            routes[info.file] = Route(info.file, w, "报告", y in info.looks_back, y in info.plans_for)
    # Only documents that name one of the years or kinds can get a weight above zero.
    cands = {i.file: i for y in years for i in ci.by_year.get(y, ())}
    if not reports:  # a named report already says which one; its kind does not add the others
        cands.update((i.file, i) for k in kinds for i in ci.by_kind.get(k, ()))
    for info in sorted(cands.values(), key=lambda i: ci.order[i.file]):
        w, why = 0.0, ""
        any_back = any(y in info.looks_back for y in years)
        any_plan = any(y in info.plans_for for y in years)
        # a question naming a whole period (六五期间, 2016-2020年) points squarely at a report reviewing all of it
        reviews_period = len(years) > 1 and set(years) <= set(info.looks_back)
        for y in years:
            back = y in info.looks_back
            plan = y in info.plans_for
            # a five-year plan spans five years: a single year inside it is a weaker pointer
            span = max(len(info.plans_for), 1)
            if back:
                score = 1.0 if want != "target" else 0.5
                # a report reviews its last year in detail; another year of a five-year review in passing
                if info.year and y != info.year - 1 and len(info.looks_back) > 1 and not reviews_period:
                    score *= 0.7
                if len(info.looks_back) > 1 and span > 1 and not reviews_period:
                    score *= 0.5
                if score > w:
                    w, why = score, "回顾"
            if plan:
                score = {"target": 1.0, "result": 0.5}.get(want, 0.8) * (
                    1.0 if span <= 1 or len(years) > 1 else 0.5
                )
                if score > w:
                    w, why = score, "计划"
        if kinds:
            if info.kind in kinds:
                w = max(w, 0.5) if not years else (w + 0.5 if w else 0.0)
                why = why or "类型"
            elif w and years:
                w *= 0.5
        if w > 0 and info.file not in routes:
            routes[info.file] = Route(info.file, min(w, 1.0), why, any_back, any_plan)
    return sorted(routes.values(), key=lambda r: -r.weight)


def search_terms(normalized: str, years: Collection[int], lexicon: Lexicon) -> list[str]:
    """Query terms for lexical matching, without words that only designate the document or year and
    without function words."""
    toks = list(dict.fromkeys(tokenize(normalized, normalized=True)))
    ys = {str(y) for y in years}
    kept = [
        t for t in toks if t not in lexicon.designators and t not in lexicon.function_words and t not in ys
    ]
    return kept or toks


def understand(
    question: str,
    catalog: Sequence[DocumentInfo],
    history: Sequence[str] = (),
    filters: dict | None = None,
    max_chars: int = 500,
    known_years: Collection[int] = (),
    lexicon: Lexicon | None = None,
) -> tuple[Query, list[Route]]:
    """Read a question: cleaned text, years, kinds, search terms, routing, notes. Returns (query, routes).

    `lexicon` says which places the corpus is about; by default the genre lexicon told about the
    catalog's places and titles.
    """
    if lexicon is None:
        lexicon = genre_lexicon().for_corpus([i.place for i in catalog], [i.title for i in catalog])
    text, notes = clean_question(question, max_chars)
    rewritten = resolve_followup(text, [h for h in history if h and h.strip()])
    if rewritten and rewritten != text:
        notes.append(f"追问理解为：{rewritten}")
        text = rewritten
    norm = normalize_for_matching(text)
    # English words read into the corpus's Chinese (qa.text.english); `zh` is `norm` for a Chinese question
    english = read_english(norm, lexicon)
    zh = english.text
    filters = _check_filters(filters, catalog)
    # a year that only names a report (1981年的报告) points at that report; the other years are asked about
    reports, asked = reports_named(zh)
    years = extract_years(asked)
    years, relative_note = _relative_years(zh, years, filters, catalog, reports)
    if relative_note:
        notes.append(relative_note)
    kinds = extract_kinds(zh)
    want = intent(zh)
    base = base_years(asked)
    route_years = [y for y in years if y not in base] or years
    routes = route(route_years, kinds, want, catalog, reports)
    ci = catalog_index(catalog)

    # a year is covered when a document looks back on or plans for it, or the text states figures for it
    # a period counts as covered when any of its years is (a question about 1965-1974 or the third five-year
    # plan is answered from what the reports say of the years they cover)
    def is_covered(y: int) -> bool:
        return y in ci.covered or y in ci.delivered or y in known_years

    asked_groups = [g for g in year_groups(asked) if set(g) <= set(years) and not set(g) <= base] or [
        [y] for y in route_years
    ]
    uncovered = sorted(
        {y for g in [*asked_groups, *([r] for r in reports)] if not any(is_covered(y) for y in g) for y in g}
    )
    others = lexicon.other_places(zh)
    query = Query(
        text=text,
        normalized=norm,
        years=years,
        kinds=kinds,
        docs=[r.doc for r in routes if r.weight >= 0.5],
        filters=filters,
        notes=notes,
        uncovered_years=uncovered,
        intent=want,
        other_places=others,
        terms=search_terms(zh, {*years, *reports}, lexicon),
        reports=reports,
    )
    if english.note():
        notes.append(english.note())

    def title(file: str) -> str:
        info = ci.by_file.get(file)
        return _short_title(info) if info else file

    if reports and query.docs:
        named = [r.doc for r in routes if r.why == "报告"]
        if named:
            notes.append("按所问的报告检索：" + "、".join(title(d) for d in named[:3]))
    if query.docs and years:
        label = "、".join(f"{y}年" for y in _compact_years(years))
        notes.append(f"按{label}检索：" + "、".join(title(d) for d in query.docs[:3]))
    elif query.docs and kinds:
        notes.append("按文件类型检索：" + "、".join(title(d) for d in query.docs[:3]))
    if uncovered:
        notes.append("资料未覆盖" + "、".join(f"{y}年" for y in uncovered))
    if filters.get("doc"):
        notes.append("限定文件：" + "、".join(title(d) for d in filters["doc"]))
    if filters.get("year"):
        notes.append("限定年份：" + "、".join(f"{y}年" for y in filters["year"]))
    return query, routes


_RELATIVE = {"今年": 0, "本年": 0, "当年": 0, "明年": 1, "去年": -1, "上年": -1}


def _relative_years(
    norm: str, years: list[int], filters: dict, catalog: Sequence[DocumentInfo], reports: Sequence[int] = ()
) -> tuple[list[int], str]:
    """Resolve 今年/当年/明年/去年 against the one document a filter or the question names; otherwise say
    it is unresolved."""
    words = [w for w in _RELATIVE if w in norm]
    if not words or years:
        return years, ""
    ci = catalog_index(catalog)
    by_file = ci.by_file
    docs = [by_file[f] for f in dict.fromkeys(filters.get("doc", [])) if f in by_file]
    if not docs and len(reports) == 1:
        docs = ci.by_delivered.get(reports[0], [])[:1] or docs
    if len(docs) == 1 and docs[0].year:
        base = docs[0].year
        resolved = sorted({base + _RELATIVE[w] for w in words})
        return resolved, f"“{words[0]}”按《{docs[0].title}》理解为{'、'.join(f'{y}年' for y in resolved)}"
    return years, f"“{words[0]}”指哪一年无法确定（请写明年份，或限定一份文件）"


def _compact_years(years: Sequence[int]) -> list[str]:
    ys = sorted(years)
    if len(ys) > 2 and ys[-1] - ys[0] == len(ys) - 1:
        return [f"{ys[0]}–{ys[-1]}"]
    return [str(y) for y in ys]


def _short_title(info: DocumentInfo) -> str:
    if info.year and str(info.year) not in info.title:
        return f"{info.year}年{info.title}"
    return info.title


def _check_filters(filters: dict | None, catalog: Sequence[DocumentInfo]) -> dict:
    if not filters:
        return {}
    if not isinstance(filters, dict):
        raise QAError('筛选条件必须是字典，例如 {"doc": ["文件名.txt"], "year": [2023]}。')
    out: dict = {}
    files = catalog_index(catalog).by_file
    docs = filters.get("doc") or filters.get("docs") or []
    if isinstance(docs, str):
        docs = [docs]
    # filters also arrive from Python callers (LangChain, notebooks), not only through the validated API
    if not isinstance(docs, list | tuple | set) or not all(isinstance(d, str) for d in docs):
        raise QAError('文件筛选必须是文件名列表，例如 ["2024-zhengzhou-government-work-report.txt"]。')
    unknown = [d for d in docs if d not in files]
    if unknown:
        raise QAError(f"没有这个文件：{'、'.join(unknown)}；可用的文件见 /api/documents 或 `qa documents`。")
    if docs:
        out["doc"] = list(docs)
    years = filters.get("year") or filters.get("years") or []
    if isinstance(years, int | str):
        years = [years]
    try:
        ys = [int(y) for y in years]
    except (TypeError, ValueError, OverflowError) as exc:
        raise QAError("年份筛选必须是整数年份，例如 2023。") from exc
    if ys:
        out["year"] = ys
    return out


def filter_docs(filters: dict, catalog: Sequence[DocumentInfo]) -> set[str] | None:
    """The documents an explicit filter allows (None when there is no filter)."""
    if not filters:
        return None
    allowed = {i.file for i in catalog}
    if filters.get("doc"):
        allowed &= set(filters["doc"])
    if filters.get("year"):
        ys = set(filters["year"])
        allowed &= {
            i.file for i in catalog if ys & set(i.looks_back) or ys & set(i.plans_for) or (i.year in ys)
        }
    return allowed
