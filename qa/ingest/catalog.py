"""documents/catalog.toml: title, kind, dates and years of each file (qa.ingest.metadata reads them from the text when missing).

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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.types import DocumentInfo

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.toml"
KINDS = ("政府工作报告", "五年规划纲要", "新闻稿", "其他")


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
