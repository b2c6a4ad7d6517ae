"""Heading structure of clean text: every position gets its section path (第三篇 > 第九章 > 第一节 …)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.ingest.clean import BYLINE_RE, display_width, is_heading_line, is_title_line

_NUM = "一二三四五六七八九十百零〇两"

# (rank, pattern); a lower rank is a higher level. A heading pops every open heading of equal or
# lower level, so levels nest whatever subset of them a document uses.
_RANKED: list[tuple[float, re.Pattern[str]]] = [
    # Markdown (and .docx/.html headings, which the loaders write as Markdown): "#" -> 0 … "######" -> 5
    *((n - 1.0, re.compile(r"^#{" + str(n) + r"}(?!#)")) for n in range(1, 7)),
    (0, re.compile(r"^第[" + _NUM + r"\d]{1,4}篇")),
    (1, re.compile(r"^第[" + _NUM + r"\d]{1,4}[章部分]")),
    (2, re.compile(r"^第[" + _NUM + r"\d]{1,4}节")),
    (2.5, re.compile(r"^专栏\s*\d{0,3}")),  # a box inside a 节; its own 一、/1. items nest under it
    (3, re.compile(r"^[一二三四五六七八九十]{1,3}、")),
    (3, re.compile(r"^[^。，；！？【]{1,8}【[^】]{1,20}】$")),  # 关键词【高质量发展】
    (4, re.compile(r"^[（(][一二三四五六七八九十]{1,3}[）)]")),
    (4, re.compile(r"^【[^】]{1,20}】$")),  # 【郑州实践】
    (5, re.compile(r"^\d{1,2}[.．、](?!\d)")),
    (6, re.compile(r"^[（(]\d{1,2}[）)]")),
]
TITLE_RANK = 8.0
MAX_HEADING_CHARS = 40


@dataclass
class Section:
    """A run of clean text [start, end) under one heading path."""

    start: int
    end: int
    path: list[str] = field(default_factory=list)
    heading_end: int | None = None  # end of the heading line when the section starts with one


def heading_rank(line: str) -> float | None:
    """Level of a heading line (0 = 篇 … 6 = （1）, 8 = short title line) or None for body text."""
    if is_heading_line(line):
        for rank, pattern in _RANKED:
            if pattern.match(line):
                return rank
    if (
        is_title_line(line, display_width(line))
        and 4 <= len(line) <= 25
        and not any(c.isdigit() for c in line)
    ):
        return TITLE_RANK
    return None


def heading_text(line: str) -> str:
    """The heading itself: the clause up to the first 。 (run-in headings) or the line end, kept short."""
    m = re.search(r"[。！？；]", line)
    text = line[: m.start()] if m else line
    text = text.strip().lstrip("#").strip().rstrip("：:")
    if len(text) > MAX_HEADING_CHARS:
        text = text[:MAX_HEADING_CHARS] + "…"
    return text


_ITEM_RANKS = (3.0, 4.0, 5.0, 6.0)  # 一、 （一） 1. （1）
_SENTENCE_END = re.compile(r"[。！？；]")


def is_list_item(line: str, rank: float | None, previous_is_item: bool) -> bool:
    """An enumerated item of a running paragraph ("从以下几个方面进行：" / "一、节约能源……；" / "二、……；"
    / "三、……。"), which is body text, not a heading: it ends with ；, or it is the one-sentence last
    item after such an item."""
    if rank not in _ITEM_RANKS:
        return False
    body = line.rstrip()
    if body.endswith(("；", ";")):
        return True
    return previous_is_item and body.endswith("。") and len(_SENTENCE_END.findall(body)) == 1


def find_sections(clean: str) -> list[Section]:
    """Split clean text into contiguous sections covering it, each with its heading path."""
    sections: list[Section] = []
    stack: list[tuple[float, str]] = []
    cur_start = 0
    cur_path: list[str] = []
    cur_heading_end: int | None = None
    pos = 0
    previous_is_item = False
    for line in clean.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        stripped = line.strip()
        rank = heading_rank(stripped) if stripped else None
        item = is_list_item(stripped, rank, previous_is_item)
        previous_is_item = item
        if rank is None or item:
            if BYLINE_RE.search(stripped) and len(stripped) <= 30:
                stack.clear()  # a byline ends a newspaper article; what follows is another one
            continue
        if start > cur_start:
            sections.append(Section(cur_start, start, list(cur_path), cur_heading_end))
        while stack and stack[-1][0] >= rank:
            stack.pop()
        stack.append((rank, heading_text(stripped)))
        cur_start = start
        cur_path = [h for _, h in stack]
        # A stand-alone heading line is not body text; a run-in heading ("（一）…。坚持…") is.
        standalone = heading_text(stripped) == stripped.lstrip("#").strip().rstrip("：:")
        cur_heading_end = min(end + 1, len(clean)) if standalone else None
    if len(clean) > cur_start or not sections:
        sections.append(Section(cur_start, len(clean), list(cur_path), cur_heading_end))
    return sections
