"""The web chat's builder: the Gradio page, mounted next to the HTTP API in one process.

`app.py` (the entry point) and `qa serve` call `main`. It opens a `qa.Retriever` (building or updating
the index first, with progress in the terminal) and renders what `Retriever.ask` returns; it uses
qa's public API only. Every string that comes from a document or a user is HTML-escaped before it is
put into the page.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

# Before gradio is imported: no telemetry, no update check, and a temporary upload folder of this
# process's own (Gradio's default is shared by every Gradio app on the machine), swept and removed by us.
UPLOAD_PREFIX = "qa-chat-uploads-"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / f"{UPLOAD_PREFIX}{os.getpid()}"))

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from qa import Answer, DocumentInfo, Hit, IndexProblem, QAError, Retriever, load_settings  # noqa: E402
from qa.index.kb import DEFAULT_KB  # noqa: E402
from qa.search.answer import UNSURE_NOTE  # noqa: E402
from qa.serve.api import announce_access, create_api, open_for_serving  # noqa: E402
from qa.serve.kbs import KnowledgeBases  # noqa: E402
from qa.serve.security import (  # noqa: E402
    Access,
    chat_upload_folder,
    inside,
    remove_stale_upload_folders,
    remove_uploaded,
)

if TYPE_CHECKING:
    from qa.config import Settings

log = logging.getLogger("qa.chat")

# Fonts installed locally (fonts-noto-cjk on Debian, the OS fonts elsewhere); no GoogleFont, so the
# page fetches nothing from the internet.
CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", "sans-serif"]
MONO_FONTS = ["Noto Sans Mono CJK SC", "DejaVu Sans Mono", "monospace"]

EXAMPLES = [
    "2023年郑州GDP是多少？",
    "十四五期间要建成哪些国家级平台？",
    "2024年郑州计划新增城镇就业多少人？",
    "How many passengers did Zhengzhou airport handle in 2019?",
    "2024年 new urban jobs target?",
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
.qa-src { color: #71717a; font-size: .75em; }
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


# Characters Markdown (and GitHub's extensions) give a meaning to: written as character references they are
# only text, so no image, link, autolink, emphasis or code span can be made of a document's or a user's words.
_ESCAPES: dict[int, str] = {
    **{ord(c): f"&#{ord(c)};" for c in "!#()*+-.:=[\\]_`{|}~$@'\""},
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
}


def _e(value: object) -> str:
    """HTML-escape anything shown in the page, Markdown punctuation included (it is only ever text)."""
    return str(value).translate(_ESCAPES)  # one pass: no reference is ever escaped twice


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
    text = answer.text
    unsure = answer.unsure and not answer.abstained
    if unsure:
        text = text.removesuffix(UNSURE_NOTE)  # said before the line instead, where it is read first
    line = re.sub(r"&#91;(\d+)&#93;", r'<span class="qa-cite">&#91;\1&#93;</span>', _e(text))
    cls = "qa-answer qa-abstain" if answer.abstained else "qa-answer"
    if unsure:
        # the nearest material, not a stated answer
        cls = "qa-answer qa-unsure"
        line = (
            '<span class="qa-unsure-tag" style="color:#9a3412;font-weight:600">'
            "最接近的资料（未能确认它回答了所问的问题）：</span>" + line
        )
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


_SOURCE_LABELS = {"catalog": "目录", "title line": "标题行", "file name": "文件名", "text": "正文"}


def _years_text(years: Sequence[int]) -> str:
    ys = sorted(years)
    if len(ys) > 2 and ys[-1] - ys[0] == len(ys) - 1:
        return f"{ys[0]}–{ys[-1]}"
    return "、".join(str(y) for y in ys) or "—"


def _with_source(value: object, info: DocumentInfo, field: str) -> str:
    """A metadata value, escaped, with where it was read (目录 / 标题行 / 文件名 / 正文) as a small label."""
    src = info.sources.get(field)
    label = f' <span class="qa-src">{_e(_SOURCE_LABELS.get(src, src))}</span>' if src else ""
    return f"{_e(value)}{label}"


def render_documents(retriever: Retriever) -> str:
    """The indexed documents as an escaped HTML table: title, issuer and place, kind, year, years looked back
    on and planned for (each with where it was read), passages and file."""
    rows = []
    total = 0
    for d in retriever.documents():
        i = d.info
        total += d.passages
        who = " / ".join(x for x in (i.issuer, i.place) if x) or "—"
        rows.append(
            f"<tr><td>{_with_source(i.title, i, 'title')}</td><td>{_with_source(who, i, 'place')}</td>"
            f"<td>{_with_source(i.kind, i, 'kind')}</td><td>{_with_source(i.year or '—', i, 'year')}</td>"
            f"<td>{_with_source(_years_text(i.looks_back), i, 'looks_back')}</td>"
            f"<td>{_with_source(_years_text(i.plans_for), i, 'plans_for')}</td>"
            f"<td>{d.passages}</td><td>{_e(i.file)}</td></tr>"
        )
    return (
        '<div class="qa-docs"><table><thead><tr><th>文档</th><th>发布者 / 地方</th><th>类型</th><th>年份</th>'
        "<th>回顾</th><th>计划</th><th>段落</th><th>文件</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<div class="qa-meta">共 {len(rows)} 个文档，{total} 个段落。小字说明信息从哪里读出：目录（catalog.toml）、'
        "标题行、文件名或正文；读错了可由管理员更正。</div></div>"
    )


def parse_years(text: str | None) -> list[int] | None:
    """'2019, 2020' / '2016-2020' / '2019、2020' -> years; '' -> None (unchanged); QAError for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    years: list[int] = []
    for part in re.split(r"[,，、\s]+", text):
        m = re.fullmatch(r"(\d{4})(?:\s*[-–~至到]\s*(\d{4}))?", part)
        if not m:
            raise QAError(f"年份“{part[:20]}”看不懂；请写成 2019、2020 或 2016-2020。")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if not (1900 <= a <= b <= 2100 and b - a <= 30):
            raise QAError(f"年份“{part[:20]}”不在 1900–2100 之间或跨度太大。")
        years.extend(range(a, b + 1))
    return sorted(set(years))


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


MAX_MESSAGES = 40  # the chat keeps the last 20 questions and replies on screen (and in memory)


def user_html(question: str) -> str:
    """The user's own bubble: their words as text, line breaks as <br>, never Markdown or HTML."""
    lines = [_e(line) for line in question.split("\n")]
    return f'<div class="qa-user">{"<br>".join(lines)}</div>'


def chatbot(**kwargs: Any) -> gr.Chatbot:
    """The conversation component, as the page uses it (also what the rendering property test drives)."""
    return gr.Chatbot(
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
        placeholder=(
            "请输入关于郑州政府报告的问题，例如“2023年郑州GDP是多少？”"
            " · Questions in English work too: “What was Zhengzhou's GDP in 2023?”"
        ),
        **kwargs,
    )


def _headers(request: gr.Request | None) -> dict[str, str]:
    if request is None:
        return {}
    return {k.lower(): v for k, v in dict(request.headers).items()}


def _client(request: gr.Request | None) -> str:
    client = getattr(request, "client", None) if request is not None else None
    return str(getattr(client, "host", "") or "")


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


class ChatHandlers:
    """The page's event handlers: over the default retriever, the other knowledge bases (`kbs`) and the
    server's `access` (who may write). One method per event; Gradio reads each one's signature."""

    def __init__(self, retriever: Retriever, access: Access, kbs: KnowledgeBases | None = None) -> None:
        self.default = retriever
        self.access = access
        self.kbs = kbs

    def retriever(self, kb: str | None) -> Retriever:
        """The retriever of the knowledge base chosen in the page."""
        return pick_kb(self.default, self.kbs, kb)

    def respond(
        self,
        question: str,
        chat: list[dict[str, Any]],
        history: list[str],
        docs: list[str],
        years: list[Any],
        k: float,
        rerank: bool,
        kb: str | None = DEFAULT_KB,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], str]:
        """A question asked: its reply appended to the conversation, the question box emptied."""
        retriever = self.retriever(kb)
        # the conversation lives on the server (gr.State), so an event's body stays a question long
        question = (question or "").strip()[:2000]
        chat = list(chat or [])
        history = list(history or [])
        if not question:
            gr.Warning("请输入问题。")
            return chat, chat, history, ""
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
        chat += [{"role": "user", "content": user_html(question)}, {"role": "assistant", "content": reply}]
        chat = chat[-MAX_MESSAGES:]
        history.append(question)
        return chat, chat, history[-10:], ""

    def correct(
        self,
        doc: str | None,
        title: str,
        year: str,
        back: str,
        plan: str,
        kb: str | None,
        request: gr.Request,
    ) -> tuple[str, str, Any, Any]:
        """An admin's correction of a document's metadata (the same call as PATCH /api/documents/{file})."""
        retriever = self.retriever(kb)
        refusal = self.access.refusal(_headers(request))
        try:
            if refusal is not None:
                raise QAError(refusal[1])
            if not doc:
                raise QAError("请先选择要更正的文档。")
            changes = _metadata_changes(title, year, back, plan)
            info, _ = retriever.correct(
                doc,
                changes,
                actor=self.access.who(_headers(request)) or "?",
                via="chat",
                client=_client(request),
            )
            status = f"✓ 已更正 {_e(info.file)}：{_e(info.title)}（{_e(info.year or '—')}年）"
        except QAError as exc:
            status = f"✗ {_e(exc)}"
        except Exception:
            log.exception("correction of %r failed", doc)
            status = "✗ 更正失败，详情已记录在服务器日志中。"
        return (
            f'<div class="qa-meta">{status}</div>',
            render_documents(retriever),
            gr.update(choices=_doc_choices(retriever)),
            gr.update(choices=_year_choices(retriever)),
        )

    def clear(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """A new conversation: nothing on screen, no earlier questions."""
        return [], [], []

    def delete(self, name: str | None, kb: str | None, request: gr.Request) -> str:
        """An admin's removal of a document (the same call as DELETE /api/kb/{kb}/documents/{name})."""
        retriever = self.retriever(kb)
        refusal = self.access.refusal(_headers(request))
        try:
            if refusal is not None:
                raise QAError(refusal[1])
            if not name:
                raise QAError("请先选择要删除的文档。")
            report = retriever.remove_document(
                name, actor=self.access.who(_headers(request)) or "?", via="chat", client=_client(request)
            )
            message = f"✓ 已删除 {name}：它的段落不会再出现在回答中（用时 {report.seconds:.1f} 秒）。"
        except QAError as exc:
            message = f"✗ {exc}"
        except Exception:
            log.exception("removing %r failed", name)
            message = f"✗ {name}：删除失败，详情已记录在服务器日志中。"
        return f'<div class="qa-delete-status">{_e(message)}</div>'

    def upload(
        self,
        files: list[str] | None,
        kb: str | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[str, str, str, Any, Any, None]:
        """An admin's upload of the files picked in the page: each one indexed in turn, with progress."""
        retriever = self.retriever(kb)
        folder = chat_upload_folder()
        who = self.access.who(_headers(request))
        paths, messages = self._accepted_uploads([Path(f) for f in files or []], folder, request)
        for n, path in enumerate(paths):
            step = _file_progress(progress, n, len(paths), path.name)
            messages.extend(_index_upload(retriever, path, folder, step, who or "?", _client(request)))
        if not paths and not messages:
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

    def _accepted_uploads(
        self, paths: list[Path], folder: Path, request: gr.Request | None
    ) -> tuple[list[Path], list[str]]:
        """The uploaded files to index, or none and the refusal (who may not write, or a path not uploaded)."""
        refusal = self.access.refusal(_headers(request))
        if refusal is not None:
            # the page hides the upload panel from who may not write; a direct event call ends here
            remove_uploaded(folder, [p for p in paths if inside(p, folder)])
            return [], [f"✗ {refusal[1]}"]
        if any(not inside(p, folder) for p in paths):
            # only files this page just uploaded (Gradio's upload folder): never a path on the server
            log.warning("upload event named files outside %s from %s", folder, _client(request))
            return [], ["✗ 只能上传从本页面选择的文件。"]
        return paths, []

    def refresh(self, kb: str | None, request: gr.Request) -> tuple[str, str, Any, Any, str, Any]:
        """The documents as they are now, and the upload panel shown only to who may write."""
        retriever = self.retriever(kb)
        can_write = self.access.refusal(_headers(request)) is None
        if self.access.token:
            line = (
                '<div class="qa-meta">已以管理员身份登录 · <a href="/admin/login">退出</a></div>'
                if can_write
                else '<div class="qa-meta">上传文档需要管理员登录：<a href="/admin/login">管理员登录</a></div>'
            )
        else:
            line = "" if can_write else f'<div class="qa-meta">{_e(self.access.why_off)}</div>'
        return (
            render_summary(retriever),
            render_documents(retriever),
            gr.update(choices=_doc_choices(retriever)),
            gr.update(choices=_year_choices(retriever)),
            line,
            gr.update(visible=can_write),
        )

    def doc_choices(self, kb: str | None) -> tuple[Any, Any]:
        """The admin panel's two document lists (correct, delete), emptied of any choice."""
        choices = _doc_choices(self.retriever(kb))
        return gr.update(choices=choices, value=None), gr.update(choices=choices, value=None)

    def switch(self, kb: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Another knowledge base: a new conversation over it."""
        return ([], [], [], *self.refresh(kb, request))


def _metadata_changes(title: str, year: str, back: str, plan: str) -> dict[str, Any]:
    """The correction form's fields as Retriever.correct's changes; QAError when none or a bad year."""
    changes: dict[str, Any] = {
        "title": title.strip() or None,
        "year": int(year) if year.strip().isdigit() else None,
        "looks_back": parse_years(back),
        "plans_for": parse_years(plan),
    }
    if year.strip() and changes["year"] is None:
        raise QAError("年份要写成四位数字，例如 2024。")
    if all(v is None for v in changes.values()):
        raise QAError("没有要更正的内容；请填写标题、年份、回顾或计划的年份。")
    return changes


def _file_progress(
    progress: gr.Progress, n: int, total: int, name: str
) -> Callable[[str, float | None], None]:
    """The progress callback of the n-th of `total` uploaded files: its share of the bar, named."""

    def step(message: str, fraction: float | None) -> None:
        base = n / max(total, 1)
        span = 1 / max(total, 1)
        progress(base + span * (fraction or 0.0), desc=f"{name}：{message}")

    return step


def _index_upload(
    retriever: Retriever,
    path: Path,
    folder: Path,
    step: Callable[[str, float | None], None],
    who: str,
    client: str,
) -> list[str]:
    """Read one uploaded file (its temporary copy removed at once) and index it: the lines to show."""
    name = path.name
    step("读取文件", 0.0)
    try:
        data = path.read_bytes()
    except OSError:
        return [f"✗ {name}：无法读取上传的文件。"]
    finally:
        remove_uploaded(folder, [path])  # the temporary copy is not kept, whatever happens next
    try:
        report = retriever.add_upload(name, data, progress=step, actor=who, via="chat", client=client)
    except IndexProblem as exc:
        return [f"✗ {name}：{exc}"]
    except Exception:
        log.exception("upload of %r failed", name)
        return [f"✗ {name}：处理失败，详情已记录在服务器日志中。"]
    counts = {d.info.file: d.passages for d in retriever.documents()}
    messages = [
        f"✓ {added}：已加入索引，{counts.get(added, 0)} 个段落（用时 {report.seconds:.1f} 秒）。"
        for added in [*report.added, *report.updated]
    ]
    messages.extend(f"✗ {err}" for err in report.errors)
    if not (report.added or report.updated or report.errors):
        messages.append(f"· {name}：内容没有变化。")
    return messages


@dataclass
class Conversation:
    """The page's top: summary line, knowledge-base selector, the conversation and the question box."""

    summary: gr.HTML
    kb_select: gr.Dropdown
    history: gr.State
    messages: gr.State
    chat: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    examples: list[gr.Button]
    clear: gr.Button


@dataclass
class FilterControls:
    """The 筛选与设置 accordion: documents, years, number of passages, reranking."""

    docs: gr.Dropdown
    years: gr.Dropdown
    k: gr.Slider
    rerank: gr.Checkbox


@dataclass
class DocumentsPanel:
    """The 文档与上传 accordion: the document list and, for who may write, upload, correction and removal."""

    docs_html: gr.HTML
    admin_line: gr.HTML
    upload_panel: gr.Column
    files: gr.File
    upload_btn: gr.Button
    upload_status: gr.HTML
    fix_doc: gr.Dropdown
    fix_title: gr.Textbox
    fix_year: gr.Textbox
    fix_back: gr.Textbox
    fix_plan: gr.Textbox
    fix_btn: gr.Button
    fix_status: gr.HTML
    delete_doc: gr.Dropdown
    delete_btn: gr.Button
    delete_status: gr.HTML


def conversation_layout(kbs: KnowledgeBases | None) -> Conversation:
    """Title, summary line, knowledge-base selector, conversation, question box, examples, 新对话."""
    gr.Markdown("## 郑州政府报告问答\n根据郑州市政府工作报告和“十四五”规划纲要回答问题，每个回答都注明出处。")
    # Filled by the page-load event (and after uploads): what is indexed right now.
    summary = gr.HTML('<div class="qa-meta">正在读取文档列表…</div>', elem_id="qa-summary")
    kb_select = kb_panel(kbs)
    history = gr.State([])
    messages = gr.State([])
    chat = chatbot()
    with gr.Row(equal_height=True):
        question = gr.Textbox(
            show_label=False,
            placeholder="输入问题，回车发送（中文或英文）· Ask in Chinese or English, Enter to send",
            elem_id="qa-question",
            scale=5,
            max_length=2000,
            autofocus=True,
        )
        send = gr.Button("提问", variant="primary", elem_id="qa-send", scale=1, min_width=80)
    with gr.Row(elem_id="qa-examples"):
        examples = [
            gr.Button(q, size="sm", elem_classes=["qa-example"], variant="secondary") for q in EXAMPLES
        ]
    clear = gr.Button("新对话", size="sm", elem_id="qa-clear")
    return Conversation(summary, kb_select, history, messages, chat, question, send, examples, clear)


def filters_layout(retriever: Retriever) -> FilterControls:
    """The 筛选与设置 accordion, its choices from the default knowledge base (the page load refreshes them)."""
    with gr.Accordion("筛选与设置", open=False, elem_id="qa-filters"):
        docs = gr.Dropdown(
            choices=_doc_choices(retriever),
            multiselect=True,
            label="只在这些文档中查找",
            elem_id="qa-doc-filter",
        )
        years = gr.Dropdown(
            choices=_year_choices(retriever), multiselect=True, label="年份", elem_id="qa-year-filter"
        )
        with gr.Row():
            k = gr.Slider(1, 10, value=retriever.settings.top_k, step=1, label="段落数", elem_id="qa-k")
            rerank = gr.Checkbox(
                value=retriever.settings.reranker != "none",
                label="重排序（reranker）",
                elem_id="qa-rerank",
            )
    return FilterControls(docs, years, k, rerank)


def documents_layout(retriever: Retriever) -> DocumentsPanel:
    """The 文档与上传 accordion: the document list, then the admin panel (hidden until the page load)."""
    with gr.Accordion("文档与上传", open=False, elem_id="qa-docs-panel"):
        # Filled by the page-load event, so every visitor sees the current list.
        docs_html = gr.HTML('<div class="qa-meta">正在读取文档列表…</div>', elem_id="qa-docs")
        # Shown by the page-load event only to who may write (a signed-in admin, or everyone on a
        # loopback server without a token); the handler checks again.
        admin_line = gr.HTML(elem_id="qa-admin")
        with gr.Column(visible=False, elem_id="qa-upload-panel") as upload_panel:
            panel = _admin_layout(retriever, docs_html, admin_line, upload_panel)
    return panel


def _admin_layout(
    retriever: Retriever, docs_html: gr.HTML, admin_line: gr.HTML, upload_panel: gr.Column
) -> DocumentsPanel:
    """Inside the admin panel: upload, correction of a document's metadata, removal."""
    files = gr.File(
        label="上传文档（txt、md、pdf、docx、html）",
        file_count="multiple",
        file_types=[".txt", ".md", ".pdf", ".docx", ".html", ".htm"],
        elem_id="qa-upload",
    )
    upload_btn = gr.Button("加入索引", elem_id="qa-upload-btn")
    upload_status = gr.HTML(elem_id="qa-upload-status")
    gr.Markdown("**更正文件信息**（写入 catalog.toml；不重新嵌入，下一个问题即按新年份检索）")
    fix_doc = gr.Dropdown(choices=_doc_choices(retriever), label="文档", elem_id="qa-fix-doc")
    with gr.Row():
        fix_title = gr.Textbox(label="标题（留空不改）", elem_id="qa-fix-title", max_length=200)
        fix_year = gr.Textbox(label="年份", elem_id="qa-fix-year", max_length=4)
    with gr.Row():
        fix_back = gr.Textbox(label="回顾的年份，如 2019 或 2016-2020", elem_id="qa-fix-back", max_length=60)
        fix_plan = gr.Textbox(label="计划的年份", elem_id="qa-fix-plan", max_length=60)
    fix_btn = gr.Button("保存更正", elem_id="qa-fix-btn")
    fix_status = gr.HTML(elem_id="qa-fix-status")
    gr.Markdown("**删除文档**（从文档文件夹和索引中移除；它的段落不再出现在回答中）")
    delete_doc = gr.Dropdown(choices=[], label="要删除的文档", elem_id="qa-delete-doc")
    delete_btn = gr.Button("删除文档", variant="stop", elem_id="qa-delete-btn")
    delete_status = gr.HTML(elem_id="qa-delete-status")
    return DocumentsPanel(
        docs_html,
        admin_line,
        upload_panel,
        files,
        upload_btn,
        upload_status,
        fix_doc,
        fix_title,
        fix_year,
        fix_back,
        fix_plan,
        fix_btn,
        fix_status,
        delete_doc,
        delete_btn,
        delete_status,
    )


def wire_events(
    ui: gr.Blocks, on: ChatHandlers, talk: Conversation, filters: FilterControls, panel: DocumentsPanel
) -> None:
    """Connect the page's components to the handlers (inside the Blocks context, in a fixed order)."""
    # The documented API is qa.serve.api under /api; Gradio's endpoints only carry the page's events.
    inputs = [
        talk.messages,
        talk.history,
        filters.docs,
        filters.years,
        filters.k,
        filters.rerank,
        talk.kb_select,
    ]
    outputs = [talk.chat, talk.messages, talk.history, talk.question]
    # Retrieval is safe for concurrent readers, so questions need not queue behind each other.
    # After a reply, scroll to the new question so the answer line is in view, not the last card.
    events = [
        talk.question.submit(
            on.respond, [talk.question, *inputs], outputs, concurrency_limit=8, api_visibility=PRIVATE
        ),
        talk.send.click(
            on.respond, [talk.question, *inputs], outputs, concurrency_limit=8, api_visibility=PRIVATE
        ),
        *(
            b.click(on.respond, [b, *inputs], outputs, concurrency_limit=8, api_visibility=PRIVATE)
            for b in talk.examples
        ),
    ]
    for ev in events:
        ev.then(None, None, None, js=SCROLL_TO_LAST_QUESTION)
    talk.clear.click(on.clear, None, [talk.chat, talk.messages, talk.history], api_visibility=PRIVATE)
    _wire_documents(ui, on, talk, filters, panel)


def _wire_documents(
    ui: gr.Blocks, on: ChatHandlers, talk: Conversation, filters: FilterControls, panel: DocumentsPanel
) -> None:
    """The page load, the knowledge-base switch and the admin panel's events."""
    kb = talk.kb_select
    lists = [talk.summary, panel.docs_html, filters.docs, filters.years, panel.admin_line, panel.upload_panel]
    admin_docs = [panel.fix_doc, panel.delete_doc]
    # Each page load shows the documents as they are now (another user may have uploaded one) and the
    # upload panel to who may write; it also runs Gradio's event queue once before the first question.
    ui.load(on.refresh, [kb], lists, api_visibility=PRIVATE).then(
        on.doc_choices, [kb], admin_docs, api_visibility=PRIVATE
    )
    kb.change(on.switch, [kb], [talk.chat, talk.messages, talk.history, *lists], api_visibility=PRIVATE).then(
        on.doc_choices, [kb], admin_docs, api_visibility=PRIVATE
    )
    panel.fix_btn.click(
        on.correct,
        [panel.fix_doc, panel.fix_title, panel.fix_year, panel.fix_back, panel.fix_plan, kb],
        [panel.fix_status, panel.docs_html, filters.docs, filters.years],
        concurrency_limit=1,
        api_visibility=PRIVATE,
    )
    panel.delete_btn.click(
        on.delete, [panel.delete_doc, kb], [panel.delete_status], concurrency_limit=1, api_visibility=PRIVATE
    ).then(on.refresh, [kb], lists, api_visibility=PRIVATE).then(
        on.doc_choices, [kb], admin_docs, api_visibility=PRIVATE
    )
    panel.upload_btn.click(
        on.upload,
        [panel.files, kb],
        [panel.upload_status, talk.summary, panel.docs_html, filters.docs, filters.years, panel.files],
        concurrency_limit=1,
        api_visibility=PRIVATE,
    ).then(on.doc_choices, [kb], admin_docs, api_visibility=PRIVATE)


def build_ui(
    retriever: Retriever, access: Access | None = None, kbs: KnowledgeBases | None = None
) -> gr.Blocks:
    """The chat page: conversation, filters, examples, document list and (for who may write) upload,
    corrections and removal; with several knowledge bases (`kbs`) a selector (kb_panel)."""
    handlers = ChatHandlers(retriever, access or Access.from_settings(retriever.settings), kbs)
    with gr.Blocks(title="郑州政府报告问答", analytics_enabled=False) as ui:
        conversation = conversation_layout(kbs)
        filters = filters_layout(retriever)
        documents = documents_layout(retriever)
        wire_events(ui, handlers, conversation, filters, documents)
    return ui


def create_app(
    retriever: Retriever, settings: Settings | None = None, access: Access | None = None
) -> FastAPI:
    """The FastAPI app with the HTTP API under /api and the chat UI mounted at '/'."""
    settings = settings or retriever.settings
    access = access or Access.from_settings(settings)
    folder = chat_upload_folder()
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_upload_folders(folder.parent, UPLOAD_PREFIX)
    kbs = KnowledgeBases(settings, default=retriever)
    api = create_api(lambda: retriever, settings, access=access, upload_folder=folder, kbs=kbs)
    ui = build_ui(retriever, access, kbs)
    app = gr.mount_gradio_app(
        api,
        ui,
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
        # nothing outside the upload folder may be handed to an event or served (the index and the
        # documents folder least of all)
        blocked_paths=[str(Path(settings.index_dir).resolve()), str(Path(settings.documents_dir).resolve())],
    )
    # mount_gradio_app leaves this False, and with it Gradio skips its own check that a file named in an
    # event was uploaded through the page (issue 16: any readable file could be pulled into the index)
    ui.has_launched = True
    return app


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
        access = Access.from_settings(settings)
        retriever = open_for_serving(settings, _progress)
    except QAError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    print(f"[app] index ready in {time.perf_counter() - t0:.1f} s; loading the query encoder", flush=True)
    # One throwaway question loads the encoder now, so the first visitor's answer is as fast as the rest.
    retriever.ask("郑州市政府工作报告", k=1)
    app = create_app(retriever, settings, access)
    host, port = settings.host, settings.port
    print(f"[app] ready in {time.perf_counter() - t0:.1f} s", flush=True)
    announce_access(access, host)
    print(f"[app] open http://{host}:{port}/  (API docs at /docs)", flush=True)

    import uvicorn

    try:
        # proxy_headers=False: uvicorn would trust X-Forwarded-For from loopback; trusted_proxies decides (Guard)
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)
    finally:
        shutil.rmtree(chat_upload_folder(), ignore_errors=True)  # files received but never indexed
    return 0
