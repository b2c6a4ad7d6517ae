"""Clean PDF/newspaper extraction noise while keeping a map from every clean character to the original.

The clean text has one logical line per paragraph or heading ("\\n" between them). Decisions:

* hard line breaks are rejoined unless the line ends a sentence (。！？；：…, closing quotes allowed),
  is a heading (第X章 / 一、 / （一） / 1. / 【…】 / 专栏), or is a short title line;
* blank lines are ignored (in these extractions they fall mid-sentence as often as between paragraphs);
* watermark/URL lines, page numbers, running headers (a short line repeated 3+ times, or a
  PDF fake-bold doubled line such as "政府工作报告政府工作报告") are dropped;
* spaces inside CJK text and numbers are removed, a space between two Latin words/numbers is kept;
* half-width , : ; ? ! ( ) next to Chinese become full-width; full-width digits/letters/％ become
  half-width (NFKC only on those, never on CJK punctuation);
* U+FFFD, control and private-use characters are removed;
* a short licence notice at the very end ("本作品……属于公有领域……Public domain") is dropped.

`CleanText.offsets` has len(text) + 1 entries: offsets[i] is the offset in the original text of
clean character i, and offsets[len(text)] is the end of the last used original character. The
original span of clean[a:b] is therefore original[offsets[a] : offsets[b - 1] + 1].
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CleanText",
    "LineIndex",
    "clean_text",
    "is_cjk",
    "line_of",
    "normalize_for_source_check",
]

_SENT_END = "。！？；：…!?;"
_CLOSERS = "”’」』》）)】〕"
_CJK_PUNCT = "，。、；：？！“”‘’「」『』《》（）【】〔〕—…·～"
_CN_NUM = "一二三四五六七八九十百零〇两"

HEADING_RE = re.compile(
    r"^(?:第[" + _CN_NUM + r"\d]{1,4}[篇章节部分]"
    r"|[一二三四五六七八九十]{1,3}、"
    r"|[（(][一二三四五六七八九十]{1,3}[）)]"
    r"|\d{1,2}[.．、](?!\d)"
    r"|[（(]\d{1,2}[）)]"
    r"|专栏\s*\d{0,3}"
    r"|#{1,6}(?=[^#\s])"
    r"|[^。，；！？]{0,8}【[^】]{1,20}】)"
)
_MARKER_RE = re.compile(r"第[" + _CN_NUM + r"\d]{1,4}[篇章节]|专栏\d{0,3}")
_URL_RE = re.compile(
    r"(?:https?://|www\.)[\w./?=&%#:~+-]+|[\w-]+\.(?:com|cn|net|org)(?:/[\w./?=&%#-]*)?", re.I
)
_PROMO_RE = re.compile(r"关注(?:微信)?公众号|扫码关注|扫一扫|更多(?:数据|资料|资讯)尽在|本文来源|转载请注明")
_PAGE_RE = re.compile(
    r"^(?:[-—–·\s]*\d{1,3}[-—–·\s]*|第\s*\d{1,4}\s*页(?:\s*[/，,]?\s*共\s*\d+\s*页)?|\d{1,4}\s*/\s*\d{1,4}|page\s*\d+(?:\s*of\s*\d+)?)$",
    re.I,
)
_DATE_LINE_RE = re.compile(
    r"^(?:\d{4}|[" + _CN_NUM + r"]{4})年[\d" + _CN_NUM + r"]{1,3}月[\d" + _CN_NUM + r"]{1,3}日$"
)
_DOUBLED_RE = re.compile(r"^(?:(.{2,}?)\1|(.)\2)+$")
_GARBAGE = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200d\u2060\ufeff\ue000-\uf8ff]")
# Symbol-font glyphs that Chinese government PDFs extract as unrelated CJK characters; only
# replaced between/before digits, where the intended symbol is unambiguous.
_MISENCODED_BETWEEN_DIGITS = {"暶": ":"}
_MISENCODED_BEFORE_DIGIT = {"曑": "≤"}


def is_cjk(ch: str) -> bool:
    """True for a CJK ideograph (basic block, extension A and compatibility)."""
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF


def _is_chinese_ctx(ch: str) -> bool:
    return bool(ch) and (is_cjk(ch) or ch in _CJK_PUNCT)


def _fullwidth_to_ascii(ch: str) -> str:
    o = ord(ch)
    # Full-width digits, Latin letters and a few symbols; CJK punctuation (，：（）) stays.
    if (
        0xFF10 <= o <= 0xFF19
        or 0xFF21 <= o <= 0xFF3A
        or 0xFF41 <= o <= 0xFF5A
        or ch in "％＋＝／＆＠＃＄＜＞"
    ):
        return unicodedata.normalize("NFKC", ch)
    if ch == "\u3000" or ch == "\xa0":
        return " "
    return ch


@dataclass
class CleanText:
    """Clean text plus offsets (len(text)+1 ints) into the original text."""

    text: str
    offsets: np.ndarray = field(repr=False)
    dropped: dict[int, str] = field(default_factory=dict, repr=False)  # 1-based line -> why it was dropped

    def span_of(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) character span of clean[start:end] (end exclusive)."""
        if end <= start:
            o = int(self.offsets[start])
            return o, o
        return int(self.offsets[start]), int(self.offsets[end - 1]) + 1


class LineIndex:
    """Precomputed line starts of a text, for fast offset -> 1-based line lookups."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(self, offset: int) -> int:
        """1-based line number containing `offset`."""
        return bisect.bisect_right(self.starts, offset)


_LINE_INDEX_CACHE: dict[int, tuple[str, LineIndex]] = {}


def line_of(original_text: str, offset: int) -> int:
    """1-based line of a character offset in `original_text` (line starts cached per text)."""
    key = id(original_text)
    cached = _LINE_INDEX_CACHE.get(key)
    if cached is None or cached[0] is not original_text:
        if len(_LINE_INDEX_CACHE) > 64:
            _LINE_INDEX_CACHE.clear()
        cached = (original_text, LineIndex(original_text))
        _LINE_INDEX_CACHE[key] = cached
    return cached[1].line_of(offset)


def normalize_for_source_check(text: str) -> str:
    """Text reduced for checking clean text against its original: no whitespace, NFKC, noise removed."""
    text = _GARBAGE.sub("", text)
    for a, b in _MISENCODED_BETWEEN_DIGITS.items():
        text = text.replace(a, b)
    for a, b in _MISENCODED_BEFORE_DIGIT.items():
        text = text.replace(a, b)
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", "", text)


@dataclass
class _Seg:
    chars: list[str]
    offs: list[int]
    end_off: int  # original offset just after the segment (its newline or separator)
    raw: str = ""  # the original line, to tell table cells ("… 38.3" / "45") from a wrapped number

    @property
    def text(self) -> str:
        return "".join(self.chars)


def display_width(s: str) -> float:
    return sum(0.5 if ord(c) < 0x2000 else 1.0 for c in s)


_SPACED_DIGIT = re.compile(r"(?<![\d.])\d[ \u3000](?=\d)")
_ADJACENT_DIGITS = re.compile(r"\d(?=\d)")


def is_letter_spaced(line: str) -> bool:
    """True for a line whose numbers are typeset one digit at a time ("1 9 9 7 年国内生产总值达到7 4 7 7 2
    亿元"): many single digits followed by a space and another digit, few digits written together. A
    table row ("6.7 7.0左右", "2020 2025") has numbers of several digits, so its spaces stay."""
    spaced = len(_SPACED_DIGIT.findall(line))
    return spaced >= 3 and spaced > 2 * len(_ADJACENT_DIGITS.findall(line))


def _normalize_segment(line: str, base: int) -> tuple[list[str], list[int]]:
    """In-line normalisation of one original line (without its newline)."""
    chars: list[str] = []
    offs: list[int] = []
    for i, ch in enumerate(line):
        if _GARBAGE.match(ch):
            continue
        ch = _fullwidth_to_ascii(ch)
        if ch in "\t\r\f\v":
            ch = " "
        chars.append(ch)
        offs.append(base + i)
    # mis-encoded symbol glyphs in numeric context
    for i, ch in enumerate(chars):
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        prv = chars[i - 1] if i > 0 else ""
        if ch in _MISENCODED_BETWEEN_DIGITS and prv.isdigit() and nxt.isdigit():
            chars[i] = _MISENCODED_BETWEEN_DIGITS[ch]
        elif ch in _MISENCODED_BEFORE_DIGIT and nxt.isdigit():
            chars[i] = _MISENCODED_BEFORE_DIGIT[ch]
    # whitespace: drop, except a single space between two ASCII alphanumerics (Latin words, numbers)
    letter_spaced = is_letter_spaced(line)
    out_c: list[str] = []
    out_o: list[int] = []
    i = 0
    n = len(chars)
    while i < n:
        ch = chars[i]
        if ch == " ":
            j = i
            while j < n and chars[j] == " ":
                j += 1
            prev = out_c[-1] if out_c else ""
            nxt = chars[j] if j < n else ""
            keep = prev and nxt and prev.isascii() and nxt.isascii() and prev.isalnum() and nxt.isalnum()
            if keep and letter_spaced and prev.isdigit() and nxt.isdigit():
                keep = False  # "1 9 9 7 年…7 4 7 7 2 亿元": one number, typeset with letter spacing
            if not keep and nxt and _MARKER_RE.fullmatch("".join(out_c)):
                keep = True  # "第一章 站在高质量发展新起点": the space after a heading marker stays
            if keep:
                out_c.append(" ")
                out_o.append(offs[i])
            i = j
            continue
        out_c.append(ch)
        out_o.append(offs[i])
        i += 1
    _fix_punct(out_c)
    return out_c, out_o


_HALF_TO_FULL = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}


def _fix_punct(chars: list[str]) -> None:
    """Half-width , : ; ? ! ( ) next to Chinese text become full-width (in place)."""
    open_converted: list[bool] = []
    for i, ch in enumerate(chars):
        if ch not in _HALF_TO_FULL:
            continue
        prv = chars[i - 1] if i > 0 else ""
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if ch == "(":
            conv = _is_chinese_ctx(prv) or _is_chinese_ctx(nxt) or not prv
            open_converted.append(conv)
        elif ch == ")":
            was = open_converted.pop() if open_converted else False
            conv = was or _is_chinese_ctx(prv) or _is_chinese_ctx(nxt)
        else:
            if prv.isdigit() and nxt.isdigit():
                conv = False  # 10:30, 1,000
            else:
                conv = _is_chinese_ctx(prv) or _is_chinese_ctx(nxt)
        if conv:
            chars[i] = _HALF_TO_FULL[ch]


def ends_sentence(s: str) -> bool:
    """True if the line ends with sentence-final punctuation (closing quotes/brackets allowed)."""
    s = s.rstrip(_CLOSERS + " ")
    return bool(s) and s[-1] in _SENT_END


def is_heading_line(s: str) -> bool:
    """True if the line starts with a heading marker (第X章, 一、, （一）, 1., （1）, 【…】, 专栏)."""
    m = HEADING_RE.match(s)
    if not m:
        return False
    if "【" in m.group(0):
        return len(s) <= 40
    return len(s) - m.end() >= 1 or s.startswith("专栏")


def _cjk_ratio(s: str) -> float:
    return sum(1 for c in s if is_cjk(c)) / max(1, len(s))


BYLINE_RE = re.compile(r"(?:记者|通讯员|编辑|来源)[:：]?\s*[\u4e00-\u9fff]{2,4}(?:\s+[\u4e00-\u9fff]{2,4})*$")


def is_title_line(s: str, width: float) -> bool:
    """A short stand-alone title line: no punctuation, mostly Chinese, clearly shorter than the wrap."""
    if not (2 <= len(s) <= 30) or width > 30 or BYLINE_RE.search(s):
        return False
    if any(c in "，。、；：？！,.;:?!" for c in s):
        return False
    return _cjk_ratio(s) >= 0.6


_LICENCE_START = re.compile(r"^(?:本作品|本文|此作品)")
_LICENCE_WORDS = re.compile(r"公有领域|著作权法|版权所有|知识共享|public domain|creative commons", re.I)
_LICENCE_MAX_CHARS = 1200


def licence_footer_start(lines: list[str]) -> int | None:
    """Index of the first line of a trailing licence notice (a web library's "本作品……属于公有领域……
    Public domain"), or None. Only a short block at the very end counts, so body text is never cut."""
    tail = 0
    for i in range(len(lines) - 1, -1, -1):
        tail += len(lines[i])
        if tail > _LICENCE_MAX_CHARS:
            return None
        if _LICENCE_START.match(lines[i]) and _LICENCE_WORDS.search("".join(lines[i:])):
            return i
    return None


def _drop_reason(s: str, counts: Counter[str]) -> str | None:
    if not s:
        return "empty"
    if _PAGE_RE.match(s):
        return "page number"
    if _URL_RE.search(s) and not ends_sentence(s) and len(s) <= 120:
        return "url/watermark"
    if _PROMO_RE.search(s) and len(s) <= 40:
        return "watermark"
    if len(s) >= 4 and _DOUBLED_RE.match(s):
        return "doubled running header"
    if counts[s] >= 3 and len(s) <= 40 and not is_heading_line(s):
        return "repeated line"
    return None


def _split_runin_heading(chars: list[str], offs: list[int], raw_line: str, base: int) -> int | None:
    """Index in chars where a heading ends if the original line separates it from the body by a space."""
    s = "".join(chars)
    if not is_heading_line(s) or "【" in s[:10]:
        return None
    # "（四）改革开放纵深推进，动力活力不断释放 放管服改革持续深化。" -- the space is the separator.
    for m in re.finditer(r"(?<=[\u4e00-\u9fff）)])[ \u3000\t]+(?=[\u4e00-\u9fff“])", raw_line):
        pos = base + m.start()
        if _MARKER_RE.fullmatch(raw_line[: m.start()].strip()):
            continue  # the space after "第一篇" belongs to the heading
        if "。" in raw_line[: m.start()]:
            return None
        if m.start() > 60:
            return None
        # find first clean char after pos
        for k, o in enumerate(offs):
            if o > pos:
                return k if k >= 4 else None
        return None
    return None


# Texts longer than this are cleaned in blocks cut after sentence-ending lines. The cleaner holds a
# Python object per character while it works (~250 bytes each): a 50 MB file cleaned in one piece peaked
# at 2.8 GB; in blocks the working set is bounded by the block, and only the result grows with the file.
_BLOCK_CHARS = 200_000


def clean_text(text: str, progress: Callable[[float], None] | None = None) -> CleanText:
    """Clean extraction noise; return the clean text and the clean->original offset map.

    `progress(fraction)` is called after each block of a long text.
    """
    if len(text) <= 2 * _BLOCK_CHARS:
        return _clean_block(text)
    texts: list[str] = []
    parts: list[np.ndarray] = []
    dropped: dict[int, str] = {}
    start, line_base, last_end = 0, 0, 0  # line_base: lines before `start`
    while start < len(text):
        end = _block_end(text, start)
        block = _clean_block(text[start:end])
        dropped.update({line_base + n: why for n, why in block.dropped.items()})
        line_base += text.count("\n", start, end)
        if block.text:
            if texts:
                # blocks end after a sentence-ending line, where the cleaner keeps the break anyway
                texts.append("\n")
                parts.append(np.asarray([last_end], dtype=np.int64))
            texts.append(block.text)
            parts.append(block.offsets[:-1] + start)
            last_end = int(block.offsets[-1]) + start
        start = end
        if progress is not None:
            progress(end / len(text))
    parts.append(np.asarray([last_end], dtype=np.int64))
    return CleanText("".join(texts), np.concatenate(parts).astype(np.int64, copy=False), dropped)


def _block_end(text: str, start: int) -> int:
    """End of the block starting at `start`: just after a sentence-ending line about _BLOCK_CHARS on."""
    if len(text) - start <= 2 * _BLOCK_CHARS:
        return len(text)
    probe = start + _BLOCK_CHARS
    limit = probe + _BLOCK_CHARS // 2
    first_nl = -1
    while probe < limit:
        nl = text.find("\n", probe, limit)
        if nl < 0:
            break
        if first_nl < 0:
            first_nl = nl
        if ends_sentence(text[text.rfind("\n", start, nl) + 1 : nl].strip()):
            return nl + 1
        probe = nl + 1
    # no sentence end nearby (one endless line, or a table): cut at a line break, else anywhere
    return first_nl + 1 if first_nl >= 0 else limit


def _clean_block(text: str) -> CleanText:
    """clean_text for one block of text."""
    raw_lines: list[tuple[str, int]] = []
    pos = 0
    for line in text.split("\n"):
        raw_lines.append((line, pos))
        pos += len(line) + 1
    segs: list[_Seg] = []
    normed: list[tuple[list[str], list[int], str, int]] = []
    for line, base in raw_lines:
        c, o = _normalize_segment(line, base)
        normed.append((c, o, line, base))
    counts = Counter("".join(c) for c, _, _, _ in normed if c)
    if counts and min(counts.values()) >= 3:
        # every line repeats (one short block pasted three times): there is no body for it to be a header of
        counts.clear()
    watermark_words: set[str] = set()
    dropped: dict[int, str] = {}
    footer = licence_footer_start(["".join(c) for c, _, _, _ in normed])
    for lineno, (c, o, line, base) in enumerate(normed, start=1):
        s = "".join(c)
        reason = "licence notice" if footer is not None and lineno > footer and s else _drop_reason(s, counts)
        if reason is not None:
            if reason != "empty":
                dropped[lineno] = reason
            if reason in ("url/watermark", "watermark"):
                watermark_words.update(re.findall(r"[\u4e00-\u9fff]{4,}", _URL_RE.sub("", s)))
            continue
        cut = _split_runin_heading(c, o, line, base)
        if cut is not None:
            segs.append(_Seg(c[:cut], o[:cut], o[cut - 1] + 1, line))
            segs.append(_Seg(c[cut:], o[cut:], base + len(line), line))
        else:
            segs.append(_Seg(c, o, base + len(line), line))
    # second pass: short lines repeating a dropped watermark's words (e.g. "关注公众号【数据皮皮侠】")
    if watermark_words:
        kept: list[_Seg] = []
        for seg in segs:
            if (
                len(seg.chars) <= 40
                and not ends_sentence(seg.text)
                and any(w in seg.text for w in watermark_words)
            ):
                dropped[text.count("\n", 0, seg.offs[0]) + 1] = "watermark"
            else:
                kept.append(seg)
        segs = kept
    out_c: list[str] = []
    out_o: list[int] = []
    if segs:
        widths = [display_width(s.text) for s in segs]
        local_wrap = _local_wrap(widths)
        joined_len = 0  # length of the current logical line so far
        indented = segs[0].raw.startswith(_PARAGRAPH_INDENT)  # it began with a paragraph indent
        for i, seg in enumerate(segs):
            if i > 0:
                prev = segs[i - 1]
                if _table_numbers(prev.raw, seg.raw, widths[i - 1] < 0.8 * local_wrap[i]):
                    brk = True
                else:
                    # an unindented line after a short indented one: the rest of a broken-off paragraph
                    short_paragraph = indented and joined_len <= _FRAGMENT_CHARS and not seg.raw[:1].isspace()
                    brk = _keep_break(
                        prev.text, seg.text, widths[i - 1], local_wrap[i], joined_len, short_paragraph
                    )
                if brk:
                    out_c.append("\n")
                    out_o.append(prev.end_off)
                    joined_len = 0
                    indented = seg.raw.startswith(_PARAGRAPH_INDENT)
                elif (
                    out_c
                    and out_c[-1].isascii()
                    and out_c[-1].isalpha()
                    and seg.chars
                    and seg.chars[0].isascii()
                    and seg.chars[0].isalpha()
                ):
                    out_c.append(" ")  # wrapped Latin words
                    out_o.append(prev.end_off)
            out_c.extend(seg.chars)
            out_o.extend(seg.offs)
            joined_len += len(seg.chars)
    # punctuation next to a joined boundary may only now have Chinese neighbours
    _fix_punct(out_c)
    end = (out_o[-1] + 1) if out_o else 0
    offsets = np.array([*out_o, end], dtype=np.int64)
    return CleanText("".join(out_c), offsets, dropped)


_FRAGMENT_CHARS = 40  # an indented line this short that does not end a sentence is a broken-off fragment
_PARAGRAPH_INDENT = "\u3000"  # a full-width space: how Chinese text indents a paragraph (PDFs give spaces)

_TABLE_ROW = re.compile(r"[\d%]\s+(?:[-—]+|[\d.]+)(?:\s|$)")
_NUM_END_TOKEN = re.compile(r"(?:^|\s)[-+]?[\d.,%]*\d[\d.,%]*\s*$")
_NUM_START_TOKEN = re.compile(r"^\s*[-+]?[\d.,%]*\d[\d.,%]*(?:\s|$)")


def _table_numbers(raw_a: str, raw_b: str, a_is_short: bool) -> bool:
    """Keep a break after a table row, and between digits when either number is a table cell.

    A number standing alone ("外资 亿美元 38.3" / "45") is a cell only on a line shorter than the
    wrap: a full-width prose line ending in a spaced number ("…企业 12" / "00家") is a wrapped number.
    """
    a, b = raw_a.rstrip(), raw_b.lstrip()
    if _TABLE_ROW.search(a) and not ends_sentence(a):
        return True  # "第二产业 亿元 3604.2 ——— 中高速增长 4759.5 6.4": a table row ends here
    if not (a and b and a[-1].isdigit() and b[0].isdigit()):
        return False
    return a_is_short and bool(_NUM_END_TOKEN.search(a) or _NUM_START_TOKEN.match(b))


def _local_wrap(widths: list[float], radius: int = 8) -> list[float]:
    """Typical line width around each line (75th percentile of its neighbours); layouts change within a file."""
    out: list[float] = []
    for i in range(len(widths)):
        window = sorted(widths[max(0, i - radius) : i + radius + 1])
        out.append(window[min(len(window) - 1, (3 * len(window)) // 4)])
    return out


def _first_clause(s: str) -> str:
    m = re.match(r"[^，。、；：！？,.;:!?]*", s)
    return m.group(0) if m else s


# punctuation that never begins a line of Chinese text: a line starting with one continues the line before
# (web pages extracted with every link on a line of its own: "今年是我国与" / "印度" / "、缅甸共同倡议…")
_NO_LINE_START = "、，。；：！？）」』》”’,.;:!?)"


def _keep_break(a: str, b: str, wa: float, wrap: float, joined_len: int, in_paragraph: bool = False) -> bool:
    """Whether the line break between lines a and b is a real paragraph/heading break.

    `in_paragraph`: the logical line a ends began with a paragraph indent (body text, not a title) and is
    still short, and b has no indent: b continues it ("　　在" / "工资制度和价格改革" / "上迈出重要的步子，…")."""
    if not a or not b:
        return True
    if b[0] in _NO_LINE_START:
        return False
    if ends_sentence(a):
        return True
    if (
        in_paragraph
        and not is_heading_line(a)
        and not is_heading_line(b)
        and not _DATE_LINE_RE.match(b)
        and not b.startswith("——")
    ):
        return False
    if a[-1].isdigit() and (b[0].isdigit() or b[0] in ".%"):
        return False  # a number broken across lines
    if BYLINE_RE.search(a) and len(a) <= 30 or BYLINE_RE.search(b) and len(b) <= 30:
        return True  # a newspaper byline ("郑报全媒体记者 王红") stands alone
    if b.startswith("——") or a.startswith("——") or _DATE_LINE_RE.match(b) or _DATE_LINE_RE.match(a):
        return True
    a_head = is_heading_line(a)
    if is_heading_line(b):
        return True
    if a_head:
        if any(c in a for c in "。；"):
            return False  # run-in heading wrapped mid-paragraph
        if "【" in a and a.rstrip().endswith("】"):
            return True
        first = _first_clause(b)
        if wa >= 0.7 * wrap and len(first) <= 2 and len(first) < len(b):
            return False  # heading wrapped mid-word: "……健康发" + "展。坚持……"
        # a heading continued on a short second line joins it
        return not (
            is_title_line(b, display_width(b))
            and display_width(b) <= 0.6 * wrap
            and joined_len + len(b) <= 40
        )
    if is_title_line(a, wa) and wa <= 0.7 * wrap:
        # a two-line title joins; a title before body text stays its own line
        return not (
            is_title_line(b, display_width(b))
            and joined_len + len(b) <= 40
            and display_width(b) <= 0.6 * wrap
        )
    return False
