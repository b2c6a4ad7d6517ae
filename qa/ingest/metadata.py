"""Metadata of a document without a catalog entry, read from its opening and its file name.

What is used is knowledge of the genre (Chinese government work reports, five-year plan outlines
and news about them), never of particular files:

* title: the title line above the greeting (各位代表：), never a heading, a greeting, a date line or a
  byline; a generic one (政府工作报告) is made specific with the year and the issuer, and a document
  without one gets a title built from year, issuer and kind;
* issuer and place: who speaks (我代表国务院 / 我代表市人民政府), the congress spoken to, the byline
  (国务院总理 / 郑州市人民政府市长), the issuing office (郑州市人民政府文件);
* year delivered: the date line (——2023年3月5日在…会议上), else the session of the National People's
  Congress the report is made to (NPC_SESSIONS), else the file name, else the report's own words
  (一、2023年工作回顾 → 2024; 关于一九五八年度国民经济计划 → 1958);
* looks_back / plans_for: the year before and the year of a report, plus what its opening says:
  过去五年 / 本届政府 → the five years before, a five-year plan it closes or presents (plan_period),
  the years its subject names (关于1980、1981年国民经济计划). Kept tight on purpose: routing weights
  documents by these lists, so every year mentioned somewhere would route everything everywhere.

`sources` records for each field set whether it came from the "title line", the "text" or the
"file name".
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from qa.ingest.structure import TITLE_RANK, heading_rank
from qa.text.normalize import to_simplified
from qa.text.periods import CN_DIGITS, CN_NUM, NPC_SESSIONS, cn_number, plans_named
from qa.types import DocumentInfo

# Bumped when inference changes, so indexes re-read the metadata of uncatalogued files (no re-embedding).
METADATA_VERSION = 2

__all__ = ["METADATA_VERSION", "find_dates", "infer_info"]

HEAD_CHARS = 6000  # title, date line, session, subject and the first review section live here
OPENING_CHARS = 1500  # after the greeting: the subject sentence and the start of the review
HEADER_LINES = 30  # the greeting comes within this many lines (web pages put a few lines above the title)

# Where a province, city or county name ends; no list of names, so any place is recognised.
PLACE_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "省", "市", "州", "盟", "县", "区", "旗")
# Words ending in 市/省/区 that are not place names (全市 = "the whole city", 上市 = "listed" …), and
# the level words a government calls itself by (市人民政府, 自治区主席).
_NOT_PLACE_WORDS = """
城市 超市 上市 全市 我市 本市 各市 该市 都市 股市 楼市 门市 夜市 集市 入市 退市 地市 省市 县市 开市 市区
全省 我省 本省 各省 外省 该省 全区 我区 本区 各区 城区 园区 景区 社区 片区 新区 港区 郊区 矿区 山区 牧区
灾区 辖区 小区 街区 湾区 试验区 示范区 开发区 保护区 自贸区 全县 我县 各县 本县 省区 地区 特区 老区 全州
各州 欧洲 亚洲 非洲 美洲 澳洲 绿洲 自治区 自治州 自治县 特别行政区
"""
NOT_PLACES = frozenset(_NOT_PLACE_WORDS.split())
_SUFFIX_RE = "|".join(PLACE_SUFFIXES)

_FOLD = str.maketrans(
    "０１２３４５６７８９\u3000", "0123456789 ", "\u200b\u200c\u200d\ufeff\ufffd"
)  # full-width digits folded, zero-width and replacement characters dropped

_YEAR = r"(?:\d{4}|[〇零○Ｏ一二三四五六七八九]{4})"
_DATE = r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2}|[一二三四五六七八九十]{1,2})\s*月\s*(?P<d>\d{1,2}|[一二三四五六七八九十]{1,3})\s*日"
_DATE_RE = re.compile(_DATE)
_DATE_LINE_RE = re.compile(r"^[—\-－―─~～（(\s]*" + _DATE + r"\s*(?P<rest>.*?)[）)]?$")
_GREETING_RE = re.compile(r"^(?:各位代表|各位委员|代表们|同志们|各位代表、同志们)[：:！!，,]?")
_WATERMARK_RE = re.compile(r"https?://|www\.|\.(?:com|cn|net)\b|公众号|更多(?:数据|资料|资讯)尽在|扫码|转载")
_SENTENCE_PUNCT_RE = re.compile(r"[，。；！？,;!?]")
# A place name: CJK characters ending in a place suffix, not starting mid-word: preceded by a
# non-CJK character or by a preposition (在郑州市…, 向河南省…), and not itself starting with one.
_PLACE = (
    r"(?:(?<=[在向于从由经对为据])|(?<![\u4e00-\u9fff]))"
    r"(?![在向于从由经对为据年月日的和与及是])"
    r"(?P<place>[\u4e00-\u9fff]{1,9}?(?:" + _SUFFIX_RE + r"))"
)
_SESSION_RE = re.compile(
    r"(?:" + _PLACE + r")?第(?P<term>[" + CN_NUM + r"\d]{1,3})届(?P<national>全国)?人民代表大会"
    r"(?:第(?P<sitting>[" + CN_NUM + r"\d]{1,3})次会议)?"
)
_ISSUED_RE = re.compile(r"关于印发《?(?P<title>[^《》，。\n]{4,80}?)》?的通知")
_ISSUING_OFFICE_RE = re.compile(r"^" + _PLACE + r"人民政府(?:文件|办公厅文件)?$")
_DOC_NUMBER_RE = re.compile(r"〔\d{4}〕\s*\d+\s*号")
_OFFICIAL = r"(?:代?(?:市长|省长|主席|区长|县长|州长|旗长|盟长))"
_LOCAL_BYLINE_RE = re.compile(r"^" + _PLACE + r"(?:人民政府)?" + _OFFICIAL + r"\s*[\u4e00-\u9fff·]{2,10}$")
_NATIONAL_BYLINE_RE = re.compile(r"^(?:国务院)?代?总理\s*[\u4e00-\u9fff·]{2,10}$")
_TITLE_WORDS_RE = re.compile(r"报告|规划|纲要|计划|公报|通知|意见|决定|办法|方案|条例|白皮书")
_REPORTER_RE = re.compile(r"^[\u4e00-\u9fff]{0,10}记者\s*[\u4e00-\u9fff]{2,3}(?:\s+[\u4e00-\u9fff]{2,3})*$")
_NEWS_RE = re.compile(r"本报讯|新华社[^。\n]{0,12}电|（记者[^）]{1,20}）|通讯员\s*[\u4e00-\u9fff]{2,3}")

# The speaker: who the report is made on behalf of, in the opening.
_NATIONAL_SPEAKER_RE = re.compile(
    r"代表(?:中华人民共和国)?(?:国务院|中央人民政府)|受[^，。]{0,10}国务院的?委托|根据国务院的决定|国务院总理|"
    r"(?<![市省区县州])总理|全国人民代表大会"
)
_LOCAL_SPEAKER_RE = re.compile(
    r"代表(?:[\u4e00-\u9fff]{1,9}?)?(?P<level>市|省|自治区|区|县|州)人民政府|(?P<level2>市|省|区|县)人民代表大会"
)
# What only a national report says (a city's says 全市各族人民 and has no foreign policy).
_NATIONAL_WORDS_RE = re.compile(r"全国各族人民|我国各族人民|外交政策|对外政策|国防建设")
# Names jieba tags as places that are not the city or province a report is about.
_NOT_LOCAL_WORDS = "中国 中华 全国 我国 祖国 城镇 新建 美丽 中欧 中原 黄河 长江 大国"
_NOT_LOCAL = frozenset(_NOT_LOCAL_WORDS.split())
_REPORT_RE = re.compile(
    r"代表[^，。]{0,12}(?:国务院|人民政府)[^。]{0,80}报告|作政府工作报告|报告政府工作|向大会报告工作|"
    r"向大会(?:提出|作)[^。]{0,80}报告|政府工作报告"
)

_REVIEW_WORDS = r"回顾|成就|成绩|胜利|总结|完成|收官|以来|时期内|期间"
_FIVE_YEARS_RE = re.compile(
    r"过去(?:的)?(?:一年和)?五年|五年来|本届政府(?:任期|[^。]{0,12}五年)|以来的五年|"
    r"已经(?:整整)?(?:过去了)?五年|五年(?:政府)?工作回顾"
)
_ONE_YEAR_RE = re.compile(r"过去(?:的)?一年|去年|一年来|上一年|刚刚过去的一年")
_THIS_YEAR_RE = re.compile(r"今年|本年度")
_REVIEWED_YEAR_RE = re.compile(
    r"刚刚过去的(?P<a>\d{4})年|(?P<b>\d{4})年(?:国内|政府)?工作(?:的)?回顾|(?P<c>\d{4})年是[^。！？\n]{2,60}?的一年"
)
_CURRENT_YEAR_RE = re.compile(
    r"(?P<a>\d{4})年是[^。！？\n]{2,40}?之年|"
    r"(?P<b>\d{4})年(?:政府|重点)?工作(?:的)?(?:总体要求|基本方针|主要任务|安排|任务)|"
    r"(?P<c>\d{4})年(?:经济社会发展|国民经济和社会发展|国民经济)?(?:的)?(?:总体要求|主要预期目标|主要目标|重点工作)"
)
_NEXT_YEARPLAN_RE = re.compile(r"明年[^。，；\n]{0,10}?的?(?:主要任务|计划安排|国民经济计划|工作安排)")
# 今年是实行“七五”计划的头一年 / 今年是中华人民共和国成立三十五周年: this year, counted from a known start
_THIS_YEAR_OFPLAN_RE = re.compile(
    r"今年是(?:实行|实施|执行)?(?P<plan>[^。，\n]{1,12}?)(?:计划|规划)的(?:第(?P<n>[一二三四五])|头一)年"
)
_THIS_YEAR_ANNIVERSARY_RE = re.compile(
    r"今年[^。，\n]{0,8}?是中华人民共和国成立(?P<n>[一二三四五六七八九十]{1,4})周年"
)
# Headings only a work report has (2020年政府工作总体要求, 2023年工作回顾)
_REPORT_HEADING_RE = re.compile(r"\d{4}年(?:政府)?工作(?:的)?(?:总体要求|回顾)|过去一年(?:和五年)?工作回顾")


@dataclass
class _Found:
    """A value and where it was read."""

    value: str
    source: str


@dataclass
class _Reading:
    """What the opening of a text says, before it is turned into fields."""

    header: list[str] = field(default_factory=list)  # lines above the greeting, as written (simplified)
    opening: str = ""  # header + the first OPENING_CHARS after the greeting
    head: str = ""  # the first HEAD_CHARS, simplified, digits folded, years in Arabic numerals
    full: str = ""  # the whole text, prepared the same way (news bylines, 明年的主要任务)
    after_greeting: str = ""  # the first OPENING_CHARS after the greeting
    issued: str | None = None  # the document a 关于印发…的通知 issues
    date_line: dt.date | None = None
    date_line_rest: str = ""


def _arabic_years(text: str) -> str:
    """一九五八年 / 二〇三五年 -> 1958年 / 2035年 (only plausible years)."""

    def conv(m: re.Match[str]) -> str:
        y = int("".join(str(CN_DIGITS[c]) for c in m.group(1)))
        return str(y) if 1800 <= y <= 2200 else m.group(1)

    return re.sub(r"([〇零○Ｏ一二三四五六七八九]{4})(?=\s*年)", conv, text)


def _display(text: str) -> str:
    """Simplified characters, half-width digits, no spaces inside numbers ("1 9 9 3 年" -> "1993年")."""
    return re.sub(r"(?<=\d)[ \t]+(?=[\d年月日])", "", to_simplified(text).translate(_FOLD))


def _prepare(text: str) -> str:
    """The form patterns are matched on: _display with years in Arabic numerals."""
    return _arabic_years(_display(text))


def _date(m: re.Match[str]) -> dt.date | None:
    month, day = cn_number(m.group("m")), cn_number(m.group("d"))
    if month is None or day is None:
        return None
    try:
        return dt.date(int(m.group("y")), month, day)
    except ValueError:
        return None


def find_dates(text: str) -> list[dt.date]:
    """Dates written as 2021年1月30日, 二〇二四年二月三日 or １９５７年６月２６日, in order of appearance."""
    return [d for m in _DATE_RE.finditer(_prepare(text)) if (d := _date(m)) is not None]


def _split_title_block(line: str) -> list[str]:
    """A title, date line and byline that cleaning ran together, as separate lines."""
    if "。" in line or len(line) > 150:
        return [line]
    line = re.sub(r"(?<=\S)(?=——)", "\n", line)
    line = re.sub(
        r"(?<=[^\d\n—\-〇零○一二三四五六七八九])(?=" + _YEAR + r"\s*年[^。\n]{2,10}日\s*在)", "\n", line
    )
    line = re.sub(r"(?<=[会大]议上)(?=[^\s，。；、,])|(?<=大会上)(?=[^\s，。；、,])", "\n", line)
    return [p.strip() for p in line.split("\n") if p.strip()]


def _read(text: str) -> _Reading:
    """Split the opening into the title block above the greeting and the text after it."""
    display = _display(text[:HEAD_CHARS])
    r = _Reading(head=_arabic_years(display), full=_prepare(text))
    lines: list[str] = []
    for raw in display.splitlines():
        ln = raw.strip().lstrip("#").strip()
        if ln and not _WATERMARK_RE.search(ln):
            lines.extend(_split_title_block(ln) if len(lines) < HEADER_LINES else [ln])
    greeting = next((i for i, ln in enumerate(lines[:HEADER_LINES]) if _GREETING_RE.match(ln)), None)
    if greeting is not None:
        r.header, body = lines[:greeting], lines[greeting:]
    else:
        # no greeting: the title block is the run of short, unpunctuated lines at the top
        n = 0
        while (
            n < min(len(lines), HEADER_LINES) and len(lines[n]) <= 60 and not re.search(r"[。！？]", lines[n])
        ):
            n += 1
        r.header, body = lines[:n], lines[n:]
    r.issued = next((m.group("title").strip() for m in _ISSUED_RE.finditer(display[:2000])), None)
    r.opening = _arabic_years("\n".join(r.header) + "\n" + "\n".join(body)[:OPENING_CHARS])
    r.after_greeting = _arabic_years("\n".join(body)[:OPENING_CHARS])
    for ln in lines[:HEADER_LINES]:
        m = _DATE_LINE_RE.match(_arabic_years(ln))
        if m is None:
            continue
        rest = m.group("rest").strip()
        if rest and not (rest.startswith(("在", "于")) and re.search(r"会议|大会", rest)):
            continue  # a sentence that starts with a date, not a date line
        d = _date(m)
        if d is not None:
            r.date_line, r.date_line_rest = d, rest
            break
    return r


# ---------------------------------------------------------------- who and where


_AUTONOMOUS_REGIONS = {"内蒙古", "广西", "西藏", "宁夏", "新疆"}
_MUNICIPALITIES = {"北京", "天津", "上海", "重庆"}


def _frequent_place(text: str) -> str | None:
    """The city or province a text keeps naming, with its suffix (for texts whose title block is lost).

    The names are the genre lexicon's list of China's provinces and cities (qa/text/data/places.toml);
    a city gets 市, a province 省 (自治区, or 市 for the four municipalities).
    """
    from qa.text.lexicon import genre_lexicon

    lex = genre_lexicon()
    counts = Counter({p: text.count(p) for p in lex.places_in(text)})
    for name, n in counts.most_common(3):
        if n < 5:
            break
        if name not in lex.provinces or name in _MUNICIPALITIES:
            return f"{name}市"
        return f"{name}自治区" if name in _AUTONOMOUS_REGIONS else f"{name}省"
    return None


def _issuer_and_place(r: _Reading, title_line: str | None, kind: str) -> tuple[_Found | None, _Found | None]:
    """(issuer, place): 国务院 / 全国 for the State Council, <place>人民政府 / <place> for a local government."""
    national = (_Found("国务院", "text"), _Found("全国", "text"))
    if title_line and "国务院" in title_line:
        return _Found("国务院", "title line"), _Found("全国", "title line")
    # a local government names itself: the issuing office or byline, the congress, the title line
    name: _Found | None = None
    for ln in r.header:
        m = _ISSUING_OFFICE_RE.match(ln) or _LOCAL_BYLINE_RE.match(ln)
        if m and m.group("place") not in NOT_PLACES:
            name = _Found(m.group("place"), "text")
            break
    national_session = False
    for m in _SESSION_RE.finditer(r.date_line_rest + "\n" + r.opening):
        if m.group("national"):
            national_session = True
        elif name is None and m.group("place") and m.group("place") not in NOT_PLACES:
            name = _Found(m.group("place"), "text")
        break
    if name is None and title_line:
        m2 = re.match(
            _PLACE + r"(?:人民政府|政府工作报告|国民经济和社会发展)", re.sub(r"^\d{4}年", "", title_line)
        )
        if m2 and m2.group("place") not in NOT_PLACES:
            name = _Found(m2.group("place"), "title line")
    local_speaker = _LOCAL_SPEAKER_RE.search(r.opening) is not None
    if name is None:
        if (
            any(_NATIONAL_BYLINE_RE.match(ln) for ln in r.header)
            or national_session
            or _NATIONAL_SPEAKER_RE.search(r.opening)
        ):
            return national
        if not local_speaker and _NATIONAL_WORDS_RE.search(r.head):
            return national
        # a text without its title block (a newspaper reprint): the place it keeps naming
        found = _frequent_place(r.head)
        if found is None:
            return None, None
        name = _Found(found, "text")
    governed = kind in ("政府工作报告", "五年规划纲要") or local_speaker
    return (_Found(f"{name.value}人民政府", name.source) if governed else None), name


# ---------------------------------------------------------------- when


def _session_year(m: re.Match[str]) -> int | None:
    """The year a session of the National People's Congress met (the first sitting when none is named)."""
    if not m.group("national"):
        return None
    term = cn_number(m.group("term"))
    sitting = cn_number(m.group("sitting")) if m.group("sitting") else 1
    if term is None or sitting is None:
        return None
    return NPC_SESSIONS.get((term, sitting))


def _congress_year(r: _Reading) -> int | None:
    """The year of the national congress session the report is made to, read from the opening."""
    if r.date_line_rest:
        m = _SESSION_RE.search(r.date_line_rest)
        if m and (y := _session_year(m)):
            return y
    op = r.opening
    for m in _SESSION_RE.finditer(op):
        before, after = op[max(0, m.start() - 2) : m.start()], op[m.end() : m.end() + 2]
        current = (
            (before.endswith("向") and after[:1] in ("作", "提", "报", "，", ","))
            or (before.endswith("在") and after.startswith("上"))
            or before.endswith(("我们", "本次", "这次"))
        )
        if current and (y := _session_year(m)):
            return y
    for m in _SESSION_RE.finditer(op):
        # "从去年9月第五届…第三次会议到现在" / "…第一次会议以来的五年": a past session and the time since
        y = _session_year(m)
        if y is None or not m.group("sitting"):
            continue
        after = op[m.end() : m.end() + 40]
        since = re.match(r"(?:闭幕)?[，,]?(?:以来|到)", after)
        if not since:
            continue
        if "去年" in op[max(0, m.start() - 12) : m.start()]:
            return y + 1
        span = re.search(r"(?<!\d)([一两二三四五]|\d)年", after[since.end() :])
        if span:
            n = cn_number(span.group(1))
            if n:
                return y + n
    # "本届政府从1993年3月就职，到现在已经五年了": a start and the time since
    m2 = re.search(r"(?:从|自)(\d{4})年[^，。]{0,8}[，,]?(?:到现在|至今)[^。]{0,6}?([一两二三四五])年", op)
    if m2 and (n := cn_number(m2.group(2))):
        return int(m2.group(1)) + n
    # "过去五年的回顾 第五届全国人民代表大会期间…": the first sitting of the next congress
    if _FIVE_YEARS_RE.search(op):
        m3 = re.search(r"第([" + CN_NUM + r"\d]{1,3})届全国人民代表大会(?:期间|任期)", op)
        if m3 and (term := cn_number(m3.group(1))):
            return NPC_SESSIONS.get((term + 1, 1))
    return None


def _file_name_year(file_name: str) -> int | None:
    m = re.search(r"(?<!\d)(19[4-9]\d|20\d\d)(?!\d)", Path(file_name).stem)
    return int(m.group(1)) if m else None


def _subject(r: _Reading) -> str:
    """The sentence that says what the report is (…提出关于一九五八年度国民经济计划的报告)."""
    for sentence in re.split(r"[。！？]", r.after_greeting[:600]):
        if re.search(r"报告|议案", sentence) and re.search(r"关于|作|提出|报告", sentence):
            return sentence
    return ""


def _subject_years(subject: str, year: int | None) -> tuple[set[int], set[int]]:
    """Years the subject names: (reviewed, planned); 决算 is a review, 计划 and 预算 are plans."""
    back: set[int] = set()
    plan: set[int] = set()
    rest = subject
    for m in re.finditer(r"(\d{4})年(?:到|至|—|－|-)(\d{4})年", subject):
        a, b = int(m.group(1)), int(m.group(2))
        if year and a <= b and b - max(a, year) <= 12:
            plan.update(range(max(a, year), b + 1))
        rest = rest.replace(m.group(0), "")
    for m in re.finditer(r"(?<!\d)(\d{4})(?!\d)(?=年|、\d{4}年|和\d{4}年)", rest):
        y = int(m.group(1))
        if not 1900 <= y <= 2200:
            continue
        tail = rest[m.end() : m.end() + 12]
        if "决算" in tail.split("和")[0]:
            back.add(y)
        elif year is None or y >= year:
            plan.add(y)
        else:
            back.add(y)
    return back, plan


def _weak_year(r: _Reading, subject: str) -> int | None:
    """The year delivered as the report's own words put it: 2023年工作回顾 -> 2024, 关于1958年度计划 -> 1958."""
    votes: Counter[int] = Counter()
    for m in _REVIEWED_YEAR_RE.finditer(r.opening):  # a review outweighs a year called 开局之年 inside it
        votes[int(m.group("a") or m.group("b") or m.group("c")) + 1] += 2
    for m in _CURRENT_YEAR_RE.finditer(r.head):
        votes[int(m.group("a") or m.group("b") or m.group("c"))] += 1
    for m in _THIS_YEAR_OFPLAN_RE.finditer(r.full):
        named = plans_named(m.group("plan") + "计划")
        if named:
            votes[named[0][1][0] + (cn_number(m.group("n") or "一") or 1) - 1] += 2
    for m in _THIS_YEAR_ANNIVERSARY_RE.finditer(r.full):
        if n := cn_number(m.group("n")):
            votes[1949 + n] += 2
    back, plan = _subject_years(subject, None)
    for y in plan:
        votes[y] += 1
    for y in back:
        votes[y + 1] += 1
    if not votes:
        return None
    return min(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0]


# ---------------------------------------------------------------- what it covers


def _report_years(r: _Reading, year: int, subject: str) -> tuple[set[int], set[int], bool]:
    """looks_back and plans_for of a work report delivered in `year`, and whether the text said so."""
    back, plan = {year - 1}, {year}
    said = False
    s_back, s_plan = _subject_years(subject, year)
    back |= {y for y in s_back if y < year}
    plan |= s_plan
    for _m, period in plans_named(subject):
        plan.update(period)
        said = True
    said = said or bool(s_back or s_plan)
    op = r.opening
    if _ONE_YEAR_RE.search(op) or _THIS_YEAR_RE.search(op):
        said = True
    for m in _REVIEWED_YEAR_RE.finditer(op):
        y = int(m.group("a") or m.group("b") or m.group("c"))
        if y < year:
            back.add(y)
            said = True
    for m in re.finditer(r"(\d{4})年(?:要|将|的主要任务)", op):
        if int(m.group(1)) == year + 1:  # a report delivered late in the year that sets next year's tasks
            plan.add(year + 1)
            said = True
    for ln in op.splitlines():
        rank = heading_rank(ln)
        if rank is None or rank >= TITLE_RANK or not re.search(_REVIEW_WORDS, ln):
            continue
        for m in re.finditer(r"(\d{4})年", ln):
            if int(m.group(1)) < year:
                back.add(int(m.group(1)))
                said = True
        for _m, period in plans_named(ln):
            if period[-1] < year:
                back.update(period)
                said = True
    if _FIVE_YEARS_RE.search(op) or len(_FIVE_YEARS_RE.findall(r.head)) >= 2:
        back.update(range(year - 5, year))
        said = True
    for _m, period in plans_named(r.head):
        if period[-1] == year - 1:  # the plan that has just ended is reviewed in the first report after it
            back.update(period)
            said = True
    if _NEXT_YEARPLAN_RE.search(r.full):
        plan.add(year + 1)
        said = True
    return back, plan, said


# ---------------------------------------------------------------- the title and kind


def _title_line(r: _Reading) -> str | None:
    """The document's title line in the title block, or the outline a 印发 notice issues."""
    if r.issued:
        return r.issued
    for ln in r.header:
        if (
            4 <= len(ln) <= 60
            and _TITLE_WORDS_RE.search(ln)
            and not _SENTENCE_PUNCT_RE.search(ln)
            and not ln.endswith(("：", ":"))
            and not _DATE_LINE_RE.match(_arabic_years(ln))
            and not ln.startswith(("——", "（上接", "(上接"))
            and not _DOC_NUMBER_RE.search(ln)
            and not _LOCAL_BYLINE_RE.match(ln)
            and not _NATIONAL_BYLINE_RE.match(ln)
            and not _ISSUING_OFFICE_RE.match(ln)
            and (heading_rank(ln) is None or heading_rank(ln) == TITLE_RANK)
            and not re.search(r"第[" + CN_NUM + r"\d]{1,3}次会议", ln)
        ):
            return ln
    return None


def _is_news(r: _Reading) -> bool:
    if _NEWS_RE.search(r.head):
        return True
    return any(len(ln) <= 24 and _REPORTER_RE.match(ln.strip()) for ln in r.full.splitlines())


def _kind(r: _Reading, title_line: str | None, file_name: str) -> _Found:
    """政府工作报告 | 五年规划纲要 | 新闻稿 | 其他, from the title line, the text, then the file name."""
    if title_line:
        if (
            re.search(r"五年(?:规划|计划)", title_line)
            and "纲要" in title_line
            or "远景目标纲要" in title_line
        ):
            return _Found("五年规划纲要", "title line")
        if "工作报告" in title_line:
            return _Found("政府工作报告", "title line")
    greeted = any(_GREETING_RE.match(ln) for ln in r.opening.splitlines()[: len(r.header) + 2])
    if greeted and _REPORT_RE.search(r.opening):
        return _Found("政府工作报告", "text")
    if _is_news(r):
        return _Found("新闻稿", "text")
    if _REPORT_RE.search(r.opening) and (greeted or _NATIONAL_SPEAKER_RE.search(r.opening)):
        return _Found("政府工作报告", "text")
    if _REPORT_HEADING_RE.search(r.full):
        return _Found("政府工作报告", "text")
    name = Path(file_name).stem.lower()
    if re.search(r"work[-_ ]?report|工作报告", name):
        return _Found("政府工作报告", "file name")
    if re.search(r"five[-_ ]?year[-_ ]?plan|规划纲要|五年规划", name):
        return _Found("五年规划纲要", "file name")
    if re.search(r"news|新闻", name):
        return _Found("新闻稿", "file name")
    return _Found("其他", "text")


def _short_issuer(issuer: _Found | None, place: _Found | None) -> str:
    """How a title names the issuer: 国务院 for the State Council, the place for a local government."""
    if issuer is not None and issuer.value == "国务院":
        return "国务院"
    if place is not None and place.value != "全国":
        return str(place.value)
    return ""


def _title(
    title_line: str | None,
    kind: str,
    year: int | None,
    short: str,
    r: _Reading,
    file_name: str,
) -> tuple[str, str]:
    """(title, source): the title line made specific, or a title built from year, issuer and kind."""
    y = f"{year}年" if year else ""
    if title_line:
        t = title_line
        generic = re.fullmatch(r"(?:\d{4}年?)?\s*(?:政府)?工作报告(?P<note>[（(][^）)]{1,8}[）)])?", t)
        if kind == "政府工作报告" and generic:
            t = f"{y}{short}政府工作报告{generic.group('note') or ''}"
        elif year and not re.search(r"\d{4}", t) and "工作报告" in t:
            t = f"{y}{t}"
        return t, "title line"
    if kind == "政府工作报告":
        return f"{y}{short}政府工作报告", "text"
    if kind == "新闻稿":
        about = "政府工作报告相关报道" if "政府工作报告" in r.full else "新闻稿"
        return f"{y}{short}{about}", "text"
    if kind == "五年规划纲要":
        return f"{y}{short}五年规划纲要", "text"
    for ln in r.header:
        if (
            4 <= len(ln) <= 40
            and not _SENTENCE_PUNCT_RE.search(ln)
            and not _DATE_LINE_RE.match(_arabic_years(ln))
        ):
            return ln, "text"
    return re.sub(r"[-_]+", " ", Path(file_name).stem).strip() or file_name, "file name"


# ---------------------------------------------------------------- all together


def infer_info(file_name: str, text: str) -> DocumentInfo:
    """Metadata read from a document's opening and file name (guessed=True, sources per field)."""
    r = _read(text)
    sources: dict[str, str] = {}
    title_line = _title_line(r)
    kind = _kind(r, title_line, file_name)
    issuer, place = _issuer_and_place(r, title_line, kind.value)
    subject = _subject(r)

    delivered: str | None = None
    year: int | None = None
    if r.date_line is not None:
        year, delivered, sources["year"] = r.date_line.year, r.date_line.isoformat(), "text"
    elif (y := _congress_year(r)) is not None:
        year, sources["year"] = y, "text"
    elif title_line and (m := re.search(r"(?<!\d)(\d{4})(?:年|\s*政府工作报告)", _arabic_years(title_line))):
        year, sources["year"] = int(m.group(1)), "title line"
    elif (y := _file_name_year(file_name)) is not None:
        year, sources["year"] = y, "file name"
    elif (y := _weak_year(r, subject)) is not None:
        year, sources["year"] = y, "text"
    if year is not None:
        delivered = delivered or str(year)
        sources["delivered"] = sources["year"]

    looks_back: list[int] = []
    plans_for: list[int] = []
    if kind.value == "五年规划纲要":
        named = _arabic_years(title_line or r.head[:500])
        periods = [p for _m, p in plans_named(named)]
        plan = {y for p in periods for y in p}
        plan |= {int(m.group(1)) for m in re.finditer(r"(\d{4})年远景目标", named)}
        if periods:
            first = min(y for p in periods for y in p)
            if any(p[-1] == first - 1 for _m, p in plans_named(r.head)):
                looks_back = list(range(first - 5, first))
                sources["looks_back"] = "text"
        plans_for = sorted(plan)
        if plans_for:
            sources["plans_for"] = "title line" if title_line else "text"
    elif year is not None and kind.value == "政府工作报告":
        back, plan, said = _report_years(r, year, subject)
        looks_back, plans_for = sorted(back), sorted(plan)
        sources["looks_back"] = sources["plans_for"] = "text" if said else sources["year"]
    elif year is not None and kind.value == "新闻稿":
        plans_for = [year]  # news of a report is news of its plans; what it reviews is the report's business
        sources["plans_for"] = sources["year"]

    title, sources["title"] = _title(title_line, kind.value, year, _short_issuer(issuer, place), r, file_name)
    sources["kind"] = kind.source
    if issuer is not None:
        sources["issuer"] = issuer.source
    if place is not None:
        sources["place"] = place.source
    order = ("title", "issuer", "place", "kind", "delivered", "year", "looks_back", "plans_for")
    return DocumentInfo(
        file=file_name,
        title=title,
        kind=kind.value,
        delivered=delivered,
        looks_back=looks_back,
        plans_for=plans_for,
        year=year,
        guessed=True,
        issuer=issuer.value if issuer is not None else None,
        place=place.value if place is not None else None,
        sources={k: sources[k] for k in order if k in sources},
    )
