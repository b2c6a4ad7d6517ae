"""The quality gate: the dev gold set through the default pipeline must stay above eval/floors.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO, BuiltIndex

from qa.eval import check_floors, load_gold, run_eval
from qa.search.retriever import Retriever


@pytest.mark.integration
def test_dev_set_stays_above_the_floors(built_index: BuiltIndex, tmp_path: Path) -> None:
    floors = json.loads((REPO / "eval" / "floors.json").read_text(encoding="utf-8"))
    gold = load_gold(REPO / "eval" / "gold" / "dev.jsonl")
    retriever = Retriever.open(built_index.index, built_index.settings)
    metrics = run_eval(retriever, gold, tmp_path / "run", k=10, progress=False)
    overall = metrics["overall"]
    print("\ndev set:", {k: round(v, 3) for k, v in overall.items() if isinstance(v, float)})
    assert (tmp_path / "run" / "metrics.json").exists()
    problems = check_floors(metrics, floors)
    assert not problems, "quality gate: " + "; ".join(problems)
