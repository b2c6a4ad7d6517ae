"""Gold sets and the documents each is asked over (eval/gold/sets.toml), grouped by corpus.

The held-out protocol fits the reranker on the sets of one corpus and scores the sets of another, so a
figure is in-sample only when the set's own questions were fitted on.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError
from qa.eval.gold import GoldQuestion, load_gold

DEFAULT_SETS = Path("eval/gold/sets.toml")


@dataclass(frozen=True)
class GoldSet:
    """One gold set: its questions and the documents folder they are asked over."""

    name: str
    gold: Path
    documents: Path
    corpus: str
    questions: tuple[GoldQuestion, ...]


def load_sets(path: str | Path = DEFAULT_SETS, names: Sequence[str] = ()) -> list[GoldSet]:
    """The sets of a sets file (all, or those named), paths relative to the file's repository root."""
    p = Path(path)
    if not p.is_file():
        raise QAError(f"The gold sets file {p} does not exist; pass --sets with an existing TOML file.")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise QAError(f"The gold sets file {p} is not valid TOML ({exc}); fix it.") from exc
    table = data.get("sets")
    if not isinstance(table, dict) or not table:
        raise QAError(
            f'The gold sets file {p} needs [sets.<name>] tables with gold = "..." and documents = "...".'
        )
    unknown = [n for n in names if n not in table]
    if unknown:
        raise QAError(f"No gold set named {', '.join(unknown)} in {p}; known sets: {', '.join(table)}.")
    root = p.resolve().parent.parent.parent if p.parent.name == "gold" else p.resolve().parent
    out: list[GoldSet] = []
    for name, entry in table.items():
        if names and name not in names:
            continue
        if not isinstance(entry, dict) or not {"gold", "documents"} <= set(entry):
            raise QAError(f'{p}: [sets.{name}] needs gold = "..." and documents = "...".')
        gold = (root / entry["gold"]).resolve()
        docs = (root / entry["documents"]).resolve()
        if not docs.is_dir():
            raise QAError(f"{p}: the documents folder {docs} of set {name} does not exist.")
        out.append(GoldSet(name, gold, docs, str(entry.get("corpus", name)), tuple(load_gold(gold))))
    return out
