"""`qa index | chunk | ask | documents | remove | kbs | eval | fit-reranker | serve`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from qa.config import Settings, load_settings
from qa.errors import QAError
from qa.types import DocumentInfo

if TYPE_CHECKING:
    from qa.search.retriever import Retriever

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Q&A over Chinese government reports, with cited passages.",
)
console = Console()
err_console = Console(stderr=True)

DocumentsOpt = Annotated[
    Path | None, typer.Option("--documents", "-d", help="Documents folder (default: documents/)")
]
IndexOpt = Annotated[Path | None, typer.Option("--index", "-i", help="Index folder (default: index/)")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="A qa.toml with settings")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Embedding model: 'default', a hub id or a local path")
]
KbOpt = Annotated[
    str | None,
    typer.Option("--kb", help="Knowledge base name (default: documents/ → index/); see `qa kbs`"),
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    return load_settings(config, **overrides)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[str, float | None], None]]:
    """A rich progress bar whose callback takes (message, fraction or None)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as prog:
        task = prog.add_task(description, total=1.0)

        def cb(message: str, fraction: float | None = None) -> None:
            if fraction is not None:
                prog.update(task, description=message, completed=min(max(fraction, 0.0), 1.0))
            else:
                prog.update(task, description=message)

        yield cb


def _open_built(index: Path, settings: Settings, documents: Path, label: str = "准备索引") -> Retriever:
    """Build or update the index from the documents folder, with a progress bar, then open it."""
    from qa.search.retriever import Retriever

    with progress_bar(label) as cb:
        return Retriever.open(index, settings, documents_dir=documents, build=True, progress=cb)


def _fail(exc: Exception) -> None:
    # soft_wrap: the sentence (and the command it names) stays on one line, copyable, at any width
    err_console.print(f"[red]错误：[/red]{exc}", soft_wrap=True)
    raise typer.Exit(code=2)


@app.command("index")
def index_cmd(
    documents: DocumentsOpt = None,
    index: IndexOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild everything")] = False,
    model: ModelOpt = None,
    faiss_index: Annotated[str | None, typer.Option("--faiss", help="flat | ivf | hnsw")] = None,
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Build or update the index (only new or changed documents are embedded).

    With --kb NAME: the knowledge base NAME (created on first use; --documents names its folder)."""
    from qa.index.builder import update_index

    try:
        s = _settings(config, model=model, faiss_index=faiss_index)
        docs, idx, name = _kb_paths(s, kb, documents, index, create=True)
        with progress_bar("扫描文件") as cb:
            report = update_index(docs, idx, s, force=force, progress=cb, kb=name)
    except QAError as exc:
        _fail(exc)
        return
    console.print(report.summary())
    for e in report.errors:
        console.print(f"[yellow]跳过[/yellow] {e}")
    if report.timings:
        console.print("  " + "  ".join(f"{k} {v:.2f}s" for k, v in report.timings.items()))


def _kb_paths(
    s: Settings, kb: str | None, documents: Path | None, index: Path | None, create: bool = False
) -> tuple[Path, Path, str]:
    """(documents folder, index folder, knowledge base name) for the options given."""
    from qa.index.kb import DEFAULT_KB, create_kb, resolve_kb

    if kb is None or kb == DEFAULT_KB:
        return documents or Path(s.documents_dir), index or Path(s.index_dir), DEFAULT_KB
    base = create_kb(s, kb, documents) if create else resolve_kb(s, kb)
    return documents or base.documents_dir, index or base.index_dir, base.name


@app.command("chunk")
def chunk_cmd(
    documents: Annotated[Path, typer.Argument(help="Documents folder")] = Path("documents"),
    dump: Annotated[Path | None, typer.Option("--dump", help="Write passages as JSONL here")] = None,
    max_chars: Annotated[int | None, typer.Option("--max-chars", help="Passage size in characters")] = None,
    overlap: Annotated[int | None, typer.Option("--overlap", help="Overlap in whole sentences")] = None,
    chunker: Annotated[str | None, typer.Option("--chunker", help="chinese | naive")] = None,
    config: ConfigOpt = None,
) -> None:
    """Clean and chunk a folder; print a summary (and dump passages as JSONL)."""
    from qa.index.spec import IndexSpec
    from qa.ingest import load_corpus
    from qa.ingest.report import corpus_report, dump_passages_jsonl

    try:
        s = _settings(config, chunk_max_chars=max_chars, chunk_overlap_sentences=overlap, chunker=chunker)
        cs = IndexSpec.from_settings(s).chunker_settings
        result = load_corpus(documents, cs, chunker=s.chunker)
    except QAError as exc:
        _fail(exc)
        return
    rep = corpus_report(result)
    console.print_json(json.dumps(rep, ensure_ascii=False))
    for e in result.errors:
        console.print(f"[yellow]跳过[/yellow] {e}")
    if dump:
        dump_passages_jsonl(result, dump)
        console.print(f"passages written to {dump}")


def _print_answer(ans: object) -> None:
    from qa.types import Answer

    assert isinstance(ans, Answer)
    for note in ans.query.notes:
        console.print(f"[dim]{note}[/dim]")
    console.print(f"[bold]{'（未找到答案）' if ans.abstained else '答'}[/bold] {ans.text}")
    for h in ans.hits:
        console.print(f"\n[cyan][{h.rank}][/cyan] {h.passage.citation()}  [dim]score {h.score:.3f}[/dim]")
        console.print(h.passage.text, markup=False, highlight=False)


@app.command("ask")
def ask_cmd(
    question: Annotated[str, typer.Argument(help="The question, e.g. 2023年郑州GDP是多少？")],
    k: Annotated[int, typer.Option("-k", help="Number of passages")] = 5,
    index: IndexOpt = None,
    documents: DocumentsOpt = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", help="Only this document (repeatable)")] = None,
    year: Annotated[
        list[int] | None, typer.Option("--year", help="Only documents about this year (repeatable)")
    ] = None,
    reranker: Annotated[
        str | None, typer.Option("--reranker", help="default | none | a CrossEncoder id/path")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ask one question and print the answer with citations."""
    from qa.index.factory import open_target
    from qa.search.retriever import Retriever

    try:
        s = _settings(config, reranker=reranker)
        docs_dir, idx, name = _kb_paths(s, kb, documents, index)
        build = open_target(s, idx, name).live_version() is None and docs_dir.is_dir()
        if build:
            with progress_bar("建立索引") as cb:
                r = Retriever.open(idx, s, documents_dir=docs_dir, build=True, progress=cb, kb=name)
        else:
            r = Retriever.open(idx, s, documents_dir=docs_dir, kb=name)
        filters = {"doc": doc or [], "year": year or []}
        ans = r.ask(question, k=k, filters={kk: v for kk, v in filters.items() if v} or None)
    except QAError as exc:
        _fail(exc)
        return
    if as_json:
        sys.stdout.write(json.dumps(ans.to_dict(), ensure_ascii=False, indent=1) + "\n")
    else:
        _print_answer(ans)


@app.command("documents")
def documents_cmd(
    index: IndexOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List the indexed documents: title, issuer, place, kind, dates, years looked back on and planned for,
    where each field came from (catalog / title line / file name / text), and passage counts."""
    from qa.index.factory import open_store

    try:
        s = _settings(config)
        _, idx, name = _kb_paths(s, kb, None, index)
        store = open_store(s, idx, name)
    except QAError as exc:
        _fail(exc)
        return
    rows = store.document_infos()
    if as_json:
        out = [{**info.to_dict(), "passages": n} for info, n in rows]
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
        return
    for info, n in rows:
        console.print(f"[bold]{info.file}[/bold]  {n} 段", highlight=False)
        for label, value in document_fields(info):
            console.print(f"  {label}：{value}", highlight=False, markup=False)


@app.command("remove")
def remove_cmd(
    name: Annotated[str, typer.Argument(help="File name of the document, as `qa documents` lists it")],
    kb: KbOpt = None,
    documents: DocumentsOpt = None,
    index: IndexOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove a document: its file leaves the documents folder and a new index version without its
    passages goes live (every serving worker sees it within a second)."""
    from qa.search.retriever import Retriever

    try:
        s = _settings(config)
        docs_dir, idx, kb_name = _kb_paths(s, kb, documents, index)
        r = Retriever.open(idx, s, documents_dir=docs_dir, kb=kb_name)
        with progress_bar(f"移除 {name}") as cb:
            report = r.remove_document(name, progress=cb)
    except QAError as exc:
        _fail(exc)
        return
    console.print(report.summary())


@app.command("kbs")
def kbs_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """List the knowledge bases: name, documents folder, documents and passages indexed."""
    from qa.index.factory import open_store
    from qa.index.kb import list_kbs

    try:
        s = _settings(config)
        rows = []
        for base in list_kbs(s):
            try:
                infos = open_store(s, base.index_dir, base.name).document_infos()
                docs, passages = len(infos), sum(n for _, n in infos)
            except QAError:
                docs, passages = 0, 0
            rows.append(
                {
                    "name": base.name,
                    "documents_dir": str(base.documents_dir),
                    "documents": docs,
                    "passages": passages,
                }
            )
    except QAError as exc:
        _fail(exc)
        return
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    for row in rows:
        console.print(
            f"[bold]{row['name']}[/bold]  {row['documents']} 篇，{row['passages']} 段  {row['documents_dir']}",
            highlight=False,
        )


def _years_text(years: list[int]) -> str:
    ys = sorted(years)
    if len(ys) > 2 and ys[-1] - ys[0] == len(ys) - 1:
        return f"{ys[0]}–{ys[-1]}"
    return "、".join(str(y) for y in ys) or "—"


def document_fields(info: DocumentInfo) -> list[tuple[str, str]]:
    """(label, value with its source) for each metadata field a person checks."""
    src = info.sources

    def where(field: str) -> str:
        return f"（{src[field]}）" if field in src else ""

    return [
        ("标题", f"{info.title}{where('title')}"),
        ("发布者 / 地方", f"{info.issuer or '—'}{where('issuer')} / {info.place or '—'}{where('place')}"),
        ("类型", f"{info.kind}{where('kind')}"),
        ("日期 / 年份", f"{info.delivered or '—'}{where('delivered')} / {info.year or '—'}{where('year')}"),
        ("回顾年份", f"{_years_text(info.looks_back)}{where('looks_back')}"),
        ("计划年份", f"{_years_text(info.plans_for)}{where('plans_for')}"),
    ]


catalog_app = typer.Typer(no_args_is_help=True, help="Correct what the catalog says about a document.")
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("set")
def catalog_set_cmd(
    file: Annotated[str, typer.Argument(help="A file in the documents folder")],
    year: Annotated[int | None, typer.Option("--year", help="Headline year (year delivered)")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="政府工作报告 | 五年规划纲要 | 新闻稿 | 其他")
    ] = None,
    delivered: Annotated[
        str | None, typer.Option("--delivered", help="Date delivered: 2024-02-03, 2024-02 or 2024")
    ] = None,
    looks_back: Annotated[
        list[int] | None,
        typer.Option("--looks-back", help="A year it reviews (repeatable; replaces the list)"),
    ] = None,
    plans_for: Annotated[
        list[int] | None,
        typer.Option("--plans-for", help="A year it plans for (repeatable; replaces the list)"),
    ] = None,
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Who issued it: 国务院, 郑州市人民政府 …")
    ] = None,
    place: Annotated[
        str | None, typer.Option("--place", help="The place it is about: 全国, 郑州市 …")
    ] = None,
    documents: DocumentsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write or update FILE's entry in catalog.toml (the rest of the file is kept as it is) and print it."""
    from qa.ingest.catalog import CATALOG_NAME, entry_from_info, entry_text, read_catalog, set_entry
    from qa.ingest.pipeline import read_info

    changes = {
        "title": title,
        "kind": kind,
        "delivered": delivered,
        "looks_back": looks_back,
        "plans_for": plans_for,
        "year": year,
        "issuer": issuer,
        "place": place,
    }
    try:
        if all(v is None for v in changes.values()):
            raise QAError(
                "Nothing to set; give at least one of --year, --title, --kind, --delivered, --looks-back, --plans-for, --issuer, --place."
            )
        docs_dir = documents or Path(_settings(config).documents_dir)
        if file not in read_catalog(docs_dir).infos and (docs_dir / file).is_file():
            # its first entry starts from what the text says, so one corrected field keeps the others
            changes = {
                **entry_from_info(read_info(docs_dir / file)),
                **{k: v for k, v in changes.items() if v is not None},
            }
        info = set_entry(docs_dir, file, changes)
    except QAError as exc:
        _fail(exc)
        return
    console.print(f"# {docs_dir / CATALOG_NAME}", markup=False, highlight=False, soft_wrap=True)
    console.print(entry_text(docs_dir, info.file), end="", markup=False, highlight=False, soft_wrap=True)


SetsOpt = Annotated[Path, typer.Option("--sets", help="Gold sets file (default eval/gold/sets.toml)")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="A gold set named in the sets file (repeatable)")
]


@app.command("eval")
def eval_cmd(
    gold: Annotated[Path | None, typer.Option("--gold", help="Gold questions (JSONL)")] = None,
    index: IndexOpt = None,
    documents: DocumentsOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Where metrics.json, run.jsonl, report.md go")] = Path(
        "eval/runs/latest"
    ),
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="The standard configurations side by side; without --gold, on every gold set with the "
            "held-out (cross-corpus) fitted rows",
        ),
    ] = False,
    sets: SetsOpt = Path("eval/gold/sets.toml"),
    set_names: SetOpt = None,
    reranker: Annotated[
        list[str] | None, typer.Option("--reranker", help="Reranker(s) to evaluate (repeatable)")
    ] = None,
    floors: Annotated[
        Path | None, typer.Option("--floors", help="Fail when a metric drops below these floors (JSON)")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="Passages per question")] = 10,
    config: ConfigOpt = None,
) -> None:
    """Evaluate on gold sets: hit@k, MRR, answer recall at a reading budget, abstention, latency.

    `--gold FILE [--documents DIR]` evaluates one file; `--set NAME` a set of eval/gold/sets.toml (its own
    documents folder, its index under eval/runs/indexes/); `--compare` runs the standard configurations
    and, over the sets file, the reranker fitted on one corpus and scored on the other.
    """
    from qa.eval import (
        check_floors,
        compare_configs,
        default_compare_configs,
        load_gold,
        print_metrics,
        run_eval,
    )
    from qa.eval.protocol import compare_sets, open_for_set
    from qa.eval.sets import load_sets

    try:
        s = _settings(config)
        if reranker and not compare:
            s = s.with_(reranker=reranker[0])
        if gold is None:
            chosen = load_sets(sets, set_names or ())
            if compare:
                compare_sets(chosen, s, out, k=k)
                return
            if len(chosen) != 1:
                raise QAError(
                    "Name one gold set with --set (or pass --gold FILE), or add --compare to run them all."
                )
            gs = chosen[0]
            label = gs.name
            questions = list(gs.questions)
            if index is None:
                with progress_bar("准备索引") as cb:
                    cb(f"{gs.name}: {gs.documents}", None)
                    r = open_for_set(gs, s, Path("eval/runs"))
            else:
                r = _open_built(index, s, gs.documents)
        else:
            questions = load_gold(gold)
            label = gold.name
            docs_dir = documents or Path(s.documents_dir)
            if compare:
                configs = default_compare_configs(
                    s, rerankers=[r for r in (reranker or []) if r not in ("default", "none")]
                )
                compare_configs(configs, questions, docs_dir, out, k=k)
                return
            r = _open_built(index or Path(s.index_dir), s, docs_dir)
        metrics = run_eval(r, questions, out, k=k)
        print_metrics(metrics, title=label)
        console.print(f"written to {out}/ (metrics.json, run.jsonl, report.md)")
        if floors:
            limits = json.loads(floors.read_text(encoding="utf-8"))
            if not {"min", "max"} & set(limits):  # floors per gold set: find this run's set
                if gold is not None:
                    known = {gs.gold: gs.name for gs in load_sets(sets)}
                    label = known.get(gold.resolve(), label)
                if label not in limits:
                    raise QAError(f"{floors} has no floors for {label}; name a set of {sets} with --set.")
                limits = limits[label]
            problems = check_floors(metrics, limits)
            for p in problems:
                err_console.print(f"[red]below floor:[/red] {p}")
            if problems:
                raise typer.Exit(code=1)
    except QAError as exc:
        _fail(exc)


@app.command("fit-reranker")
def fit_reranker_cmd(
    gold: Annotated[Path | None, typer.Option("--gold", help="Gold questions (JSONL) to fit on")] = None,
    index: IndexOpt = None,
    documents: DocumentsOpt = None,
    sets: SetsOpt = Path("eval/gold/sets.toml"),
    set_names: SetOpt = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds")] = 5,
    l2: Annotated[float, typer.Option(help="L2 regularisation")] = 1.0,
    max_wrong_abstain: Annotated[
        float,
        typer.Option(
            help="Refusal threshold: the share of answerable questions (held-out folds) it may refuse; "
            "0.01 keeps refusals of answerable questions on other corpora near 2-3%"
        ),
    ] = 0.01,
    out: Annotated[Path, typer.Option("--out", help="Weights file to write")] = Path("reranker.json"),
    config: ConfigOpt = None,
) -> None:
    """Fit the default reranker's weights on gold sets (k-fold cross-validated) and save them as JSON.

    Without --gold it fits on the sets of eval/gold/sets.toml (all, or those named with --set), each over
    its own documents folder. The weights go to --out (./reranker.json by default), never into the
    installed package; point the retriever at them with reranker_weights in qa.toml or QA_RERANKER_WEIGHTS.
    """
    from qa.eval import load_gold
    from qa.eval.fit import collect, fit_collected, save_fitted
    from qa.eval.protocol import open_for_set
    from qa.eval.sets import load_sets

    try:
        s = _settings(config, reranker="none")
        if gold is not None:
            docs_dir = documents or Path(s.documents_dir)
            r = _open_built(index or Path(s.index_dir), s, docs_dir)
            data = collect(r, load_gold(gold))
            names = [gold.name]
        else:
            chosen = load_sets(sets, set_names or ())
            data = []
            with progress_bar("收集候选段落") as cb:
                for n, gs in enumerate(chosen):
                    cb(f"{gs.name}: {gs.documents}", n / len(chosen))
                    data += collect(open_for_set(gs, s, Path("eval/runs")), gs.questions)
            names = [gs.name for gs in chosen]
        rr, report = fit_collected(data, folds=folds, l2=l2, max_wrong_abstain=max_wrong_abstain)
        save_fitted(rr, out, names, f"qa fit-reranker --out {out} (fitted on {', '.join(names)})")
    except QAError as exc:
        _fail(exc)
        return
    console.print_json(json.dumps(report, ensure_ascii=False))
    console.print(
        f"weights written to {out}; use them with QA_RERANKER_WEIGHTS={out} (or reranker_weights in qa.toml)"
    )


@app.command("serve")
def serve_cmd(
    host: Annotated[
        str, typer.Option(help="Interface to bind; 127.0.0.1 unless you mean to share it")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 7860,
    documents: DocumentsOpt = None,
    index: IndexOpt = None,
    api_only: Annotated[bool, typer.Option("--api-only", help="Only the HTTP API, no web chat")] = False,
    workers: Annotated[
        int,
        typer.Option("--workers", help="API worker processes over the same index (more than 1: API only)"),
    ] = 1,
    config: ConfigOpt = None,
) -> None:
    """Start the web chat (and the HTTP API) or, with --api-only, just the API.

    --workers N (N > 1) starts N stateless API processes on one port over the same index or collection;
    an update made through any of them is seen by all within a second. The web chat keeps its session
    state in its process, so it is served by `qa serve` with one worker."""
    args = ["--host", host, "--port", str(port)]
    if documents:
        args += ["--documents", str(documents)]
    if index:
        args += ["--index", str(index)]
    if config:
        args += ["--config", str(config)]
    if workers > 1:
        from qa.serve.workers import main as workers_main

        raise typer.Exit(code=workers_main([*args, "--workers", str(workers)]))
    if api_only:
        from qa.serve.api import main as api_main

        raise typer.Exit(code=api_main(args))
    from qa.serve.chat import main as chat_main

    raise typer.Exit(code=chat_main(args))


@app.command(
    "bench", hidden=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def bench_cmd() -> None:
    """Moved: the benchmark is scripts/bench.py in a clone of the project."""
    # Hidden, not removed: README and eval/bench/*.md still name `qa bench`; one sentence beats "No such command".
    _fail(
        QAError(
            "The benchmark is no longer part of the installed qa command; run `make bench` "
            "(or `python scripts/bench.py --quick`) from a clone of the project."
        )
    )


if __name__ == "__main__":  # pragma: no cover
    app()
