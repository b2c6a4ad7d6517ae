"""documents/catalog.toml: title, kind, dates and years of each file; guessed from the text when missing.

Format (one table per file name)::

    [documents."2024-zhengzhou-government-work-report.txt"]
    title = "2024年郑州市政府工作报告"
    kind = "政府工作报告"
    delivered = 2024-02-03      # a TOML date, or "2024" / "2024-02" as a string
    looks_back = [2023]
    plans_for = [2024]
    year = 2024

    [documents."CORPUS.md"]
    skip = true                 # a file in documents/ that is not a document
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.types import DocumentInfo

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.toml"
KINDS = ("政府工作报告", "五年规划纲要", "新闻稿", "其他")

_CN_DIGIT = {
    "〇": 0,
    "零": 0,
    "○": 0,
    "Ｏ": 0,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_DATE_ARABIC = re.compile(r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_DATE_CHINESE = re.compile(
    r"([〇零○一二三四五六七八九]{4})年([一二三四五六七八九十]{1,2})月([一二三四五六七八九十]{1,3})日"
)
_TITLE_WORDS = ("政府工作报告", "规划", "纲要", "报告", "通知", "意见", "决定", "公报")


@dataclass
class Catalog:
    """Parsed catalog: metadata per file, and files marked `skip = true`."""

    infos: dict[str, DocumentInfo] = field(default_factory=dict)
    skip: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def read_catalog(documents_dir: Path) -> Catalog:
    """Read documents_dir/catalog.toml (an absent catalog is an empty one); QAError if malformed."""
    path = Path(documents_dir) / CATALOG_NAME
    cat = Catalog()
    if not path.exists():
        return cat
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise QAError(f"The catalog {path} is not valid TOML ({exc}); fix it or delete it.") from exc
    entries = data.get("documents", {})
    if not isinstance(entries, dict):
        raise QAError(f'The catalog {path} must contain [documents."<file name>"] tables.')
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise QAError(f"The catalog {path}: entry '{name}' must be a table.")
        if entry.get("skip"):
            cat.skip.add(name)
            continue
        if not (Path(documents_dir) / name).exists():
            msg = f"catalog.toml names '{name}', which is not in {documents_dir}; the entry is ignored."
            log.warning(msg)
            cat.warnings.append(msg)
            continue
        cat.infos[name] = _info_from_entry(path, name, entry)
    return cat


def load_catalog(documents_dir: Path) -> dict[str, DocumentInfo]:
    """Metadata of the catalogued files that exist in documents_dir (skipped files excluded)."""
    return read_catalog(documents_dir).infos


def _years(path: Path, name: str, key: str, value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return list(value)
    raise QAError(f"The catalog {path}: '{name}'.{key} must be a year or a list of years, not {value!r}.")


def _info_from_entry(path: Path, name: str, entry: dict[str, Any]) -> DocumentInfo:
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip():
        raise QAError(f"The catalog {path}: entry '{name}' needs a non-empty title.")
    delivered = entry.get("delivered")
    if isinstance(delivered, dt.date):
        delivered_s: str | None = delivered.isoformat()
    elif delivered is None or isinstance(delivered, str | int):
        delivered_s = str(delivered) if delivered is not None else None
    else:
        raise QAError(f"The catalog {path}: '{name}'.delivered must be a date like 2024-02-03.")
    year = entry.get("year")
    if year is None and delivered_s:
        year = int(delivered_s[:4])
    if year is not None and not isinstance(year, int):
        raise QAError(f"The catalog {path}: '{name}'.year must be an integer.")
    return DocumentInfo(
        file=name,
        title=title.strip(),
        kind=str(entry.get("kind", "其他")),
        delivered=delivered_s,
        looks_back=_years(path, name, "looks_back", entry.get("looks_back")),
        plans_for=_years(path, name, "plans_for", entry.get("plans_for")),
        year=year,
        guessed=False,
    )


def _cn_number(s: str) -> int:
    """一 -> 1, 十 -> 10, 十二 -> 12, 二十三 -> 23 (month/day numerals)."""
    if "十" in s:
        tens, _, ones = s.partition("十")
        return (_CN_DIGIT.get(tens, 1) if tens else 1) * 10 + (_CN_DIGIT.get(ones, 0) if ones else 0)
    return _CN_DIGIT.get(s, 0)


def find_dates(text: str) -> list[dt.date]:
    """Dates written as 2021年1月30日 or 二〇二四年二月三日, in order of appearance."""
    found: list[tuple[int, dt.date]] = []
    for m in _DATE_ARABIC.finditer(text):
        try:
            found.append((m.start(), dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))))
        except ValueError:
            continue
    for m in _DATE_CHINESE.finditer(text):
        try:
            y = int("".join(str(_CN_DIGIT[c]) for c in m.group(1)))
            found.append((m.start(), dt.date(y, _cn_number(m.group(2)), _cn_number(m.group(3)))))
        except (KeyError, ValueError):
            continue
    return [d for _, d in sorted(found)]


def guess_info(file_name: str, text: str) -> DocumentInfo:
    """Metadata guessed from a file's opening: title line, delivery date, kind and years (guessed=True)."""
    head = text[:3000]
    lines = [ln.strip().lstrip("#").strip() for ln in head.splitlines() if ln.strip().lstrip("#").strip()]
    title = ""
    for ln in lines[:20]:
        if (
            len(ln) <= 40
            and any(w in ln for w in _TITLE_WORDS)
            and not ln.startswith("——")
            and not re.search(r"[，。；、,;]", ln)
        ):
            title = ln
            break
    if not title:
        # a title line reads like a title: no sentence punctuation, not a continuation "（上接一版）"
        title = next(
            (
                ln
                for ln in lines[:10]
                if 4 <= len(ln) <= 40
                and not re.search(r"[，。；：、“”,;]", ln)
                and not ln.startswith(("（", "("))
            ),
            re.sub(r"[-_]+", " ", Path(file_name).stem).strip() or file_name,
        )
    dates = find_dates(head)
    delivered = dates[0] if dates else None
    year: int | None = delivered.year if delivered else None
    if year is None:
        m = re.search(r"(?<!\d)((?:19|20)\d{2})(?!\d)", file_name) or re.search(r"((?:19|20)\d{2})年", head)
        year = int(m.group(1)) if m else None
    probe = title + head[:500]
    name = file_name.lower()
    if "政府工作报告" in probe or "work-report" in name or "工作报告" in name:
        kind = "政府工作报告"
    elif "五年规划" in probe and "纲要" in probe or "five-year-plan" in name or "规划" in name:
        kind = "五年规划纲要"
    elif re.search(r"记者|新闻|讯）|报道", head[:1500]):
        kind = "新闻稿"
    else:
        kind = "其他"
    looks_back: list[int] = []
    plans_for: list[int] = []
    if year is not None and kind == "政府工作报告":
        looks_back, plans_for = [year - 1], [year]
        if year % 5 == 1:  # the first report of a five-year plan period also reviews the last one
            looks_back = sorted({year - 1, *range(year - 5, year)})
    elif year is not None and kind == "五年规划纲要":
        looks_back, plans_for = list(range(year - 5, year)), list(range(year, year + 5))
    elif year is not None:
        plans_for = [year]
    if title and year and str(year) not in title and kind == "政府工作报告" and title == "政府工作报告":
        title = f"{year}年政府工作报告"
    return DocumentInfo(
        file=file_name,
        title=title,
        kind=kind,
        delivered=delivered.isoformat() if delivered else (str(year) if year else None),
        looks_back=looks_back,
        plans_for=plans_for,
        year=year,
        guessed=True,
    )
