"""Knowledge bases: named corpora side by side, each with its own documents, metadata and index.

The default knowledge base is the zero-configuration case: `documents_dir` (documents/) indexed into
`index_dir` (index/), exactly as before knowledge bases existed. A named one lives in
`<kb_dir>/<name>/` (kbs/ by default)::

    kb.json      {"name": …, "documents": "<its documents folder>"}
    index/       its index: version folders (store = "embedded"), or only the writer's lock (store =
                 "milvus", whose versions are collections named after the knowledge base)
    documents/   its documents, unless `qa index --kb NAME --documents DIR` named another folder

Its metadata is its documents folder's catalog.toml and lexicon.toml, as for the default one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import QAError

if TYPE_CHECKING:
    from qa.config import Settings

DEFAULT_KB = "default"
# letters of any script, digits, '_' and '-'; not starting with '_' or '-'; a folder name and a URL segment
_NAME_RE = re.compile(r"^[^\W_][\w-]{0,63}$")


@dataclass(frozen=True)
class KnowledgeBase:
    """A knowledge base: its name, its documents folder and its index folder."""

    name: str
    documents_dir: Path
    index_dir: Path

    @property
    def is_default(self) -> bool:
        """True for the zero-configuration knowledge base (documents/ → index/)."""
        return self.name == DEFAULT_KB


def check_kb_name(name: str) -> str:
    """The name itself, or a QAError saying what a name may hold."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise QAError(
            f"'{str(name)[:80]}' is not a knowledge base name; use 1–64 letters, digits, '_' or '-', "
            "starting with a letter or digit (for example national or 郑州)."
        )
    return name


def kb_folder(settings: Settings, name: str) -> Path:
    """The folder of a named knowledge base."""
    return Path(settings.kb_dir) / check_kb_name(name)


def _default(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(DEFAULT_KB, Path(settings.documents_dir), Path(settings.index_dir))


def _read(settings: Settings, name: str) -> KnowledgeBase | None:
    root = kb_folder(settings, name)
    meta = root / "kb.json"
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        docs = Path(str(data["documents"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QAError(
            f"{meta} is damaged ({exc}); run `qa index --kb {name} --documents DIR` again."
        ) from exc
    return KnowledgeBase(name, docs if docs.is_absolute() else root / docs, root / "index")


def resolve_kb(settings: Settings, name: str | None = None) -> KnowledgeBase:
    """The knowledge base of that name (None or 'default': documents/ → index/); QAError when unknown."""
    if name is None or name == DEFAULT_KB:
        return _default(settings)
    kb = _read(settings, check_kb_name(name))
    if kb is None:
        raise QAError(
            f"There is no knowledge base '{name}'; create it with `qa index --kb {name} --documents DIR`."
        )
    return kb


def create_kb(settings: Settings, name: str, documents_dir: str | Path | None = None) -> KnowledgeBase:
    """Register (or re-point) a named knowledge base; its documents folder defaults to its own documents/."""
    if name == DEFAULT_KB:
        return (
            _default(settings)
            if documents_dir is None
            else KnowledgeBase(DEFAULT_KB, Path(documents_dir), Path(settings.index_dir))
        )
    root = kb_folder(settings, name)
    existing = _read(settings, name)
    if documents_dir is None:
        if existing is not None:
            return existing
        docs = root / "documents"
    else:
        docs = Path(documents_dir).expanduser().resolve()
        if not docs.is_dir():
            raise QAError(
                f"The documents folder {documents_dir} does not exist; create it or pass another --documents."
            )
    docs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / "index").mkdir(exist_ok=True)
    stored = "documents" if docs == root / "documents" else str(docs)
    tmp = root / f".kb.json.{os.getpid()}.tmp"
    tmp.write_text(
        json.dumps({"name": name, "documents": stored}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    tmp.replace(root / "kb.json")
    return KnowledgeBase(name, docs, root / "index")


def list_kbs(settings: Settings) -> list[KnowledgeBase]:
    """The default knowledge base, then the named ones in name order."""
    out = [_default(settings)]
    root = Path(settings.kb_dir)
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.is_dir() and _NAME_RE.match(d.name) and d.name != DEFAULT_KB:
                kb = _read(settings, d.name)
                if kb is not None:
                    out.append(kb)
    return out
