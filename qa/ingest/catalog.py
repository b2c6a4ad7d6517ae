"""documents/catalog.toml: title, kind, dates and years of each file, as a person states them.

A file without an entry gets its metadata from its own text (qa.ingest.metadata.infer_info).

Format (one table per file name)::

    [documents."2024-zhengzhou-government-work-report.txt"]
    title = "2024年郑州市政府工作报告"
    kind = "政府工作报告"
    delivered = 2024-02-03      # a TOML date, or "2024" / "2024-02" as a string
    looks_back = [2023]
    plans_for = [2024]
    year = 2024
    issuer = "郑州市人民政府"    # optional, as is place = "郑州市"

    [documents."CORPUS.md"]
    skip = true                 # a file in documents/ that is not a document

`set_entry` writes a correction into one table and leaves every other byte of the file as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
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

# The fields a table may set, in the order a new table is written.
FIELDS = ("title", "kind", "delivered", "looks_back", "plans_for", "year", "issuer", "place")
_DELIVERED_RE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")
_HEADER_RE = re.compile(
    r"""^[ \t]*\[[ \t]*documents[ \t]*\.[ \t]*(?:"(?P<basic>(?:[^"\\\n]|\\.)*)"|'(?P<literal>[^'\n]*)'|(?P<bare>[A-Za-z0-9_-]+))"""
    r"[ \t]*\][ \t]*(?:#[^\r\n]*)?\r?$",
    re.M,
)


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
            raise QAError(f"The catalog {path}, entry '{name}', must be a table.")
        if entry.get("skip"):
            cat.skip.add(name)
            continue
        if not (Path(documents_dir) / name).exists():
            msg = f"catalog.toml names '{name}', which is not in {documents_dir}; the entry is ignored."
            log.warning(msg)
            cat.warnings.append(msg)
            continue
        cat.infos[name] = _info_from_entry(f"The catalog {path}, entry '{name}'", name, entry)
    return cat


def load_catalog(documents_dir: Path) -> dict[str, DocumentInfo]:
    """Metadata of the catalogued files that exist in documents_dir (skipped files excluded)."""
    return read_catalog(documents_dir).infos


def _years(where: str, key: str, value: Any) -> list[int]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1000 <= v <= 9999 for v in values):
        raise QAError(
            f"{where}: {key} must be a year or a list of years such as [2019, 2020], not {value!r}."
        )
    return list(values)


def _text(where: str, key: str, value: Any, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n"):
        raise QAError(f"{where}: {key} must be non-empty text on one line, not {value!r}.")
    return value.strip()


def _partial_date(value: str) -> bool:
    """True for a real year, month or day written 2024, 2024-02 or 2024-02-03."""
    if not _DELIVERED_RE.fullmatch(value):
        return False
    parts = [int(x) for x in value.split("-")] + [1, 1]
    try:
        dt.date(parts[0], parts[1], parts[2])
    except ValueError:
        return False
    return True


def _delivered(where: str, value: Any) -> str | None:
    """A TOML date, an integer year, or "2024" / "2024-02" / "2024-02-03" as a string."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and 1000 <= value <= 9999:
        return str(value)
    if isinstance(value, str) and _partial_date(value.strip()):
        return value.strip()
    raise QAError(
        f"{where}: delivered must be a date such as 2024-02-03, or a year (2024) or month (2024-02), not {value!r}."
    )


def _info_from_entry(where: str, name: str, entry: dict[str, Any]) -> DocumentInfo:
    """The DocumentInfo of one table; QAError (naming `where`) for a value a reader could not use."""
    title = _text(where, "title", entry.get("title"), required=True)
    kind = entry.get("kind", "其他")
    if kind not in KINDS:
        raise QAError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    delivered = _delivered(where, entry.get("delivered"))
    year = entry.get("year")
    if year is None and delivered:
        year = int(delivered[:4])
    if year is not None and (not isinstance(year, int) or isinstance(year, bool) or not 1000 <= year <= 9999):
        raise QAError(f"{where}: year must be a four-digit year such as 2024, not {year!r}.")
    sources = {k: "catalog" for k in FIELDS if entry.get(k) is not None}
    if "year" not in sources and year is not None:
        sources["year"] = "catalog"
    return DocumentInfo(
        file=name,
        title=str(title),
        kind=str(kind),
        delivered=delivered,
        looks_back=_years(where, "looks_back", entry.get("looks_back")),
        plans_for=_years(where, "plans_for", entry.get("plans_for")),
        year=year,
        guessed=False,
        issuer=_text(where, "issuer", entry.get("issuer")),
        place=_text(where, "place", entry.get("place")),
        sources=sources,
    )


# ---------------------------------------------------------------- writing one table


def _toml_value(key: str, value: Any) -> str:
    """The TOML text of one value: a bare date for a full delivery date, JSON-style strings otherwise."""
    if key == "delivered" and isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(str(int(v)) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # TOML basic strings take JSON's escapes


def _header_key(m: re.Match[str]) -> str:
    if m.group("basic") is not None:
        return str(tomllib.loads(f'k = "{m.group("basic")}"')["k"])
    return m.group("literal") if m.group("literal") is not None else m.group("bare")


def _table_span(text: str, name: str) -> tuple[int, int] | None:
    """(end of the table's header line, start of the next table) for [documents."name"], or None."""
    for m in _HEADER_RE.finditer(text):
        try:
            key = _header_key(m)
        except tomllib.TOMLDecodeError:
            continue
        if key == name:
            nxt = re.compile(r"^[ \t]*\[", re.M).search(text, m.end())
            return m.end(), nxt.start() if nxt else len(text)
    return None


def _value_end(body: str, start: int) -> int:
    """Where the value after `key =` at body[start:] ends: the shortest run of whole lines TOML reads
    as one value (an array may span lines); a line's \\r stays outside it."""
    pos = start
    while True:
        nl = body.find("\n", pos)
        end = len(body) if nl < 0 else nl
        if body[start:end].endswith("\r"):
            end -= 1
        try:
            tomllib.loads("k =" + body[start:end])
            return end
        except tomllib.TOMLDecodeError:
            if nl < 0:
                raise
            pos = nl + 1


def _set_in_table(body: str, key: str, value_text: str, newline: str) -> str:
    """The table body with `key = value_text`: the old value replaced in place (its trailing comment
    kept), or a new line after the table's last key (before comments that introduce the next table)."""
    m = re.search(r"^[ \t]*(?:" + re.escape(key) + r'|"' + re.escape(key) + r'")[ \t]*=', body, re.M)
    if m:
        end = _value_end(body, m.end())
        old = body[m.end() : end]
        comment = ""
        c = re.search(r"[ \t]+#[^\n]*$", old)
        if c:
            try:
                if tomllib.loads("k =" + old[: c.start()]) == tomllib.loads("k =" + old):
                    comment = old[c.start() :]
            except tomllib.TOMLDecodeError:
                comment = ""
        return body[: m.end()] + " " + value_text + comment + body[end:]
    pos, last = 0, None
    for ln in body.splitlines(keepends=True):
        pos += len(ln)
        if ln.strip() and not ln.strip().startswith("#"):
            last = pos
    if last is None:  # a table with no keys yet: right under its header line
        nl = body.find("\n")
        last = nl + 1 if nl >= 0 else len(body)
    prefix = body[:last]
    if not prefix.endswith("\n"):  # the file ended without a newline
        prefix += newline
    return prefix + f"{key} = {value_text}{newline}" + body[last:]


def _resolve_name(documents_dir: Path, file_name: str) -> str:
    """The file's name in documents_dir (a path into the folder is accepted); QAError if it is not there."""
    p = Path(file_name)
    if p.parent != Path(".") and p.exists() and p.resolve().parent == documents_dir.resolve():
        p = Path(p.name)
    if p.parent != Path(".") or p.name == CATALOG_NAME or not (documents_dir / p).is_file():
        raise QAError(
            f"'{file_name}' is not a document in {documents_dir}; give the name of one of its files."
        )
    return p.name


def set_entry(documents_dir: Path, file_name: str, changes: dict[str, Any]) -> DocumentInfo:
    """Write `changes` into the file's [documents."<file>"] table of catalog.toml (added if missing),
    keeping every other byte of the file; QAError for an unknown file or a value reading would refuse."""
    documents_dir = Path(documents_dir)
    name = _resolve_name(documents_dir, file_name)
    path = documents_dir / CATALOG_NAME
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise QAError(f"Unknown catalog field {unknown[0]!r}; the fields are {', '.join(FIELDS)}.")
    where = f"Cannot set '{name}' in {path}"
    values = {k: v for k, v in changes.items() if v is not None}
    d = values.get("delivered")
    if isinstance(d, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", d.strip()) and _partial_date(d.strip()):
        values["delivered"] = dt.date.fromisoformat(d.strip())  # written as a TOML date, like the others
    raw = path.read_bytes().decode("utf-8") if path.exists() else ""
    try:
        entries = tomllib.loads(raw).get("documents", {})
    except tomllib.TOMLDecodeError as exc:
        raise QAError(
            f"The catalog {path} is not valid TOML ({exc}); fix it before setting entries."
        ) from exc
    old = entries.get(name, {}) if isinstance(entries, dict) else {}
    if not isinstance(old, dict):
        raise QAError(f"{where}: its entry is not a table; edit the file by hand.")
    if old.get("skip"):
        raise QAError(f"{where}: the catalog marks it skip = true (not a document); remove that line first.")
    merged = {**old, **values}
    if "title" not in merged:
        raise QAError(f"{where}: it has no catalog entry yet, so it needs a title too (--title).")
    _info_from_entry(where, name, merged)  # refuse what reading would refuse, before writing anything

    newline = "\r\n" if "\r\n" in raw else "\n"
    span = _table_span(raw, name)
    if span is None and name in entries:
        raise QAError(f'{where}: its entry is not written as a [documents."…"] table; edit the file by hand.')
    if span is None:
        table = [f"[documents.{json.dumps(name, ensure_ascii=False)}]"]
        table += [f"{k} = {_toml_value(k, merged[k])}" for k in FIELDS if k in merged]
        sep = "" if not raw else (newline if raw.endswith("\n") else newline * 2)
        text = raw + sep + newline.join(table) + newline
    else:
        start, end = span
        body = raw[start:end]
        for k in FIELDS:
            if k in values:
                body = _set_in_table(body, k, _toml_value(k, values[k]), newline)
        text = raw[:start] + body + raw[end:]
    try:
        written = tomllib.loads(text)["documents"][name]
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise QAError(
            f"{where}: the edited catalog would not read back ({exc}); edit the file by hand."
        ) from exc
    if written != merged:
        raise QAError(f"{where}: the edited table would not read back as written; edit the file by hand.")
    tmp = path.with_name(f".{CATALOG_NAME}.tmp")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)
    return _info_from_entry(where, name, written)


def entry_text(documents_dir: Path, file_name: str) -> str:
    """The file's table in catalog.toml as it stands, from its header line to the next table ('' if none)."""
    path = Path(documents_dir) / CATALOG_NAME
    raw = path.read_bytes().decode("utf-8") if path.exists() else ""
    span = _table_span(raw, Path(file_name).name)
    if span is None:
        return ""
    return raw[raw.rfind("\n", 0, span[0]) + 1 : span[1]].rstrip() + "\n"


def entry_from_info(info: DocumentInfo) -> dict[str, Any]:
    """The catalog fields of metadata read from a document's text: the start of its first catalog entry, so
    that correcting one field keeps the others (an entry replaces inferred metadata whole)."""
    return {k: getattr(info, k) for k in FIELDS if getattr(info, k) not in (None, [])}
