"""The held-out protocol over several gold sets: fit the reranker on one corpus, score the other.

For every gold set (eval/gold/sets.toml) `compare_sets` runs the standard configurations (naive baseline,
BM25 only, dense only, hybrid, the full pipeline with the shipped reranker) and two fitted ones:

- ``full (fitted on <other corpus>)``: weights fitted on the sets of the other corpus only: held out;
- ``full (fitted on <own corpus>)``: fitted on this corpus's own sets: in-sample.

Every row says whether it is in-sample; the shipped weights are in-sample on the sets they record in
``meta.fitted_on``. Indexes, one per (documents folder, IndexSpec), are built under the work folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.eval.fit import collect, fit_collected, save_fitted
from qa.eval.report import TABLE_COLUMNS, format_table, get_console, print_table
from qa.eval.runner import default_compare_configs, index_key, own_milvus_lite, run_eval
from qa.eval.sets import GoldSet


def set_index_dir(work: Path, gs: GoldSet, settings: Settings) -> Path:
    """Where the index a configuration needs over a set's documents lives under the work folder."""
    return work / "indexes" / f"{gs.corpus}-{index_key(settings)}"


def open_for_set(gs: GoldSet, settings: Settings, work: Path, encoder: Any | None = None) -> Any:
    """A Retriever over the set's documents with these settings (its index built or updated first)."""
    from qa.search.retriever import Retriever

    idx = set_index_dir(work, gs, settings)
    s = own_milvus_lite(settings.with_(index_dir=str(idx), documents_dir=str(gs.documents)), work)
    return Retriever.open(idx, s, documents_dir=gs.documents, build=True, encoder=encoder)


def fit_per_corpus(
    sets: Sequence[GoldSet],
    base: Settings,
    work: Path,
    folds: int = 5,
    l2: float = 1.0,
    max_wrong_abstain: float = 0.01,
) -> dict[str, Path]:
    """Weights fitted on each corpus's sets alone (work/weights/fit-<corpus>.json); also on all sets together."""
    by_corpus: dict[str, list[GoldSet]] = {}
    for gs in sets:
        by_corpus.setdefault(gs.corpus, []).append(gs)
    first_stage = base.with_(reranker="none")
    data: dict[str, list[Any]] = {}
    for corpus, group in by_corpus.items():
        data[corpus] = [q for gs in group for q in collect(open_for_set(gs, first_stage, work), gs.questions)]
    out: dict[str, Path] = {}
    groups = {c: [c] for c in by_corpus}
    if len(by_corpus) > 1:
        groups["all"] = list(by_corpus)
    for name, corpora in groups.items():
        rr, _ = fit_collected(
            [q for c in corpora for q in data[c]], folds=folds, l2=l2, max_wrong_abstain=max_wrong_abstain
        )
        path = work / "weights" / f"fit-{name}.json"
        fitted_on = [gs.name for c in corpora for gs in by_corpus[c]]
        save_fitted(rr, path, fitted_on, f"qa eval --compare (fitted on {', '.join(fitted_on)})")
        out[name] = path
    return out


def compare_sets(
    sets: Sequence[GoldSet],
    base: Settings,
    work_dir: str | Path,
    k: int = 10,
    progress: bool = True,
    console: Any | None = None,
) -> list[dict[str, Any]]:
    """Every set through the standard and the cross-corpus fitted configurations; writes compare.md/json."""
    from qa.search.rerank import FeatureReranker

    con = get_console(console)
    work = Path(work_dir)
    weights = fit_per_corpus(sets, base, work)
    shipped = (
        FeatureReranker.load(Path(base.reranker_weights)) if base.reranker_weights else FeatureReranker.load()
    )
    shipped_on = set(shipped.meta.get("fitted_on") or [])
    rows: list[dict[str, Any]] = []
    for gs in sets:
        configs: dict[str, tuple[Settings, bool]] = {
            name: (s, name.startswith("full") and gs.name in shipped_on)
            for name, s in default_compare_configs(base).items()
        }
        for corpus, path in weights.items():
            if corpus == "all":
                continue
            held_out = corpus != gs.corpus
            label = f"full (fitted on {corpus}{'' if held_out else ', in-sample'})"
            configs[label] = (
                base.with_(retrieval_mode="hybrid", reranker="default", reranker_weights=str(path)),
                not held_out,
            )
        for name, (s, in_sample) in configs.items():
            con.print(f"[bold]{gs.name}[/bold] · {name}")
            retriever = open_for_set(gs, s, work)
            slug = re.sub(r"[^0-9A-Za-z]+", "-", f"{gs.name}-{name}").strip("-").lower()
            m = run_eval(
                retriever, gs.questions, work / "runs" / slug, k=k, progress=progress, console=con, label=name
            )
            rows.append(
                {
                    "set": gs.name,
                    "config": name,
                    "in_sample": in_sample,
                    **{c: m["overall"].get(c) for c in TABLE_COLUMNS},
                    "settings": m["settings"],
                }
            )
        print_table(
            [r for r in rows if r["set"] == gs.name],
            title=f"{gs.name} ({len(gs.questions)} questions)",
            console=con,
        )
    write_sets_compare(work, rows, sets, k, weights)
    return rows


def write_sets_compare(
    work: Path, rows: Sequence[dict[str, Any]], sets: Sequence[GoldSet], k: int, weights: dict[str, Path]
) -> None:
    """compare.md (one table per set, in-sample rows marked) and compare.json."""
    import json

    parts = [
        "# Configuration comparison over the gold sets",
        "",
        f"k={k}. Rows marked ✱ are in-sample: the reranker was fitted on the set's own questions. "
        "`fitted on <corpus>` rows use weights fitted on that corpus's sets only (qa.eval.protocol); "
        "the other corpus's row is the held-out figure.",
        "",
    ]
    for gs in sets:
        mine = [
            {**r, "config": r["config"] + (" ✱" if r["in_sample"] else "")}
            for r in rows
            if r["set"] == gs.name
        ]
        n_una = sum(1 for q in gs.questions if not q.answerable)
        parts += [
            f"## {gs.name}: {gs.gold.name} over {gs.documents.name}/ "
            f"({len(gs.questions)} questions, {n_una} unanswerable)",
            "",
            format_table(mine),
            "",
        ]
    parts += ["Weights fitted for this comparison:", ""]
    parts += [f"- `{name}`: {path}" for name, path in weights.items()]
    work.mkdir(parents=True, exist_ok=True)
    (work / "compare.md").write_text("\n".join(parts) + "\n", encoding="utf-8")
    (work / "compare.json").write_text(json.dumps(list(rows), ensure_ascii=False, indent=1), encoding="utf-8")
