"""The quality gate: every gold set of eval/gold/sets.toml through the default pipeline (the shipped reranker
and answer model) must stay within its floors in eval/floors.json.

The Zhengzhou sets use the session index of documents/; the national sets index corpora/national once per
session (no catalog: the metadata is read from the reports' text, as for any report the system has never
seen)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, BuiltIndex

from qa.config import Settings
from qa.eval import check_floors, run_eval
from qa.eval.sets import GoldSet, load_sets
from qa.index.builder import update_index
from qa.search.retriever import Retriever

FLOORS = json.loads((REPO / "eval" / "floors.json").read_text(encoding="utf-8"))
SETS = {gs.name: gs for gs in load_sets(REPO / "eval" / "gold" / "sets.toml")}
_INDEXES: dict[Path, Path] = {}


def _index_for(gs: GoldSet, built_index: BuiltIndex, settings: Settings, tmp: Path, encoder: Any) -> Path:
    if gs.documents == (REPO / "documents").resolve():
        return built_index.index
    if gs.documents not in _INDEXES:
        idx = tmp / f"{gs.corpus}-index"
        update_index(gs.documents, idx, settings, encoder=encoder)
        _INDEXES[gs.documents] = idx
    return _INDEXES[gs.documents]


def test_every_set_has_floors() -> None:
    assert set(SETS) <= {k for k in FLOORS if not k.startswith("_")}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(SETS))
def test_gold_set_stays_within_its_floors(
    name: str, built_index: BuiltIndex, real_encoder: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gs = SETS[name]
    settings = built_index.settings
    idx = _index_for(gs, built_index, settings, tmp_path_factory.getbasetemp(), real_encoder)
    retriever = Retriever.open(idx, settings, documents_dir=gs.documents, encoder=real_encoder)
    out = tmp_path_factory.mktemp(f"gate-{name}")
    metrics = run_eval(retriever, list(gs.questions), out, k=10, progress=False, label=name)
    overall = metrics["overall"]
    print(f"\n{name}:", {k: round(v, 3) for k, v in overall.items() if isinstance(v, float)})
    assert (out / "metrics.json").exists()
    problems = check_floors(metrics, FLOORS[name])
    assert not problems, f"quality gate ({name}): " + "; ".join(problems)
