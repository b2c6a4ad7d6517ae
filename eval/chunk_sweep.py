"""Chunk-size sweep behind the chunker's defaults, measured with the lexical stage alone (no embedding).

Run: .venv/bin/python eval/chunk_sweep.py [--gold eval/gold/dev.jsonl]
For each passage size and overlap it chunks documents/, indexes the passages with BM25 and prints the
dev set's hit@k and answer recall within a reading budget (AR@500 keeps long passages from buying recall).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from qa.eval import QuestionResult, compute_metrics, load_gold
from qa.index.lexical import LexicalIndex
from qa.ingest import load_corpus
from qa.ingest.chunking import ChunkerSettings
from qa.text.lexicon import genre_lexicon
from qa.text.tokenize import tokenize


def main() -> None:
    """Print one line per (max_chars, overlap)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", default="eval/gold/dev.jsonl")
    ap.add_argument("--documents", default="documents")
    args = ap.parse_args()
    gold = load_gold(args.gold)
    print("max_chars overlap passages  hit@1  hit@5 hit@10 AR@500 AR@1500")
    for max_chars in (150, 200, 300, 400, 600):
        for overlap in (0, 1):
            passages = load_corpus(
                Path(args.documents), ChunkerSettings(max_chars=max_chars, overlap_sentences=overlap)
            ).passages
            lexical = LexicalIndex.build([p.embed_text for p in passages])
            results = []
            for g in gold:
                lex = genre_lexicon()
                terms = [t for t in tokenize(g.question) if t not in lex.designators] or tokenize(g.question)
                top = np.argsort(-lexical.scores(terms + lex.expand_terms(terms)))[:10]
                results.append(QuestionResult([(passages[i].doc, passages[i].text) for i in top]))
            m = compute_metrics(gold, results)["overall"]
            print(
                f"{max_chars:9d} {overlap:7d} {len(passages):8d} "
                + " ".join(f"{m[k]:6.3f}" for k in ("hit@1", "hit@5", "hit@10", "ar@500", "ar@1500"))
            )


if __name__ == "__main__":
    main()
