"""The answer line: choose the sentence, then the clause, that answers this question, and say how sure.

Every sentence of the top passages is a candidate. Each gets signals (ANSWER_FEATURES) of how well it
answers: how much of the question it covers, alone and with the sentence before it and its heading;
whether it holds a figure in the unit asked (多少人 -> 人/万人, 多少亿元 -> 亿元, 比重 -> % or 百分之…),
a list for a list question, a name for a "which" question, a reason for a "why" question; whether the
year it is about is the year asked. That year is often implicit: "过去一年" in the 2024 report is 2023,
"今年" is the report's own year, a target sentence is about the years the report plans for and a
result sentence about the years it looks back on (DocumentInfo.year, looks_back, plans_for). An
AnswerModel (weights fitted on gold sets by qa.eval.calibrate, shipped as qa/data/answer.json) scores
the candidates; the best one becomes the line, cut to the clause that holds the figure asked for when
its sentence carries several. The model also gives a calibrated confidence that the line contains the
answer, which qa.search.abstain turns into answer / unsure / refuse.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import QAError
from qa.search.corpus import CorpusView
from qa.text.english import read_english
from qa.text.lexicon import Lexicon
from qa.text.lines import passage_lines, passage_sentences
from qa.text.normalize import normalize_for_matching
from qa.types import DocumentInfo, Hit, Query

DEFAULT_ANSWER_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "answer.json"

# ---- reading numbers in report text ------------------------------------------------------------------

_CN_DIGITS = "零〇○一二两三四五六七八九"
_CN_MAGS = "十百千万亿"
# units a figure carries in these reports, longest first so 万吨 wins over 吨
_UNITS = sorted(
    (
        *("个百分点", "百分点", "平方公里", "平方千米", "平方米", "平方公尺", "立方米", "立方公尺", "公尺"),
        *("千瓦时", "新卢布", "卢布", "英镑", "日元", "欧元"),
        *("千瓦", "标准煤", "标箱", "人次", "公里", "千米", "公顷", "公斤", "千克", "美元", "港元"),
        *("元", "吨", "斤", "担", "亩", "米", "人", "名", "位", "个", "家", "户", "所", "座", "条"),
        *("项", "件", "套", "台", "辆", "艘", "架", "部", "张", "次", "班", "列", "趟", "倍", "批"),
        *("处", "栋", "间", "种", "岁", "年", "天", "小时", "%", "‰", "成", "度", "届", "枚", "头"),
        *("只", "片", "支", "箱", "方", "份", "校", "镇", "村", "个月", "周年", "周"),
    ),
    key=lambda u: -len(u),
)
_UNIT_ALT = "|".join(re.escape(u) for u in _UNITS)
_AR_NUM = r"\d+(?:[.,]\d+)*"
_CN_NUM = rf"[{_CN_DIGITS}{_CN_MAGS}]+(?:点[{_CN_DIGITS}]+)?"
# a figure: an Arabic or Chinese number with a unit, or a percentage written out
_QUANTITY_RE = re.compile(
    rf"(?:(?:百分之|千分之)(?:{_CN_NUM}|{_AR_NUM}))"
    rf"|(?:(?P<ar>{_AR_NUM})\s*(?:多|余|左右)?\s*(?P<arm>[万亿千百]*)\s*(?P<aru>{_UNIT_ALT}))"
    rf"|(?:(?P<cn>{_CN_NUM})(?:多|余)?[万亿千百]?(?P<cnu>{_UNIT_ALT}))"
    rf"|(?:{_AR_NUM}\s*%)"
    # a count in ten-thousands or hundred-millions that needs no unit ("人口已经超过十亿", "减少员额一百万")
    rf"|(?:(?<![{_CN_DIGITS}{_CN_MAGS}])(?P<bare>[一二两三四五六七八九十][{_CN_DIGITS}{_CN_MAGS}]*[万亿])"
    rf"(?![{_CN_DIGITS}{_CN_MAGS}]))"
)
_AR_ANY = re.compile(r"\d")


# after these units a single Chinese digit is a figure (增长四倍, 三成), not a word (一个, 三项)
_SINGLE_DIGIT_UNITS = frozenset(("倍", "成", "个百分点", "百分点"))


@dataclass(frozen=True)
class Quantity:
    """A figure found in a sentence: where it is and its unit ('%' for percentages)."""

    start: int
    end: int
    unit: str


def quantities(text: str) -> list[Quantity]:
    """Figures with a unit in normalised text ('1.36万亿元', '百分之三十六点九', '二万六千多个')."""
    out: list[Quantity] = []
    for m in _QUANTITY_RE.finditer(text):
        s = m.group(0)
        if s.startswith(("百分之", "千分之")) or s.rstrip().endswith("%"):
            out.append(Quantity(m.start(), m.end(), "%"))
            continue
        if m.group("bare") is not None:
            out.append(Quantity(m.start(), m.end(), ""))
            continue
        if m.group("ar") is not None:
            unit = m.group("aru")
            if unit == "年" and (
                re.fullmatch(r"(?:19|20)\d\d", m.group("ar")) or text.startswith("代", m.end())
            ):
                continue  # 2023年 is a date, 50年代 a decade, not figures
            out.append(Quantity(m.start(), m.end(), unit))
            continue
        num, unit = m.group("cn"), m.group("cnu")
        if m.start() > 0 and text[m.start() - 1] in "几数":
            continue  # 几十年, 数百个: no figure
        if not num.startswith("十") and not any(c in _CN_DIGITS for c in num):
            continue  # 亿万人民, 千万, 百万人口: words, not figures
        # Chinese numerals are also words (一个, 三大, 十分): a figure needs a magnitude or two digits
        if not (
            any(c in _CN_MAGS for c in num) or "点" in num or len(num) >= 2 or unit in _SINGLE_DIGIT_UNITS
        ):
            continue
        if unit == "年" and (
            len(num) == 4 and not any(c in _CN_MAGS for c in num) or text.startswith("代", m.end())
        ):
            continue  # 一九五七年, 五十年代
        out.append(Quantity(m.start(), m.end(), unit))
    return out


# the unit a question asks for -> the units of a figure that answer it
_UNIT_FAMILIES = {
    "人": ("人", "名", "位"),
    "元": ("元", "美元", "港元", "日元", "欧元", "英镑", "卢布", "新卢布"),
    "钱": ("元", "美元", "港元", "日元", "欧元", "英镑", "卢布", "新卢布"),
    "%": ("%", "成", "个百分点", "百分点"),
    "个百分点": ("个百分点", "百分点"),
    "公里": ("公里", "千米"),
    "平方米": ("平方米", "平方公尺"),
    "平方公里": ("平方公里", "平方千米"),
    "吨": ("吨",),
    "千瓦时": ("千瓦时", "度"),
}
# units of measure by what they measure: a figure that answers "多少元 / 多少公里 / 多少吨" is in one of its
# dimension's units (多少万吨 is answered by "29.43亿斤"), whereas a count (个, 家, 项), people (人 against
# 人次) or a share (% against 倍, 翻一番) may be worded otherwise and is not held to its unit
_DIMENSIONS = (
    frozenset(_UNIT_FAMILIES["元"]),
    frozenset(("公里", "千米", "米", "公尺")),
    frozenset(("平方米", "平方公尺", "平方公里", "平方千米", "公顷", "亩")),
    frozenset(("立方米", "立方公尺")),
    frozenset(("吨", "斤", "担", "公斤", "千克")),
    frozenset(("千瓦时", "度")),
    frozenset(("千瓦",)),
    frozenset(("标箱",)),
)
_MEASURES = frozenset().union(*_DIMENSIONS)


def _dimension(unit: str) -> frozenset[str]:
    return next((d for d in _DIMENSIONS if unit in d), frozenset((unit,)))


# "哪几个行业" asks for a list, not a count of 个
_ASKED_UNIT_RE = re.compile(
    r"(?:多少|(?<!哪)几)\s*(?:万|亿|千|百)?\s*("
    + "|".join(re.escape(u) for u in sorted({*_UNITS, "钱"}, key=lambda u: -len(u)) if u not in ("%", "‰"))
    + ")"
)
_PCT_ASK_RE = re.compile(
    # a rate asked through the verb that moves it too: 积累率降到了多少, 失业率控制在多少
    r"比重|比例|占比|百分之几|百分比|几成|(?:率|强度|增速|增幅|涨幅)[^，,。；;？?！!多]{0,4}多少|percent"
)


_CJK = re.compile("[\u4e00-\u9fff]")
# the same asked in English: a unit named after how many / in (the answer is still the Chinese figure)
_EN_UNIT_ASKS = (
    (re.compile(r"\b(?:us |u\.s\. )?dollars\b|\busd\b"), "美元"),
    (re.compile(r"\byuan\b|\brmb\b|\bwhat (?:was|is|were|are) the (?:average )?(?:price|cost)s?\b"), "元"),
    (re.compile(r"\b(?:how many|in) square (?:kilomet(?:re|er)s|km)\b"), "平方公里"),
    (re.compile(r"\b(?:how many|in) square met(?:re|er)s\b"), "平方米"),
    (re.compile(r"\b(?:how many|in) (?:kilomet(?:re|er)s|km)\b"), "公里"),
    (re.compile(r"\b(?:how many|in) (?:metric )?(?:tons|tonnes)\b"), "吨"),
    (re.compile(r"\bkwh\b|\bkilowatt[- ]hours\b"), "千瓦时"),
)


@dataclass(frozen=True)
class QuestionForm:
    """What kind of answer the question asks for."""

    number: bool = False  # a figure (多少, 几, how many)
    units: tuple[str, ...] = ()  # units of figures that answer it ('人', '名', '位'); () = any
    percent: bool = False  # a share or rate
    time: bool = False  # a year or date (哪一年, 什么时候)
    listing: bool = False  # several items (哪些, 哪几)
    name: bool = False  # a name (哪个, 叫什么, 谁)
    reason: bool = False  # a reason (为什么, 原因)
    means: bool = False  # a way (怎样, 如何, 靠什么)
    definition: bool = False  # what something is (是什么, 指什么)


def question_form(normalized: str) -> QuestionForm:
    """Read what the (normalised) question asks for."""
    q = normalized
    listing = bool(re.search(r"哪些|哪几|有什么|包括什么|分别是|分别为|what are|which .*s\b", q))
    time = bool(re.search(r"哪一年|哪年|什么时候|何时|哪个月|几月|哪一天|when|what year", q))
    m = _ASKED_UNIT_RE.search(q)
    units: tuple[str, ...] = ()
    if m and not (m.group(1) == "年" and time):
        u = m.group(1)
        units = _UNIT_FAMILIES.get(u, (u,))
    elif not _CJK.search(q):
        u = next((unit for pattern, unit in _EN_UNIT_ASKS if pattern.search(q)), "")
        units = _UNIT_FAMILIES.get(u, (u,)) if u else ()
    asks = bool(re.search(r"多少|多大|几|how many|how much|what percentage", q))
    percent = bool(_PCT_ASK_RE.search(q)) and not units and asks
    if percent:
        units = _UNIT_FAMILIES["%"]
    number = bool(
        units
        or re.search(r"多少|多大|多高|多长|多快|多远|几(?!乎)|how many|how much|what percentage", q)
        and not re.search(r"哪几", q)
    )
    return QuestionForm(
        number=number,
        units=units,
        percent=percent,
        time=time,
        listing=listing,
        name=bool(re.search(r"哪个|哪家|哪一|哪座|哪项|哪条|哪位|叫什么|什么名|谁|who|which|what name", q))
        and not listing,
        reason=bool(re.search(r"为什么|为何|原因|why|怎么会|理由|目的", q)),
        means=bool(
            re.search(r"怎样|如何|怎么|靠什么|通过什么|用什么|什么办法|什么措施|how (?!many|much)", q)
        ),
        definition=bool(re.search(r"是什么|指什么|什么是|含义|指的是|what is|what does", q)),
    )


def asked_unit_pattern(normalized_question: str) -> re.Pattern[str] | None:
    """A pattern for 'a number with the unit the question asks for' (多少家 -> \\d+家), or None.

    The reranker's `unit` signal reads it; the answer line reads question_form and quantities.
    """
    m = _LEGACY_UNIT_RE.search(normalized_question)
    if m:
        unit = {"钱": "元", "个百分点": "个百分点"}.get(m.group(1), m.group(1))
        return re.compile(r"\d(?:[\d.]*)\s*(?:万|亿|千|百)?" + re.escape(unit))
    if any(w in normalized_question for w in _PCT_WORDS) and (
        "多少" in normalized_question or "几" in normalized_question
    ):
        return re.compile(r"\d(?:[\d.]*)\s*%")
    return None


_LEGACY_UNIT_RE = re.compile(
    r"(?:多少|几)\s*(个百分点|平方公里|公里|千米|万人|人次|亿元|万元|元|钱|万亩|亩|万吨|吨|家|个|人|辆|项|所|座|条|件|套|台|户|班|倍|张|名|次|天|年|米|千瓦时|标箱)"
)
_PCT_WORDS = ("比重", "比例", "占比", "增长", "增速", "增幅", "率", "百分")
_QUANTITY_WORDS = (
    *("多少", "几", "比例", "增长", "增速", "规模", "总量", "达到", "占比", "率"),
    *("how much", "how many"),
)


def asks_quantity(normalized_question: str) -> bool:
    """True when the question asks for a number (the reranker's `numeric_q` signal)."""
    return any(w in normalized_question for w in _QUANTITY_WORDS)


# ---- the year a sentence is about ----------------------------------------------------------------------

_CN_YEAR_DIGIT = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")} | {"零": "0", "○": "0"}
# a year as the reports write it, in digits or in Chinese numerals (一九五七)
_YEAR_TOKEN = r"((?:1[89]|20)\d\d|[〇零○一二三四五六七八九]{4})"
_YEAR_IN_TEXT = re.compile(_YEAR_TOKEN + r"\s*年(?!代)")
_YEAR_RANGE = re.compile(_YEAR_TOKEN + r"\s*年?\s*(?:-|—|–|~|至|到)\s*" + _YEAR_TOKEN + r"\s*年")
# 一五 … 十四五 as a plan period; not inside a year written in Chinese digits (一九五八 holds 九五)
_PLAN_PERIOD = re.compile(
    r"(?<![〇零○一二三四五六七八九十])([一二三四五六七八九]|十[一二三四五六]?)五(?![〇零○一二三四五六七八九十])"
    r"(?=”|\"|计划|规划|时期|期间|末|以来|结束)(?:”|\")?(?:计划|规划|时期|期间|末期|末|以来|结束时|结束)?"
)
_PERIOD_END = ("末", "末期", "结束时", "结束")  # “十三五”末: the period's last year
_NTH_PLAN = re.compile(r"第([一二三四五六七八九]|十[一二三四五六]?)个五年(?:计划|规划)")
_CN_SMALL = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_COMPARED = ("比", "较", "与", "同", "相比", "超过", "低于", "高于", "赶上", "恢复到", "相当于", "翻")
# "现在" / "目前" speak of the time of the report: the year it is delivered in, or the one that has just
# closed ("现在，同我国建交的国家已经增加到五十个" in the report of December 1964)
_RELATIVE_YEAR = (
    ("过去一年", -1),
    ("去年", -1),
    ("上年", -1),
    ("今年", 0),
    ("本年", 0),
    ("明年", 1),
    ("现在", 0),
    ("现在", -1),
    ("目前", 0),
    ("目前", -1),
)
# modal and future words that mark a plan or goal, and words that mark an outcome already reached
_TARGET_CUES = re.compile(
    r"力争|争取|目标|预期|预计|计划|(?<![主重需])要(?![求素点])|(?<!即)将(?!近)|确保|拟|打算|控制在|"
    r"努力|务必|必须|应当|力求|左右|以上|以内|不低于|到(?:19|20)\d\d年|[一二三四五六七八九十]+五(?:”)?(?:期间|时期)"
)
_RESULT_CUES = re.compile(
    r"完成了?|实现了|达到了|增长了|增加了|下降了|提高了|比上年|同比|累计|全年|已经|已|取得|建成|获批|入选|"
    r"成功|首次|跃居|位居|居全国|过去一年|五年来|去年|\d+\.\d+\s*(?:%|亿|万)"
)


def _year_value(s: str) -> int:
    return int("".join(_CN_YEAR_DIGIT.get(c, c) for c in s))


def _plan_start(name: str) -> int | None:
    # the first plan is 1953-1957, the second 1958-1962; from the third (1966-1970) on they follow each
    # other every five years (十四五: 2021-2025)
    n = 10 + _CN_SMALL.get(name[1:], 0) if name.startswith("十") and len(name) > 1 else _CN_SMALL.get(name, 0)
    if not n:
        return None
    return 1953 + 5 * (n - 1) if n <= 2 else 1966 + 5 * (n - 3)


# a year named as the ground a figure was reached from is compared to, not stated for: "粮食产量33，212万吨，
# 比上年增加2，737万吨，这是在1978年粮食丰收的基础上实现的" (the 1980 report on 1979's harvest)
_BASELINE_AFTER = re.compile(r"[^，,。；;：:！？]{0,20}?基础上")


def stated_years(norm: str) -> set[int]:
    """Years a sentence states something for ('2023年', '一九五七年', '“十三五”时期'), not years it only
    compares to ('比2015年', '较上年')."""
    out: set[int] = set()
    for m in _YEAR_IN_TEXT.finditer(norm):
        before = norm[max(0, m.start() - 2) : m.start()]
        if any(before.endswith(c) for c in _COMPARED) or _BASELINE_AFTER.match(norm, m.end()):
            continue
        y = _year_value(m.group(1))
        if 1800 <= y <= 2100:
            out.add(y)
    for m in _NTH_PLAN.finditer(norm):
        start = _plan_start(m.group(1))
        if start:
            out.update(range(start, start + 5))
    for m in _PLAN_PERIOD.finditer(norm):
        before = norm[max(0, m.start() - 2) : m.start()].rstrip('“"')
        if any(before.endswith(c) for c in _COMPARED):
            continue
        start = _plan_start(m.group(1))
        if start and m.group(0).rstrip('”"').endswith(_PERIOD_END):
            out.add(start + 4)
        elif start:
            out.update(range(start, start + 5))
    return out


_DOC_NAME_AFTER = re.compile(r"(?:”|\")?(?:规划纲要|规划|纲要|计划的?报告|计划草案)")


_REPORT_AFTER = re.compile(
    r"\s*年?\s*(?:的)?(?:所?[作做]的?)?(?:政府工作报告|工作报告|计划报告|预算报告|报告|规划纲要|纲要|计划草案)"
)


# "到1975年…有多少" (or "1975年时…", "as of 1975") asks a state as of that year: a report delivered in it (reviewing the year before)
# states it ("同我国建立外交关系的国家增加到近百个"); "到1975年底/末" asks the year's own close
_AS_OF = re.compile(
    r"(?:到|截至|截止到?)\s*"
    + _YEAR_TOKEN
    + r"\s*年(?!\s*(?:底|末|年底|年末|以前|前|后|以后))"
    # "1997年时全国有多少户国有小企业": the state at that time; "as of 1997"
    + "|"
    + _YEAR_TOKEN
    + r"\s*年时(?![期间候])|\bas of\s+"
    + _YEAR_TOKEN
    + r"\b"
)


def as_of_years(query: Query) -> set[int]:
    """The years a question asks a state as of ("到1975年…已经…", "截至1998年…"), unless it asks a plan
    (到2025年…要达到…: the year itself is the target's). A report delivered in such a year states it in
    its review ("增加到近百个"), so its sentences without a year of their own are about it too."""
    if query.intent == "target":
        return set()
    found = (next(g for g in m.groups() if g) for m in _AS_OF.finditer(query.normalized))
    return {y for g in found if 1800 <= (y := _year_value(g)) <= 2100}


def asked_years(query: Query) -> set[int]:
    """The years a question asks about, for the answer line: the years it names (also those routing
    ignores: 英国在一八八○年), else the plan periods it names (“十三五”末, 一五计划: 1953-1957). A year
    it only compares to (比2015年) is not asked, nor a year or plan period that names the report
    (据1985年的报告, 1959年政府工作报告说, 十四五规划纲要中); a question whose only years name its report
    asks about no year."""
    q = query.normalized
    mentions: list[tuple[int, int, int]] = [  # (year, start, end)
        (y, m.start(), m.end())
        for m in _YEAR_IN_TEXT.finditer(q)
        if 1800 <= (y := _year_value(m.group(1))) <= 2100
    ]
    for y in query.years:
        mentions += [(y, m.start(), m.end()) for m in re.finditer(str(y), q)]
    named: set[int] = set()
    dropped = False
    for y, a, b in mentions:
        if q[max(0, a - 2) : a].endswith(("比", "较", "与", "同")) or _REPORT_AFTER.match(q, b):
            dropped = True
            continue
        named.add(y)
    for m in _YEAR_RANGE.finditer(q):
        a, b = _year_value(m.group(1)), _year_value(m.group(2))
        if a < b <= a + 15:
            named.update(range(a, b + 1))
    if named:
        return named
    periods: set[int] = set()
    for rx in (_NTH_PLAN, _PLAN_PERIOD):
        for m in rx.finditer(q):
            if _DOC_NAME_AFTER.match(q, m.end()) and not m.group(0).rstrip('”"').endswith(_PERIOD_END):
                continue
            periods |= stated_years(m.group(0))
    return periods if periods or dropped else set(query.years)


def mode_score(norm: str) -> int:
    """Plan words minus outcome words in a sentence: > 0 reads as a target, < 0 as a result."""
    return len(_TARGET_CUES.findall(norm)) - len(_RESULT_CUES.findall(norm))


def sentence_mode(norm: str, passage_score: int = 0) -> str:
    """'target' (a plan or goal), 'result' (an outcome) or '' from the wording; a sentence without
    either kind of word takes its passage's leaning."""
    s = mode_score(norm) or passage_score
    return "target" if s > 0 else "result" if s < 0 else ""


# a result stated for a whole period under review, not for its last year
_PERIOD_CUE = re.compile(r"五年|[一二三四五六七八九十]+五|累计|年均|平均每年|这些年|几年来|多年来|期间")


def _reviewed(norm: str, info: DocumentInfo) -> set[int]:
    # a report that looks back on several years (the 2021 report: 2020 and the whole 13th plan) states a
    # result for the last of them unless the sentence speaks of the period ("五年来", "累计", "年均")
    if len(info.looks_back) > 1:
        # the period is named where the sentence starts, before its first figure ("五年累计新增…65.77万人");
        # a 累计 in a later clause speaks of another figure
        qty = quantities(norm)
        head = norm[: qty[0].start] if qty else norm
        first_clause = re.split(r"[，,；;：:]", norm, maxsplit=1)[0]
        if not (_PERIOD_CUE.search(head) or _PERIOD_CUE.search(first_clause)):
            return {max(info.looks_back)}
    return set(info.looks_back)


# what marks a five-year plan outline's review of the period before it: the chapter's heading or words
# of an outcome already reached
_PLAN_REVIEW = re.compile(
    r"回顾|成就|发展基础|新起点|过去|以来|五年来|累计|已经|已|取得|首次|跃居|位居|(?<![为除])了(?!解)"
)


def implicit_years(
    norm: str, heading: str, info: DocumentInfo | None, passage_score: int = 0, score: int | None = None
) -> tuple[set[int], str]:
    """The years a sentence is about when it names none, and why: relative words ('过去一年' in the 2024
    report is 2023), a heading's year ('一、2023年工作回顾'), or the document's metadata (a target is
    about the years it plans for, a result about the years it looks back on). `score`: the sentence's
    mode_score when already known."""
    if info is not None and info.year:
        rel = {info.year + d for w, d in _RELATIVE_YEAR if w in norm}
        if rel:
            return rel, "relative"
    hy = stated_years(heading)
    if hy:
        return hy, "heading"
    if info is None:
        return set(), ""
    if info.plans_for and not info.looks_back:
        return set(
            info.plans_for
        ), "plans_for"  # a document that only plans (a news item on the year's targets)
    if info.looks_back and not info.plans_for:
        return _reviewed(norm, info), "looks_back"
    if info.kind == "五年规划纲要" and info.plans_for and not _PLAN_REVIEW.search(heading + " " + norm):
        # an outline speaks of the years it plans for ("完成北货运区和第三跑道建设" is a task, not an
        # outcome) outside its review of the last plan ("第一章 站在高质量发展新起点", "五年累计建成…")
        return set(info.plans_for), "plans_for"
    lean = (mode_score(norm) if score is None else score) or passage_score
    mode = "target" if lean > 0 else "result" if lean < 0 else ""
    if mode == "target" and info.plans_for:
        return set(info.plans_for), "plans_for"
    if mode == "result" and info.looks_back:
        return _reviewed(norm, info), "looks_back"
    return set(), ""


# ---- candidates and their signals -----------------------------------------------------------------------

ANSWER_FEATURES = (
    "rank1",  # the sentence is in the top-ranked passage
    "rank_rr",  # 1 / rank of its passage
    "hit_cov",  # the passage's own coverage of the question (the reranker's signal)
    "hit_dense_gap",  # the passage's dense similarity minus the best candidate's (first-stage signal)
    "hit_bm25",  # the passage's BM25 over the best candidate's
    "hit_sentence",  # the passage's best sentence coverage (the reranker's signal)
    "hit_route_fit",  # the passage's document looks back on / plans for the year as the question wants
    "hit_route_misfit",  # the opposite
    "cov",  # idf-weighted share of the question's terms in the sentence
    "cov_ctx",  # the same with the sentence before it and the passage's heading
    "cov_gain",  # cov_ctx - cov: the sentence leans on its context for the subject
    "cov_next",  # coverage of the sentence after it (a reason or a list often precedes or follows its topic)
    "cov_prev",  # coverage of the sentence before it
    # the same for questions that ask for a name, a reason, a way, a definition or a list rather than a
    # figure: their answer is often the sentence next to the one that restates the question
    "open_cov",
    "open_cov_prev",
    "open_cov_next",
    "open_novel",
    "bigram",  # share of the question's character bigrams in the sentence
    "miss_key",  # weight of the question's weightiest term missing from the sentence and its context,
    # over the weightiest term's (美国 in 美国的钢产量, 城镇 in 城镇居民收入: another subject)
    "qnum",  # share of the question's own numbers (not years) in the sentence
    "num_fit",  # the question asks for a figure and the sentence has one
    "num_miss",  # the question asks for a figure and the sentence has none
    "unit_fit",  # a figure in the unit asked
    "unit_miss",  # figures, but none in the unit asked
    "n_qty",  # log(1 + number of figures in the sentence)
    "list_fit",  # a list question and the sentence enumerates (、 一是 …) or introduces a list (：)
    "name_fit",  # a 'which/what is it called' question and the sentence quotes a name (“” 《》)
    "reason_fit",  # a 'why' question and the sentence gives a reason (因为, 由于, 为了 …)
    "means_fit",  # a 'how' question and the sentence names a way (通过, 实行, 坚持 …)
    "def_fit",  # a 'what is' question and the sentence defines (即, 是指, 就是, ：)
    "time_fit",  # a 'when' question and the sentence names a year or month
    "year_exp_fit",  # the sentence names the year asked (share of the years it names that are asked)
    "year_exp_other",  # the sentence names other years only
    "year_imp_fit",  # the years it is implicitly about (metadata, heading, 过去一年): share that are asked
    "year_imp_other",  # implicitly about another year
    "mode_fit",  # a target question and a target sentence, or a result question and a result sentence
    "mode_misfit",  # the opposite
    "novel",  # share of the sentence's characters that are not in the question (a restatement answers nothing)
    "length",  # log of the sentence length over 40 characters
    "short",  # under 15 characters
    "table",  # a table row (figures and spaces, no clause punctuation): reads badly as an answer
    "first",  # the first sentence of its passage
    "sent_sim",  # the sentence's embedding similarity to the question minus the best candidate's, x10
    # (qa.index.sentences; 0 for every candidate when the index has no sentence vectors)
    "doc_named",  # the question names its document (十四五规划纲要中, 1979年报告说) and this is one such
    "doc_not_named",  # the question names its document and this is another
    "slot",  # weighted share of the terms next to the question word (关键 and 推行 in 关键是推行什么制度,
    # 为界 in 以什么为界) that the sentence holds: the answer sits beside them, where a sentence that only
    # restates the topic has the other terms
)

_LIST_CUE = re.compile(r"、.*、|一是|二是|第一|首先|[:：]$|以下|如下|包括|分别")
_NAME_CUE = re.compile(r"“[^”]{2,40}”|《[^》]{2,40}》|\"[^\"]{2,40}\"")
_REASON_CUE = re.compile(r"因为|由于|为了|原因|所以|因此|因而|是因|在于|鉴于|以便|目的")
_MEANS_CUE = re.compile(r"通过|实行|实施|采取|坚持|依靠|推行|办法|措施|方式|途径|建立|完善")
_DEF_CUE = re.compile(r"即|是指|就是|指的是|也就是|[:：]")
_TIME_CUE = re.compile(r"(?:19|20)\d\d\s*年|[〇零○一二三四五六七八九]{4}年|[一二三四五六七八九十]{1,2}月")


@dataclass
class Span:
    """A candidate answer: one sentence of one hit, with its signals and score."""

    hit: int  # index into the hits
    index: int  # sentence index in the passage
    text: str  # the sentence as written
    norm: str  # in matching form
    features: dict[str, float] = field(default_factory=dict)
    years: set[int] = field(default_factory=set)  # the years it is about (stated or implicit)
    years_how: str = ""  # "stated" | "relative" | "heading" | "plans_for" | "looks_back" | ""
    score: float = 0.0
    asked_years: frozenset[int] = frozenset()  # the years the question asks about


def _table_years(text: str) -> tuple[frozenset[int], ...]:
    """For each kept sentence of a passage: the years its table's header names ("序号指标名称单位2015年",
    "2020年目标") when it is a table row, else nothing. A row is about its header's years."""
    header: set[int] = set()
    out = []
    for _, norm, kind in passage_lines(text):
        if kind == "heading":
            header |= stated_years(norm)
        elif kind == "row":
            out.append(frozenset(header))
        else:
            header = set()
            out.append(frozenset())
    return tuple(out)


def answer_sentences(text: str) -> list[str]:
    """Sentences of a passage, punctuation kept; a heading line (short, no sentence end) is left out."""
    return [s for s, _ in passage_sentences(text)]


def _bigrams(text: str) -> set[str]:
    chars = [c for c in text if c.isalnum()]
    return {chars[i] + chars[i + 1] for i in range(len(chars) - 1)}


@dataclass
class _Ask:
    """The question read once: its form, weighted terms, bigrams, numbers and years."""

    form: QuestionForm
    terms: list[tuple[str, tuple[str, ...], float]]  # term, its alternatives, weight
    total: float
    bigrams: set[str]
    numbers: set[str]
    years: set[int]
    intent: str
    chars: frozenset[str]
    slot: list[tuple[str, tuple[str, ...], float]]  # the terms next to the question word
    slot_total: float


# the question word of a Chinese question: where the answer goes
_WH_WORD = re.compile(r"多少|几(?!乎)|什么|哪[些里个一家座项条位年天儿几]?|谁|怎样|如何|怎么|何时")
SLOT_LEFT, SLOT_RIGHT = 4, 3  # how far (characters) a term may end before / start after the question word


def slot_terms(normalized: str, terms: Sequence[str]) -> list[str]:
    """The question's terms next to its question word: the nearest one ending at most SLOT_LEFT characters
    before it and the nearest one starting at most SLOT_RIGHT after (every term sharing that edge:
    水利建设 and 建设). "建筑业改革的关键是推行什么制度" -> 推行, 制度; none without a question word (English)."""
    m = _WH_WORD.search(normalized)
    if not m:
        return []
    start, end = m.start(), m.end()
    spans = []
    for t in terms:
        i = normalized.find(t)
        if i >= 0:
            spans.append((t, i, i + len(t)))
    left = [e for _, _, e in spans if e <= start and start - e <= SLOT_LEFT]
    right = [i for _, i, _ in spans if i >= end and i - end <= SLOT_RIGHT]
    edge_l, edge_r = max(left, default=None), min(right, default=None)
    return [t for t, i, e in spans if e == edge_l or i == edge_r]


def _read(query: Query, view: CorpusView) -> _Ask:
    lex, idf = view.lexicon, view.idf
    terms = [(t, lex.alternatives(t), lex.term_weight(t, idf)) for t in query.terms if t.strip()]
    years = asked_years(query)
    ystr = {str(y) for y in years}
    content = query.normalized
    for y in ystr:
        content = content.replace(y, "")
    near = set(slot_terms(query.normalized, [t for t, _, _ in terms]))
    slot = [x for x in terms if x[0] in near]
    return _Ask(
        form=question_form(query.normalized),
        terms=terms,
        total=sum(w for _, _, w in terms) or 1.0,
        bigrams=_bigrams(content),
        numbers={n for n in re.findall(r"\d+(?:\.\d+)?", query.normalized) if n not in ystr},
        years=years,
        intent=query.intent,
        chars=frozenset(query.normalized),
        slot=slot,
        slot_total=sum(w for _, _, w in slot),
    )


def _coverage(ask: _Ask, text: str) -> float:
    got = 0.0
    for term, alts, w in ask.terms:
        if any(a in text for a in alts):
            got += w
        elif len(term) >= 3:
            # a compound the report words differently (粮食产量 / 粮食总产量): partial credit by bigrams
            bg = _bigrams(term)
            if bg:
                got += 0.6 * w * sum(1 for b in bg if b in text) / len(bg)
    return got / ask.total


def _missing_key(ask: _Ask, text: str) -> float:
    top = max((w for _, _, w in ask.terms), default=0.0)
    if top <= 0:
        return 0.0
    missing = [w for term, alts, w in ask.terms if len(term) >= 2 and not any(a in text for a in alts)]
    return max(missing, default=0.0) / top


@dataclass(frozen=True)
class _Sentence:
    """What a sentence says whatever the question (read once per passage and cached)."""

    text: str
    norm: str
    units: frozenset[str]  # units of its figures
    n_qty: int
    digits: bool
    stated: frozenset[int]
    mode: int  # mode_score
    cues: frozenset[str]  # "list", "name", "reason", "means", "def", "time"
    chars: tuple[str, ...]  # its letters and digits
    table: bool  # a table row rather than prose


_BRACKETED_FIGURE = re.compile(r"\[\s*\d")


def _is_table_row(norm: str) -> bool:
    # figures separated by spaces or brackets and hardly any clause punctuation: a row of a table
    figures = len(re.findall(r"\d+(?:\.\d+)?", norm))
    clause_marks = sum(norm.count(c) for c in "，,、；;。")
    return figures >= 4 and clause_marks <= figures // 4


@lru_cache(maxsize=4096)
def _heading(section_path: str) -> str:
    return normalize_for_matching(section_path)


@lru_cache(maxsize=4096)
def _read_passage(text: str) -> tuple[_Sentence, ...]:
    out = []
    for (orig, norm), table_years in zip(passage_sentences(text), _table_years(text), strict=True):
        if _BRACKETED_FIGURE.search(orig):
            continue  # a table cell like [65.77] would read as a citation marker in the line
        qty = quantities(norm)
        cues = {
            name
            for name, rx, src in (
                ("list", _LIST_CUE, norm),
                ("name", _NAME_CUE, orig),
                ("reason", _REASON_CUE, norm),
                ("means", _MEANS_CUE, norm),
                ("def", _DEF_CUE, norm),
                ("time", _TIME_CUE, norm),
            )
            if rx.search(src)
        }
        out.append(
            _Sentence(
                orig,
                norm,
                frozenset(q.unit for q in qty),
                len(qty),
                bool(_AR_ANY.search(norm)),
                frozenset(stated_years(norm) or table_years),
                mode_score(norm),
                frozenset(cues),
                tuple(c for c in norm if c.isalnum()),
                _is_table_row(norm),
            )
        )
    return tuple(out)


def candidate_spans(
    query: Query, hits: Sequence[Hit], view: CorpusView, top: int = 5, qvec: np.ndarray | None = None
) -> list[Span]:
    """Every sentence of the top hits with its ANSWER_FEATURES filled in (reading only their passages,
    signals and ranks, so the same model serves any reranker). `qvec`: the question's embedding, compared
    with the sentences' stored ones (sent_sim) when the index has them."""
    ask = _read(query, view)
    form = ask.form
    asked = ask.years
    as_of = as_of_years(query) & asked
    open_q = 0.0 if form.number else 1.0
    wanted = {
        "list": form.listing,
        "name": form.name,
        "reason": form.reason,
        "means": form.means,
        "def": form.definition,
        "time": form.time,
    }
    spans: list[Span] = []
    for i, h in enumerate(hits[:top]):
        p = h.passage
        info = view.info(p.doc)
        heading = _heading(p.section_path)
        sig = h.signals
        sents = _read_passage(p.text)
        pscore = sum(x.mode for x in sents)
        named = _names_document(query, info)
        hit_f = {
            "doc_named": 1.0 if named else 0.0,
            "doc_not_named": 1.0 if named is False else 0.0,
            "rank1": 1.0 if i == 0 else 0.0,
            "rank_rr": 1.0 / (i + 1),
            "hit_cov": float(sig.get("coverage", 0.0)),
            "hit_dense_gap": float(sig.get("dense_gap", 0.0)),
            "hit_bm25": float(sig.get("bm25", 0.0)),
            "hit_sentence": float(sig.get("sentence", 0.0)),
            "hit_route_fit": float(sig.get("route_fit", 0.0)),
            "hit_route_misfit": float(sig.get("route_misfit", 0.0)),
        }
        covs = [_coverage(ask, x.norm) for x in sents]
        prev_norm = ""
        for j, x in enumerate(sents):
            norm = x.norm
            f = dict(hit_f)
            cov = covs[j]
            context = heading + "\n" + prev_norm + norm
            ctx = _coverage(ask, context)
            f["cov"] = cov
            f["cov_ctx"] = ctx
            f["cov_gain"] = max(0.0, ctx - cov)
            f["cov_next"] = covs[j + 1] if j + 1 < len(covs) else 0.0
            f["cov_prev"] = covs[j - 1] if j > 0 else 0.0
            f["open_cov"] = open_q * cov
            f["open_cov_prev"] = open_q * f["cov_prev"]
            f["open_cov_next"] = open_q * f["cov_next"]
            f["miss_key"] = _missing_key(ask, context)
            f["bigram"] = sum(1 for b in ask.bigrams if b in norm) / len(ask.bigrams) if ask.bigrams else 0.0
            f["qnum"] = sum(1 for n in ask.numbers if n in norm) / len(ask.numbers) if ask.numbers else 0.0
            f["slot"] = (
                sum(w for _, alts, w in ask.slot if any(a in norm for a in alts)) / ask.slot_total
                if ask.slot_total
                else 0.0
            )
            has_fig = bool(x.n_qty) or (x.digits and form.number)
            f["num_fit"] = 1.0 if form.number and has_fig else 0.0
            f["num_miss"] = 1.0 if form.number and not has_fig else 0.0
            unit_ok = bool(form.units) and bool(x.units.intersection(form.units))
            f["unit_fit"] = 1.0 if unit_ok else 0.0
            f["unit_miss"] = 1.0 if form.units and x.n_qty and not unit_ok else 0.0
            f["n_qty"] = math.log1p(x.n_qty)
            for cue, feat in (
                ("list", "list_fit"),
                ("name", "name_fit"),
                ("reason", "reason_fit"),
                ("means", "means_fit"),
                ("def", "def_fit"),
                ("time", "time_fit"),
            ):
                f[feat] = 1.0 if wanted[cue] and cue in x.cues else 0.0
            stated = set(x.stated)
            implicit, how = implicit_years(norm, heading, info, pscore, x.mode)
            if not stated and as_of and info is not None and info.year in as_of:
                implicit = implicit | {info.year}
            years, how = (stated, "stated") if stated else (implicit, how)
            f["year_exp_fit"] = len(stated & asked) / len(stated) if asked and stated else 0.0
            f["year_exp_other"] = 1.0 if asked and stated and not stated & asked else 0.0
            f["year_imp_fit"] = (
                len(implicit & asked) / len(implicit) if asked and not stated and implicit else 0.0
            )
            f["year_imp_other"] = 1.0 if asked and not stated and implicit and not implicit & asked else 0.0
            mode = "target" if (x.mode or pscore) > 0 else "result" if (x.mode or pscore) < 0 else ""
            f["mode_fit"] = 1.0 if mode and mode == ask.intent else 0.0
            f["mode_misfit"] = 1.0 if mode and ask.intent and mode != ask.intent else 0.0
            chars = x.chars
            f["novel"] = sum(1 for c in chars if c not in ask.chars) / len(chars) if chars else 0.0
            f["open_novel"] = open_q * f["novel"]
            f["length"] = math.log(max(len(norm), 4) / 40.0)
            f["short"] = 1.0 if len(norm) < 15 else 0.0
            f["table"] = 1.0 if x.table else 0.0
            f["first"] = 1.0 if j == 0 else 0.0
            spans.append(Span(i, j, x.text, norm, f, years, how, 0.0, frozenset(asked)))
            prev_norm = norm
    _sentence_similarity(spans, view, qvec)
    return spans


def _names_document(query: Query, info: DocumentInfo | None) -> bool | None:
    """Whether this document is one the question names (the report of a year it names as such, 1979年报告说;
    a kind it names, 十四五规划纲要中: both when it names both), None when it names none."""
    if not query.reports and not query.kinds:
        return None
    if info is None:
        return False
    if query.reports and info.year not in query.reports:
        return False
    return not query.kinds or info.kind in query.kinds


def _sentence_similarity(spans: Sequence[Span], view: CorpusView, qvec: np.ndarray | None) -> None:
    """sent_sim: each candidate's similarity in meaning to the question, relative to the closest one (so
    the signal ranks within a question whatever the model's scale); left out for every candidate when
    there is no question vector (lexical retrieval) or the index has no vector for one of them."""
    if qvec is None or not spans:
        return
    table = view.sentence_vectors
    sims = table.similarities(qvec, [s.text for s in spans]) if table is not None else None
    if sims is None:
        return
    best = float(sims.max())
    for s, v in zip(spans, sims.tolist(), strict=True):
        s.features["sent_sim"] = 10.0 * (v - best)


# ---- the fitted model -----------------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


# read only by AnswerModel.confidence: the inputs of the calibrated "is the line right" model are these
# and every ANSWER_FEATURES signal of the best candidate
CONFIDENCE_INPUTS = (
    "top",  # the best candidate's score
    "margin",  # best minus second best (another sentence that answers as well makes the choice shaky)
    "answer_p",  # the reranker's calibrated probability that the top passage answers (0.5 without one)
    "year_unknown",  # the question names a year and nothing tells which year the best candidate is about
    "miss_key_top",  # weight of the question's weightiest term found in none of the top passages (see miss_key)
    *(f"best_{f}" for f in ANSWER_FEATURES),
)


@dataclass
class AnswerModel:
    """Linear scores over ANSWER_FEATURES, a calibrated confidence and the answer/unsure/refuse thresholds."""

    weights: dict[str, float]
    bias: float = 0.0
    confidence_weights: dict[str, float] = field(default_factory=dict)
    confidence_bias: float = 0.0
    unsure_below: float | None = None  # confidence under which the line is marked unsure
    refuse_below: float | None = None  # confidence under which the reply is a refusal
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fallback(cls) -> AnswerModel:
        """Hand-set weights, used only when no fitted file exists: coverage, figures, years, rank."""
        return cls(
            {
                "cov": 3.0,
                "cov_ctx": 1.0,
                "rank_rr": 1.0,
                "num_fit": 0.8,
                "num_miss": -0.8,
                "unit_fit": 1.0,
                "unit_miss": -0.5,
                "year_exp_fit": 0.5,
                "year_exp_other": -1.5,
                "year_imp_other": -1.0,
                "mode_fit": 0.3,
                "mode_misfit": -0.3,
                "short": -1.0,
            },
            meta={"fitted": False},
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> AnswerModel:
        """The weights in `path` (written by qa.eval.calibrate), else the packaged ones, else the fallback."""
        p = Path(path).expanduser() if path else DEFAULT_ANSWER_WEIGHTS
        if not p.is_file():
            if path:
                raise QAError(
                    f"The answer weights file {p} does not exist; write it with "
                    f"`python -m qa.eval.calibrate --out {p}` or unset answer_weights."
                )
            return cls.fallback()
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            return cls(
                weights={k: float(v) for k, v in d["weights"].items()},
                bias=float(d.get("bias", 0.0)),
                confidence_weights={k: float(v) for k, v in d.get("confidence_weights", {}).items()},
                confidence_bias=float(d.get("confidence_bias", 0.0)),
                unsure_below=_opt_float(d.get("unsure_below")),
                refuse_below=_opt_float(d.get("refuse_below")),
                meta=dict(d.get("meta", {})),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QAError(
                f"The answer weights {p} are unreadable ({exc}); rewrite them with `python -m qa.eval.calibrate`."
            ) from exc

    def save(self, path: str | Path) -> None:
        """Write the model as JSON."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        d = {
            "features": list(ANSWER_FEATURES),
            "weights": self.weights,
            "bias": self.bias,
            "confidence_inputs": list(CONFIDENCE_INPUTS),
            "confidence_weights": self.confidence_weights,
            "confidence_bias": self.confidence_bias,
            "unsure_below": self.unsure_below,
            "refuse_below": self.refuse_below,
            "meta": self.meta,
        }
        p.write_text(json.dumps(d, ensure_ascii=False, indent=1), encoding="utf-8")

    @property
    def calibrated(self) -> bool:
        """True when the model has a calibrated confidence and thresholds to apply it with."""
        return bool(self.confidence_weights) and (
            self.refuse_below is not None or self.unsure_below is not None
        )

    def score(self, spans: Sequence[Span]) -> None:
        """Set Span.score for each candidate."""
        w = self.weights
        for s in spans:
            s.score = self.bias + sum(w.get(k, 0.0) * v for k, v in s.features.items())

    def confidence_inputs(
        self, ranked: Sequence[Span], answer_p: float | None, miss_key_top: float = 0.0
    ) -> dict[str, float]:
        """The inputs of the confidence model for candidates sorted best first."""
        if not ranked:
            return {}
        best = ranked[0]
        second = ranked[1].score if len(ranked) > 1 else best.score - 5.0
        f = best.features
        out = {
            "top": best.score,
            "margin": min(best.score - second, 5.0),
            "answer_p": 0.5 if answer_p is None else answer_p,
            "year_unknown": 1.0 if best.asked_years and not best.years else 0.0,
            "miss_key_top": miss_key_top,
        }
        out.update((f"best_{k}", v) for k, v in f.items())
        return out

    def confidence(self, inputs: dict[str, float]) -> float | None:
        """Calibrated probability that the line holds the answer (None before calibration)."""
        if not self.confidence_weights or not inputs:
            return None
        z = self.confidence_bias + sum(self.confidence_weights.get(k, 0.0) * v for k, v in inputs.items())
        return _sigmoid(z)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


# ---- the line ------------------------------------------------------------------------------------------


@dataclass
class AnswerLine:
    """The chosen answer and what is known about it."""

    text: str  # the line: the chosen sentence or clause with its [n] marker ("" when nothing fits)
    span: Span | None = None
    shown: str = ""  # the verbatim text shown (the sentence, or the clause cut from it)
    confidence: float | None = None  # calibrated probability that the line holds the answer
    inputs: dict[str, float] = field(default_factory=dict)  # the confidence model's inputs
    asked_years: list[int] = field(default_factory=list)
    other_years: list[int] = field(default_factory=list)  # the line is about these years, not the asked
    # the unit of measure asked for when the line's sentence has figures and none in it (多少元 answered by
    # "增长6.7%", 每平方米多少钱 by "销售面积2028.6万平方米"): the figure asked for is not there
    missing_unit: str = ""
    # the question asks the level of a rate or share (研发投入强度是多少) and every percentage of the line is a
    # change ("研发投入增长16.8%"): the level asked for is not there
    rate_conflict: bool = False
    # the other places (countries, other cities) the question asks about when the line's sentence names
    # none of them: the figure is about somewhere else
    unnamed_places: list[str] = field(default_factory=list)
    ranked: list[Span] = field(default_factory=list)  # every candidate, best first

    @property
    def year_conflict(self) -> bool:
        """The line is about another year than the question asks for."""
        return bool(self.other_years)

    @property
    def unit_conflict(self) -> bool:
        """The question asks for a unit of measure and the line's figures are all in others."""
        return bool(self.missing_unit)

    @property
    def place_conflict(self) -> bool:
        """The question asks about another place and the line does not name it."""
        return bool(self.unnamed_places)


_CLAUSE_SPLIT = re.compile(r"(?<=[，,；;：:])")


def clauses(sentence: str) -> list[str]:
    """The clauses of a sentence (split after ，；：), punctuation kept; joined they give the sentence."""
    return [c for c in _CLAUSE_SPLIT.split(sentence) if c]


_COMPARE_ASK = re.compile(r"比|较|增长|增加|多了|少了|提高|下降|减少|翻|增速|增幅|涨")
# before a figure: a change ('比上年增加', '增长了') or a level ('达到', '增加到', '为')
_DELTA_BEFORE = re.compile(
    r"(?:比|较|同比).{0,20}(?:增|减|降|提高|多|少|上升)|(?:增加|增长|减少|下降|提高|上升|降低|翻)了?$"
)
_LEVEL_BEFORE = re.compile(r"(?:到|至|为|达|是|有)$")


CLAUSE_MARGIN = 0.75
_COMPARED_YEAR = re.compile(r"(?:比|较|同)((?:19|20)\d\d)\s*年")


def _is_change(norm: str, figure: Quantity) -> bool:
    # the figure's own clause says it is a change ("研发投入增长16.8%", "比上年提高2个百分点"), not a level
    # ("提高到2.67%", "达到85%")
    pre = re.split(r"[，,；;：:、]", norm[: figure.start])[-1]
    return bool(_DELTA_BEFORE.search(pre)) and not _LEVEL_BEFORE.search(pre)


def _digits(text: str) -> str:
    m = re.search(r"\d+(?:\.\d+)?", text)
    return m.group(0) if m else ""


def choose_clause(query: Query, view: CorpusView, span: Span) -> str:
    """The part of the sentence to show: when the question asks for a figure and the sentence carries
    several, the stretch of clauses that ends with the figure asked for and starts after the figure
    before it (so it keeps its own subject: '1987年提高到463元'); otherwise the whole sentence."""
    form = question_form(query.normalized)
    text = span.text
    if not form.number or form.listing or form.reason or len(text) < 50 or len(quantities(span.norm)) < 2:
        return text
    parts = clauses(text)
    if len(parts) < 2:
        return text
    ask = _read(query, view)
    qbig = _bigrams(query.normalized)  # with the years: '比2015年' picks the clause that compares
    norms = [normalize_for_matching(p) for p in parts]
    figs = [quantities(n) for n in norms]
    compares = bool(_COMPARE_ASK.search(query.normalized))
    asked_years = ask.years
    qdigits = {d for d in re.findall(r"\d+(?:\.\d+)?", query.normalized) if len(d) != 4}
    segments: list[tuple[int, int]] = []  # [start, end] clause indices, each ending with a figure
    start = 0
    for k in range(len(parts)):
        if figs[k]:
            segments.append((start, k))
            start = k + 1
    seg_years = [stated_years("".join(norms[a : k + 1])) for a, k in segments]
    mixed_years = bool(asked_years) and any(y and not y & asked_years for y in seg_years)
    scored: list[tuple[float, tuple[int, int]]] = []
    for n_seg, (a, k) in enumerate(segments):
        seg = "".join(norms[a : k + 1])
        s = 2.0 * _coverage(ask, seg) + 0.5 * _coverage(ask, norms[k])
        s += sum(1 for b in qbig if b in seg) / len(qbig) if qbig else 0.0
        if form.units:
            s += 1.0 if any(x.unit in form.units for x in figs[k]) else -1.0
        pre = norms[k][: figs[k][-1].start]
        delta = bool(_DELTA_BEFORE.search(pre)) and not _LEVEL_BEFORE.search(pre)
        if delta != compares:
            s -= 0.5  # '比上年增加…' answers 'how much more', '达到…' answers 'how much'
        if mixed_years:
            cy = stated_years(seg)
            s += 1.0 if cy & asked_years else -1.0 if cy else 0.0  # '1982年为270元，1987年提高到463元'
        fig_text = {norms[k][x.start : x.end] for x in figs[k]}
        if fig_text and all(_digits(t) and _digits(t) in qdigits for t in fig_text):
            s -= 1.0  # the figures the question itself gives ('从44%提高到45%') are not its answer
        s -= 0.1 * n_seg + 0.1 * max(0, len(figs[k]) - 2)
        scored.append((s, (a, k)))
    scored.sort(key=lambda x: -x[0])
    # cut only when one stretch clearly answers; a near tie shows the whole sentence
    if not scored or (len(scored) > 1 and scored[0][0] - scored[1][0] < CLAUSE_MARGIN):
        return text
    a, k = scored[0][1]
    # a cut never drops what the question asks about further on: a later stretch that holds a question
    # term, or a year asked, missing from the chosen one belongs to the answer ('…达到230天，比2015年增加90天',
    # '…增长百分之四十，达到二千八百七十亿元'); what comes before is the stretch's own lead-in
    chosen_norm = "".join(norms[a : k + 1])
    have_terms, have_years = _terms_in(ask, chosen_norm), stated_years(chosen_norm)
    # the years the question compares with ('比2015年多了多少'): the stretch that makes that comparison
    compared = {f"{y}年" for y in _COMPARED_YEAR.findall(query.normalized)}
    for sa, sk in segments:
        seg = "".join(norms[sa : sk + 1])
        if sa > k and (
            _terms_in(ask, seg) - have_terms
            # "…比重已从…降低到百分之三十点七，其中国防费从…降低到百分之二十一点一": the breakdown of what was asked
            or (seg.startswith("其中") and bool(_terms_in(ask, seg)))
            or (stated_years(seg) & asked_years) - have_years
            or any(y in seg and y not in chosen_norm for y in compared)
        ):
            k = sk
    # a run of bare items after it ("年产生铁二百五十万吨，钢三百二十二万吨，钢材二百四十八万吨") shares its lead-in:
    # the figure asked for may be any of them, so the run is kept whole
    while k + 1 < len(parts) and _bare_item(norms[k + 1], figs[k + 1]):
        k += 1
    chosen = "".join(parts[a : k + 1]).strip().rstrip("，,；;：:")
    return chosen if len(chosen) >= 6 else text


BARE_ITEM_CHARS = 16


def _bare_item(norm: str, figs: Sequence[Quantity]) -> bool:
    # a short clause that is a name and one figure ("钢三百二十二万吨，"): an item of a list, no verb of its own
    body = norm.rstrip("，,；;。.、 ")
    return (
        len(figs) == 1
        and len(body) <= BARE_ITEM_CHARS
        and figs[0].end >= len(body)
        and 0 < figs[0].start <= 8
        and not re.search(r"[增减降提达占比为是到由从]", body[: figs[0].start])
    )


def _terms_in(ask: _Ask, text: str) -> set[str]:
    """The question's terms (any of their alternatives) that a text holds."""
    return {term for term, alts, _ in ask.terms if any(alt in text for alt in alts)}


def compose(
    query: Query,
    hits: Sequence[Hit],
    view: CorpusView,
    model: AnswerModel,
    answer_p: float | None = None,
    top: int = 5,
    spans: list[Span] | None = None,
    qvec: np.ndarray | None = None,
) -> AnswerLine:
    """Choose the answer among the top hits' sentences, mark each hit's best sentence, build the line.

    `spans`: the candidates already read (candidate_spans), when the caller has them; `qvec`: the
    question's embedding (for sent_sim), when spans are read here.
    """
    if spans is None:
        spans = candidate_spans(query, hits, view, top, qvec)
    model.score(spans)
    best_in_hit: dict[int, Span] = {}
    for s in spans:
        if s.hit not in best_in_hit or s.score > best_in_hit[s.hit].score:
            best_in_hit[s.hit] = s
    for i, h in enumerate(hits):
        b = best_in_hit.get(i)
        h.highlight = b.text if b else None
    ranked = sorted(spans, key=lambda s: -s.score)
    line = AnswerLine("", ranked=ranked)
    if not ranked:
        return line
    ask = _read(query, view)
    figure = ask.form.number
    if _other_year(ranked[0], figure):
        # a figure for another year is no answer: a close candidate about the year asked goes first
        fits = [
            s
            for s in ranked
            if s.years and not _other_year(s, figure) and s.score >= ranked[0].score - YEAR_SWITCH
        ]
        if fits:
            ranked.remove(fits[0])
            ranked.insert(0, fits[0])
    best = ranked[0]
    line.span = best
    line.asked_years = sorted(best.asked_years)
    passages = "\n".join(
        _heading(h.passage.section_path) + "\n" + "".join(x.norm for x in _read_passage(h.passage.text))
        for h in hits[:top]
    )
    line.inputs = model.confidence_inputs(ranked, answer_p, _missing_key(ask, passages))
    line.confidence = model.confidence(line.inputs)
    shown = choose_clause(query, view, best)
    line.shown = shown
    text = f"{shown}[{best.hit + 1}]"
    form = question_form(query.normalized)
    open_question = (form.reason or form.means or form.listing or form.definition) and not form.number
    # a lead-in ("要着力提升城市“四个内涵”：") is answered by what follows it; so is an open question (why,
    # how, which measures …) whose best sentence is short: it mostly restates the question, and the content
    # comes next ("物价涨幅这么大，既有客观原因，也有…。" / "一是去年出台的调价项目…")
    lead_in = (form.listing or form.definition) and best.norm.rstrip().endswith((":", "："))
    follow = [s for s in spans if s.hit == best.hit and s.index == best.index + 1]
    # so is a best sentence when the sentence after it is one of the next two candidates and holds more of
    # the terms beside the question word: "建筑业的改革，要围绕…来进行。" then "关键是要推行投资包干制和招标承包制。"
    fills = (
        bool(follow)
        and any(s is follow[0] for s in ranked[1:3])
        and follow[0].features.get("slot", 0.0) > best.features.get("slot", 0.0)
    )
    extend = lead_in or fills or (open_question and len(best.norm) <= OPEN_SHORT_CHARS)
    if extend and follow and len(shown) + len(follow[0].text) < 260:
        text = f"{shown}[{best.hit + 1}]{follow[0].text}[{best.hit + 1}]"
    line.text = text
    if _other_year(best, figure):
        line.other_years = sorted(best.years)
    figures = quantities(best.norm)
    asked_unit = ask.form.units[0] if ask.form.units else ""
    measured = best.features.get("unit_miss") and asked_unit in _MEASURES
    if measured and not {x.unit for x in figures} & _dimension(asked_unit):
        line.missing_unit = asked_unit
    if ask.form.percent and not _COMPARE_ASK.search(query.normalized):
        shares = [x for x in figures if x.unit == "%"]
        line.rate_conflict = bool(shares) and all(_is_change(best.norm, x) for x in shares)
    places = [*query.other_places, *owner_places(query, view.lexicon)]
    # "美国的钢产量" answered by a sentence about 我国's: the passage names 美国 (in the sentence before,
    # among the countries whose industry is older), the line does not
    if places and not any(p in best.norm for p in places):
        line.unnamed_places = places
    return line


# a place that owns what is asked: 上海的…, 上海市1995年…, Shanghai's …, the GDP of Shanghai
_OWNER_AFTER = r"(?:市|省|自治区)?(?:的|(?:19|20)\d\d年)"
_OWNER_EN = re.compile(r"\b([A-Z][a-z]{2,})(?:'s|’s)|\bof (?:the )?([A-Z][a-z]{2,})\b")


def owner_places(query: Query, lexicon: Lexicon) -> list[str]:
    """Provinces and cities a question over national reports asks *about* as the owner of what it asks
    ("上海1995年的国内生产总值是多少", "What was Shanghai's GDP"). National reports speak of the nation; a
    province's figure is answered only by a sentence that names it (places named otherwise, 太原热电站 or
    北京各机关, are left alone; so is a Chinese question that asks no figure: "上海的浦东新区是哪一年开发的"
    may be answered by a sentence about 浦东 alone)."""
    if not lexicon.national:
        return []
    q = query.normalized
    asks_figure = question_form(q).number
    found = [p for p in lexicon.places_in(q) if asks_figure and re.search(re.escape(p) + _OWNER_AFTER, q)]
    for m in _OWNER_EN.finditer(query.text):
        word = (m.group(1) or m.group(2)).lower()
        found += lexicon.places_in(read_english(word, lexicon).text)
    return [p for p in dict.fromkeys(found) if p not in lexicon.nation]


# how far below the best candidate one about the year asked may score and still be preferred to it
YEAR_SWITCH = 1.5
# an open question's best sentence this short (characters, matching form) is shown with the one after it
OPEN_SHORT_CHARS = 60


# more implicit years than this: a plan's period, not one year of it
PERIOD_YEARS = 2


def _other_year(span: Span, figure: bool = False) -> bool:
    """The span is about other years than the question asks. For a question that asks for a figure, a
    sentence of a plan that speaks of its whole period ("全国粮食总产量应该有七千二百亿斤到七千五百亿斤" in the
    report on the 1956-1967 programme) holds no figure for a year inside that period, only for its end
    (a five-year plan's targets are for its last year: "by 2025")."""
    if not (span.asked_years and span.years):
        return False
    if not span.years & span.asked_years:
        return True
    if (
        figure
        and len(span.asked_years) == 1
        and span.years_how == "plans_for"
        and len(span.years) > PERIOD_YEARS
    ):
        (year,) = span.asked_years
        return year + 1 in span.years
    return False


def year_label(years: Sequence[int]) -> str:
    """'2023年' or '2016–2020年'."""
    ys = sorted(years)
    if not ys:
        return ""
    if len(ys) > 2 and ys[-1] - ys[0] == len(ys) - 1:
        return f"{ys[0]}–{ys[-1]}年"
    return "、".join(f"{y}年" for y in ys) if len(ys) <= 3 else f"{ys[0]}–{ys[-1]}年"


UNSURE_NOTE = "（最接近的资料，未能确认它回答了所问的问题）"


def unsure_text(line: AnswerLine) -> str:
    """The line marked as the nearest material, not a stated answer: '…[1]（最接近的资料，未能确认…）'."""
    return f"{line.text}{UNSURE_NOTE}"


def refusal_text(query: Query, line: AnswerLine | None) -> str:
    """A refusal; when the nearest sentence is about another year, say which year it is for."""
    if line is not None and line.year_conflict and line.text and not query.uncovered_years:
        return (
            f"资料中没有找到{year_label(line.asked_years)}的相关数字。"
            f"最接近的资料是{year_label(line.other_years)}的：{line.text}"
        )
    return abstain_text(query)


def abstain_text(query: Query) -> str:
    """The plain abstention sentence."""
    if query.uncovered_years:
        years = "、".join(f"{y}年" for y in query.uncovered_years)
        return (
            f"资料中没有找到{years}的相关内容（现有文件覆盖的年份见文件列表）。以下是最接近的段落，供参考。"
        )
    topic = query.text.strip("？?。! ！")
    if len(topic) > 30:
        topic = topic[:30] + "…"
    return f"资料中没有找到“{topic}”的相关内容。以下是最接近的段落，供参考。"
