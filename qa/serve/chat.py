"""The web chat's builder: the Gradio page, mounted next to the HTTP API in one process.

`app.py` (the entry point) and `qa serve` call `main`. It opens a `qa.Retriever` (building or updating
the index first, with progress in the terminal) and renders what `Retriever.ask` returns; it uses
qa's public API only. Every string that comes from a document or a user is HTML-escaped before it is
put into the page.
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

# Before gradio is imported: no telemetry, no update check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from qa import Answer, Hit, QAError, Retriever, load_settings  # noqa: E402
from qa.serve.api import create_api  # noqa: E402
from qa.serve.auth import admin_refusal  # noqa: E402
from qa.serve.kbs import KnowledgeBases  # noqa: E402

if TYPE_CHECKING:
    from qa.config import Settings

DEFAULT_KB = "default"

log = logging.getLogger("qa.chat")

# Fonts installed locally (fonts-noto-cjk on Debian, the OS fonts elsewhere); no GoogleFont, so the
# page fetches nothing from the internet.
CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", "sans-serif"]
MONO_FONTS = ["Noto Sans Mono CJK SC", "DejaVu Sans Mono", "monospace"]

EXAMPLES = [
    "2023年郑州GDP是多少？",
    "十四五期间要建成哪些国家级平台？",
    "2024年郑州计划新增城镇就业多少人？",
    "What was Zhengzhou's GDP in 2023?",
]

CSS = """
.qa-reply { line-height: 1.7; }
.qa-answer { font-size: 1.05em; margin-bottom: .4em; }
.qa-abstain { color: #9a3412; }
.qa-notes { color: #555; font-size: .9em; margin: .2em 0 .6em; }
.qa-cite { color: #1d4ed8; font-weight: 600; }
.qa-card { border: 1px solid #d4d4d8; border-radius: 8px; padding: .5em .7em; margin: .5em 0;
  background: rgba(255,255,255,.6); overflow-wrap: anywhere; }
.qa-card-head { font-weight: 600; }
.qa-meta { color: #555; font-size: .85em; }
.qa-text { white-space: pre-wrap; margin-top: .3em; }
.qa-text mark { background: #fde68a; padding: 0 .1em; }
.qa-context .qa-source { font-size: .85em; max-height: 18em; overflow: auto; color: #555;
  border-left: 3px solid #d4d4d8; padding-left: .5em; }
.qa-context .qa-source b { color: #111; font-weight: 500; }
.qa-docs table { width: 100%; border-collapse: collapse; font-size: .9em; }
.qa-docs td, .qa-docs th { border-bottom: 1px solid #e4e4e7; padding: .25em .4em; text-align: left; }
.qa-user { white-space: pre-wrap; }
#qa-examples { flex-wrap: wrap; gap: 6px; }
#qa-examples button { flex: 0 1 auto !important; min-width: 0 !important; width: auto !important; }
@media (max-width: 640px) {
  .gradio-container { padding: 4px !important; }
  .qa-card { padding: .4em .5em; }
  .qa-meta { font-size: .8em; }
}
"""

PRIVATE: Literal["private"] = "private"
SCROLL_TO_LAST_QUESTION = """() => {
  setTimeout(() => {
    const rows = document.querySelectorAll('#qa-chat .user-row');
    if (rows.length) rows[rows.length - 1].scrollIntoView({block: 'start', behavior: 'instant'});
  }, 50);
}"""


def theme() -> gr.themes.Base:
    """Gradio's default look with local CJK fonts only."""
    return gr.themes.Default(font=CJK_FONTS, font_mono=MONO_FONTS)


def _e(value: object) -> str:
    """HTML-escape anything shown in the page."""
    return html.escape(str(value), quote=True)


def _block(text: str) -> str:
    # The chatbot runs messages through Markdown; an HTML block must not contain blank lines or
    # Markdown would start parsing the rest as text.
    return re.sub(r"\n\s*\n", "\n", text)


def _passage_html(hit: Hit) -> str:
    """The passage text, escaped, with the answer sentence wrapped in <mark>."""
    text = hit.passage.text
    hl = hit.highlight
    if hl and hl in text:
        i = text.index(hl)
        return _e(text[:i]) + "<mark>" + _e(hl) + "</mark>" + _e(text[i + len(hl) :])
    return _e(text)


def _context_html(retriever: Retriever, hit: Hit) -> str:
    try:
        ctx = retriever.context(hit.passage.id)
    except QAError as exc:
        return f'<div class="qa-meta">{_e(exc)}</div>'
    first = getattr(ctx, "passage_start_line", hit.passage.span.start_line)
    last = getattr(ctx, "passage_end_line", hit.passage.span.end_line)
    lines = []
    for n, line in enumerate(ctx.text.split("\n"), ctx.start_line):
        # The passage's own lines stand out from the surrounding ones.
        lines.append(f"<b>{_e(line)}</b>" if first <= n <= last else _e(line))
    # <br> rather than newlines: the chat treats a blank line as the end of an HTML block.
    return (
        f'<details class="qa-context"><summary>查看原文（{_e(ctx.doc)} 第{ctx.start_line}–{ctx.end_line}行）'
        f'</summary><div class="qa-source">{"<br>".join(lines)}</div></details>'
    )


def render_hits(retriever: Retriever, hits: Sequence[Hit]) -> str:
    """Numbered passage cards: title, year, section, lines/page, score, marked text, source context."""
    cards = []
    for n, hit in enumerate(hits, 1):
        p = hit.passage
        title = p.title + (f"（{p.year}）" if p.year and str(p.year) not in p.title else "")
        meta = [p.section_path or "（无章节）", p.span.label(), f"得分 {hit.score:.3f}"]
        # The chat's sanitiser drops data-* attributes, so the file name is a span of its own.
        cards.append(
            f'<div class="qa-card">'
            f'<div class="qa-card-head">[{n}] {_e(title)}</div>'
            f'<div class="qa-meta">{" · ".join(_e(m) for m in meta)} · <span class="qa-doc">{_e(p.doc)}</span></div>'
            f'<div class="qa-text">{_passage_html(hit)}</div>'
            f"{_context_html(retriever, hit)}</div>"
        )
    return "".join(cards)


def render_answer(retriever: Retriever, answer: Answer) -> str:
    """One chat reply as HTML: answer line with [n] markers, how the question was read, the cards."""
    line = re.sub(r"\[(\d+)\]", r'<span class="qa-cite">[\1]</span>', _e(answer.text))
    cls = "qa-answer qa-abstain" if answer.abstained else "qa-answer"
    parts = [f'<div class="qa-reply"><div class="{cls}">{line}</div>']
    notes = list(answer.query.notes)
    if answer.query.filters:
        f = answer.query.filters
        shown = [*(f.get("doc") or []), *(f"{y}年" for y in f.get("year") or [])]
        if shown:
            notes.append("筛选：" + "、".join(str(s) for s in shown))
    if notes:
        parts.append(f'<div class="qa-notes">问题理解：{_e("；".join(notes))}</div>')
    if answer.abstained and answer.hits and "最接近" not in answer.text:
        parts.append('<div class="qa-notes">最接近的段落，供参考：</div>')
    parts.append(render_hits(retriever, answer.hits))
    parts.append("</div>")
    return _block("".join(parts))


def render_documents(retriever: Retriever) -> str:
    """The indexed documents with their passage counts, as an escaped HTML table."""
    rows = []
    total = 0
    for d in retriever.documents():
        i = d.info
        total += d.passages
        rows.append(
            f"<tr><td>{_e(i.title)}</td><td>{_e(i.year or '')}</td><td>{_e(i.kind)}</td>"
            f"<td>{d.passages}</td><td>{_e(i.file)}</td></tr>"
        )
    return (
        f'<div class="qa-docs"><table><thead><tr><th>文档</th><th>年份</th><th>类型</th><th>段落</th>'
        f"<th>文件</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<div class="qa-meta">共 {len(rows)} 个文档，{total} 个段落</div></div>'
    )


def render_summary(retriever: Retriever) -> str:
    """One line under the title: how many documents and passages are indexed."""
    docs = retriever.documents()
    passages = sum(d.passages for d in docs)
    return f'<div class="qa-meta qa-summary">已索引 {len(docs)} 个文档、{passages} 个段落（见“文档与上传”）。</div>'


def _doc_choices(retriever: Retriever) -> list[tuple[str, str]]:
    return [(f"{d.info.title}（{d.info.file}）", d.info.file) for d in retriever.documents()]


def _year_choices(retriever: Retriever) -> list[int]:
    years: set[int] = set()
    for d in retriever.documents():
        i = d.info
        years.update(i.looks_back)
        years.update(i.plans_for)
        if i.year:
            years.add(i.year)
    return sorted(years)


def _filters(docs: Sequence[str] | None, years: Sequence[Any] | None) -> dict[str, Any] | None:
    f: dict[str, Any] = {}
    if docs:
        f["doc"] = list(docs)
    if years:
        f["year"] = [int(y) for y in years]
    return f or None


def _user_html(question: str) -> str:
    return f'<div class="qa-user">{_e(question)}</div>'


def build_ui(retriever: Retriever, kbs: KnowledgeBases | None = None) -> gr.Blocks:
    """The chat page: conversation, filters, examples, document list and upload; with several knowledge
    bases a selector, and for an admin a delete button (kb_panel, curate_panel)."""
    default_retriever = retriever

    def respond(
        question: str,
        chat: list[dict[str, Any]],
        history: list[str],
        docs: list[str],
        years: list[Any],
        k: float,
        rerank: bool,
        kb: str | None = DEFAULT_KB,
    ) -> tuple[list[dict[str, Any]], list[str], str]:
        retriever = pick_kb(default_retriever, kbs, kb)
        question = (question or "").strip()
        chat = list(chat or [])
        history = list(history or [])
        if not question:
            gr.Warning("请输入问题。")
            return chat, history, ""
        t0 = time.perf_counter()
        try:
            answer = retriever.ask(
                question, k=int(k), filters=_filters(docs, years), rerank=bool(rerank), history=history
            )
            reply = render_answer(retriever, answer)
        except QAError as exc:
            reply = f'<div class="qa-reply qa-abstain">{_e(exc)}</div>'
        except Exception:
            # A bug must not put a traceback (or its message) in front of the user; the log has it.
            log.exception("answering %r failed", question[:200])
            reply = '<div class="qa-reply qa-abstain">出错了，这个问题没能回答；请换个问法再试。详情已记录在服务器日志中。</div>'
        print(f"[chat] answered in {(time.perf_counter() - t0) * 1000:.0f} ms: {question[:40]!r}", flush=True)
        chat += [{"role": "user", "content": _user_html(question)}, {"role": "assistant", "content": reply}]
        history.append(question)
        return chat, history[-10:], ""

    def clear() -> tuple[list[dict[str, Any]], list[str]]:
        return [], []

    def upload(
        files: list[str] | None, kb: str | None = DEFAULT_KB, progress: gr.Progress = gr.Progress()
    ) -> tuple[str, str, str, Any, Any, None]:
        retriever = pick_kb(default_retriever, kbs, kb)
        messages = []
        paths = [Path(f) for f in files or []]
        for n, path in enumerate(paths):
            name = path.name

            def step(message: str, fraction: float | None, n: int = n, name: str = name) -> None:
                base = n / max(len(paths), 1)
                span = 1 / max(len(paths), 1)
                progress(base + span * (fraction or 0.0), desc=f"{name}：{message}")

            step("读取文件", 0.0)
            try:
                data = path.read_bytes()
            except OSError:
                messages.append(f"✗ {name}：无法读取上传的文件。")
                continue
            try:
                report = retriever.add_upload(name, data, progress=step)
            except Exception:
                log.exception("upload of %r failed", name)
                messages.append(f"✗ {name}：处理失败，详情已记录在服务器日志中。")
                continue
            counts = {d.info.file: d.passages for d in retriever.documents()}
            for added in [*report.added, *report.updated]:
                messages.append(
                    f"✓ {added}：已加入索引，{counts.get(added, 0)} 个段落（用时 {report.seconds:.1f} 秒）。"
                )
            for err in report.errors:
                messages.append(f"✗ {err}")
            if not (report.added or report.updated or report.errors):
                messages.append(f"· {name}：内容没有变化。")
        if not paths:
            messages.append("请先选择要上传的文件。")
        status = "<br>".join(_e(m) for m in messages)
        return (
            f'<div class="qa-upload-status">{status}</div>',
            render_summary(retriever),
            render_documents(retriever),
            gr.update(choices=_doc_choices(retriever)),
            gr.update(choices=_year_choices(retriever)),
            None,  # empty the file picker so the next upload starts clean
        )

    with gr.Blocks(title="郑州政府报告问答", analytics_enabled=False) as ui:
        gr.Markdown(
            "## 郑州政府报告问答\n根据郑州市政府工作报告和“十四五”规划纲要回答问题，每个回答都注明出处。"
        )
        # Filled by the page-load event (and after uploads): what is indexed right now.
        summary = gr.HTML('<div class="qa-meta">正在读取文档列表…</div>', elem_id="qa-summary")
        kb_select = kb_panel(kbs)
        history = gr.State([])
        chat = gr.Chatbot(
            label="对话",
            show_label=False,
            elem_id="qa-chat",
            height="60vh",
            sanitize_html=True,
            autoscroll=False,  # the reply's top (answer line) is scrolled into view instead
            layout="panel",
            latex_delimiters=[],  # "$" in report text must not start math
            feedback_options=None,
            buttons=["copy"],
            placeholder="请输入关于郑州政府报告的问题，例如“2023年郑州GDP是多少？”",
        )
        with gr.Row(equal_height=True):
            question = gr.Textbox(
                show_label=False,
                placeholder="输入问题，回车发送（中文或英文）",
                elem_id="qa-question",
                scale=5,
                max_length=2000,
                autofocus=True,
            )
            send = gr.Button("提问", variant="primary", elem_id="qa-send", scale=1, min_width=80)
        with gr.Row(elem_id="qa-examples"):
            example_buttons = [
                gr.Button(q, size="sm", elem_classes=["qa-example"], variant="secondary") for q in EXAMPLES
            ]
        clear_btn = gr.Button("新对话", size="sm", elem_id="qa-clear")
        with gr.Accordion("筛选与设置", open=False, elem_id="qa-filters"):
            doc_filter = gr.Dropdown(
                choices=_doc_choices(retriever),
                multiselect=True,
                label="只在这些文档中查找",
                elem_id="qa-doc-filter",
            )
            year_filter = gr.Dropdown(
                choices=_year_choices(retriever), multiselect=True, label="年份", elem_id="qa-year-filter"
            )
            with gr.Row():
                k = gr.Slider(1, 10, value=retriever.settings.top_k, step=1, label="段落数", elem_id="qa-k")
                rerank = gr.Checkbox(
                    value=retriever.settings.reranker != "none",
                    label="重排序（reranker）",
                    elem_id="qa-rerank",
                )
        with gr.Accordion("文档与上传", open=False, elem_id="qa-docs-panel"):
            # Filled by the page-load event, so every visitor sees the current list.
            docs_html = gr.HTML('<div class="qa-meta">正在读取文档列表…</div>', elem_id="qa-docs")
            files = gr.File(
                label="上传文档（txt、md、pdf、docx、html）",
                file_count="multiple",
                file_types=[".txt", ".md", ".pdf", ".docx", ".html", ".htm"],
                elem_id="qa-upload",
            )
            upload_btn = gr.Button("加入索引", elem_id="qa-upload-btn")
            upload_status = gr.HTML(elem_id="qa-upload-status")
            curate = curate_panel()

        # The documented API is qa.serve.api under /api; Gradio's endpoints only carry the page's events.
        inputs = [chat, history, doc_filter, year_filter, k, rerank, kb_select]
        outputs = [chat, history, question]
        # Retrieval is safe for concurrent readers, so questions need not queue behind each other.
        # After a reply, scroll to the new question so the answer line is in view, not the last card.
        events = [
            question.submit(
                respond, [question, *inputs], outputs, concurrency_limit=8, api_visibility=PRIVATE
            ),
            send.click(respond, [question, *inputs], outputs, concurrency_limit=8, api_visibility=PRIVATE),
            *(
                b.click(respond, [b, *inputs], outputs, concurrency_limit=8, api_visibility=PRIVATE)
                for b in example_buttons
            ),
        ]
        for ev in events:
            ev.then(None, None, None, js=SCROLL_TO_LAST_QUESTION)
        clear_btn.click(clear, None, [chat, history], api_visibility=PRIVATE)

        def refresh(kb: str | None = DEFAULT_KB) -> tuple[str, str, Any, Any, Any]:
            retriever = pick_kb(default_retriever, kbs, kb)
            return (
                render_summary(retriever),
                render_documents(retriever),
                gr.update(choices=_doc_choices(retriever)),
                gr.update(choices=_year_choices(retriever)),
                gr.update(choices=_doc_choices(retriever), value=None),
            )

        lists = [summary, docs_html, doc_filter, year_filter, curate.doc]
        # Each page load shows the documents as they are now (another user may have uploaded one);
        # it also runs Gradio's event queue once before the first question.
        ui.load(refresh, [kb_select], lists, api_visibility=PRIVATE)
        wire_kb_and_curating(default_retriever, kbs, kb_select, curate, chat, history, lists, refresh)
        upload_btn.click(
            upload,
            [files, kb_select],
            [upload_status, summary, docs_html, doc_filter, year_filter, files],
            concurrency_limit=1,
            api_visibility=PRIVATE,
        )
    return ui


# ---- knowledge bases and curating (issue 17) ---------------------------------------------------------
def pick_kb(default: Retriever, kbs: KnowledgeBases | None, kb: str | None) -> Retriever:
    """The retriever of the knowledge base chosen in the page (the default one when there is no choice)."""
    return default if kbs is None or not kb or kb == DEFAULT_KB else kbs.get(kb)


def kb_panel(kbs: KnowledgeBases | None) -> gr.Dropdown:
    """The knowledge-base selector: shown when more than the default knowledge base exists."""
    names = [b.name for b in kbs.known()] if kbs is not None else [DEFAULT_KB]
    return gr.Dropdown(
        choices=[(("默认（documents/）" if n == DEFAULT_KB else n), n) for n in names],
        value=DEFAULT_KB,
        label="知识库",
        visible=len(names) > 1,
        elem_id="qa-kb",
    )


@dataclass
class CuratePanel:
    """The admin's controls for removing a document."""

    token: gr.Textbox
    doc: gr.Dropdown
    button: gr.Button
    status: gr.HTML


def curate_panel() -> CuratePanel:
    """An admin's delete button: the write token (checked on the server at every click) and a document."""
    with gr.Accordion("管理员：删除文档", open=False, elem_id="qa-curate"):
        token = gr.Textbox(
            label="管理员口令（admin_token；本机且未设置口令时可留空）",
            type="password",
            elem_id="qa-admin-token",
        )
        doc = gr.Dropdown(choices=[], label="要删除的文档", elem_id="qa-delete-doc")
        button = gr.Button("删除文档", variant="stop", elem_id="qa-delete-btn")
        status = gr.HTML(elem_id="qa-delete-status")
    return CuratePanel(token, doc, button, status)


def wire_kb_and_curating(
    default: Retriever,
    kbs: KnowledgeBases | None,
    kb_select: gr.Dropdown,
    curate: CuratePanel,
    chat: gr.Chatbot,
    history: gr.State,
    lists: list[Any],
    refresh: Any,
) -> None:
    """Switching knowledge base starts a new conversation over it; the delete button removes a document
    after the same write-token check as DELETE /api/kb/{kb}/documents/{name} (qa.serve.auth)."""

    def switch(kb: str) -> tuple[Any, ...]:
        return ([], [], *refresh(kb))

    kb_select.change(switch, [kb_select], [chat, history, *lists], api_visibility=PRIVATE)

    def delete(token: str, name: str | None, kb: str) -> tuple[Any, ...]:
        retriever = pick_kb(default, kbs, kb)
        refusal = admin_refusal((token or "").strip(), retriever.settings)
        if refusal is not None:
            message = f"✗ {refusal[1]}"
        elif not name:
            message = "请先选择要删除的文档。"
        else:
            try:
                report = retriever.remove_document(name)
                message = f"✓ 已删除 {name}：它的段落不会再出现在回答中（用时 {report.seconds:.1f} 秒）。"
            except QAError as exc:
                message = f"✗ {exc}"
            except Exception:
                log.exception("removing %r failed", name)
                message = f"✗ {name}：删除失败，详情已记录在服务器日志中。"
        return (f'<div class="qa-delete-status">{_e(message)}</div>', *refresh(kb))

    curate.button.click(
        delete,
        [curate.token, curate.doc, kb_select],
        [curate.status, *lists],
        concurrency_limit=1,
        api_visibility=PRIVATE,
    )


def create_app(retriever: Retriever, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app with the HTTP API under /api and the chat UI mounted at '/'."""
    settings = settings or retriever.settings
    kbs = KnowledgeBases(settings, default=retriever)
    api = create_api(lambda: retriever, settings, kbs=kbs)
    return gr.mount_gradio_app(
        api,
        build_ui(retriever, kbs),
        path="/",
        theme=theme(),
        css=CSS,
        footer_links=[],
        run_history=False,
        max_file_size=f"{settings.max_upload_mb}mb",
        show_error=False,  # unexpected errors are logged, users get one sentence
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
    )


def _progress(message: str, fraction: float | None) -> None:
    pct = f"{fraction * 100:5.1f}% " if fraction is not None else ""
    print(f"[index] {pct}{message}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, open or build the index, serve the chat and the API until interrupted."""
    parser = argparse.ArgumentParser(description="郑州政府报告问答：web chat and HTTP API")
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860)")
    parser.add_argument("--documents", default=None, help="documents folder (default documents)")
    parser.add_argument("--index", default=None, help="index folder (default index)")
    parser.add_argument("--config", default=None, help="a qa.toml with settings")
    parser.add_argument(
        "--share", default="never", choices=["never"], help="public share links are not offered (no tunnels)"
    )
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    try:
        settings = load_settings(
            args.config, host=args.host, port=args.port, documents_dir=args.documents, index_dir=args.index
        )
        retriever = Retriever.open(
            settings.index_dir, settings, documents_dir=settings.documents_dir, build=True, progress=_progress
        )
    except QAError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    print(f"[app] index ready in {time.perf_counter() - t0:.1f} s; loading the query encoder", flush=True)
    # One throwaway question loads the encoder now, so the first visitor's answer is as fast as the rest.
    retriever.ask("郑州市政府工作报告", k=1)
    app = create_app(retriever, settings)
    host, port = settings.host, settings.port
    print(f"[app] ready in {time.perf_counter() - t0:.1f} s", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"[app] WARNING: listening on {host}; put it behind a proxy with authentication.", flush=True)
    print(f"[app] open http://{host}:{port}/  (API docs at /docs)", flush=True)

    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
