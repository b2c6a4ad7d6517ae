"""Summaries of an ingested corpus for `qa chunk`: counts, length distribution, JSONL dump."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from qa.ingest import CorpusResult


def _lengths_summary(lengths: list[int]) -> dict[str, Any]:
    if not lengths:
        return {"mean": 0, "median": 0, "min": 0, "max": 0, "p10": 0, "p90": 0}
    qs = statistics.quantiles(lengths, n=10) if len(lengths) >= 2 else [lengths[0]] * 9
    return {
        "mean": round(statistics.mean(lengths), 1),
        "median": statistics.median(lengths),
        "min": min(lengths),
        "max": max(lengths),
        "p10": round(qs[0], 1),
        "p90": round(qs[-1], 1),
    }


def corpus_report(result: CorpusResult) -> dict[str, Any]:
    """Documents, passages, length distribution (characters) and section counts, overall and per document."""
    per_doc = []
    all_lengths: list[int] = []
    total_sections = 0
    for d in result.docs:
        lengths = [len(p.text) for p in d.passages]
        all_lengths.extend(lengths)
        sections = {tuple(p.section) for p in d.passages}
        total_sections += len(sections)
        per_doc.append(
            {
                "file": d.info.file,
                "title": d.info.title,
                "year": d.info.year,
                "guessed": d.info.guessed,
                "encoding": d.encoding,
                "chars_original": len(d.original_text),
                "chars_clean": len(d.clean.text),
                "passages": len(d.passages),
                "sections": len(sections),
                "length": _lengths_summary(lengths),
            }
        )
    return {
        "documents": len(result.docs),
        "passages": len(all_lengths),
        "sections": total_sections,
        "length": _lengths_summary(all_lengths),
        "errors": [str(e) for e in result.errors],
        "warnings": list(result.warnings),
        "per_document": per_doc,
    }


def dump_passages_jsonl(result: CorpusResult, path: Path) -> int:
    """Write one JSON object per passage (with its citation) to `path`; return the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for p in result.passages:
            d = p.to_dict()
            d["citation"] = p.citation()
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
            n += 1
    return n
