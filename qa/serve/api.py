"""HTTP API over a Retriever: search, ask, list and upload documents, health; OpenAPI docs at /docs.

The same FastAPI app serves the web chat (qa.serve.chat mounts Gradio on it) and `qa serve --api-only`.
Every error a client can cause comes back as JSON ``{"error": "<one sentence>"}`` with a 4xx
status; an unexpected failure is logged with its traceback and answered with a clean 500.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import logging
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa.config import Settings, load_settings
from qa.errors import QAError
from qa.ingest.uploads import UploadRefused, check_name, check_size
from qa.serve.auth import admin_refusal, bearer_token
from qa.serve.kbs import KnowledgeBases, UnknownKnowledgeBase

if TYPE_CHECKING:
    from qa.search.retriever import Retriever

log = logging.getLogger("qa.serve.api")

# The retriever cuts long questions itself (with a note); this only stops absurd request bodies.
MAX_QUESTION_CHARS = 20_000
MAX_HISTORY = 20

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str) -> str:
    """Drop control characters and lone surrogates that JSON allows but UTF-8 output cannot carry."""
    if not value.isascii() and any(unicodedata.category(c) == "Cs" for c in value):
        value = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", value)


class Filters(BaseModel):
    """Explicit restrictions: documents by file name, years the documents cover."""

    model_config = ConfigDict(extra="forbid")
    doc: list[str] | None = Field(default=None, max_length=100, description="document file names")
    year: list[int] | None = Field(default=None, max_length=50, description="years, e.g. [2023]")

    def to_dict(self) -> dict[str, Any] | None:
        """The dict Retriever expects, or None when nothing is restricted."""
        d: dict[str, Any] = {}
        if self.doc:
            d["doc"] = [clean_text(x) for x in self.doc]
        if self.year:
            d["year"] = list(self.year)
        return d or None


class SearchRequest(BaseModel):
    """A question and how many passages to return."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., max_length=MAX_QUESTION_CHARS, examples=["2023年郑州GDP是多少？"])
    k: int = Field(default=5, ge=1, le=50)
    filters: Filters | None = None
    rerank: bool | None = Field(default=None, description="null = the configured default")

    @field_validator("question")
    @classmethod
    def _clean_question(cls, v: str) -> str:
        return clean_text(v)


class AskRequest(SearchRequest):
    """A question with the conversation's earlier questions (newest last) for follow-ups."""

    history: list[str] = Field(default_factory=list, max_length=MAX_HISTORY)

    @field_validator("history")
    @classmethod
    def _clean_history(cls, v: list[str]) -> list[str]:
        return [clean_text(x)[:2000] for x in v]


def _to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra})


def _validation_sentence(exc: RequestValidationError) -> str:
    errs = exc.errors()
    if not errs:
        return "请求格式不正确。"
    e = errs[0]
    where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "请求体"
    return f"请求参数 {where} 不正确：{e.get('msg', '')}。"


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref") or ""
    name = ref.rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"[{name or (schema.get('items') or {}).get('type', '')}]"
    return name or str(schema.get("type", ""))


def docs_html(spec: dict[str, Any]) -> str:
    """A self-contained page describing the API from its OpenAPI spec: no scripts, no outside requests."""
    esc = html.escape
    rows: list[str] = []
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            params = [
                f"<code>{esc(p['name'])}</code> ({esc(p.get('in', ''))}, "
                f"{esc(_schema_name(p.get('schema', {})))}{', required' if p.get('required') else ''})"
                for p in op.get("parameters", [])
            ]
            body = op.get("requestBody", {}).get("content", {})
            for ctype, content in body.items():
                params.append(
                    f"body {esc(ctype)}: <code>{esc(_schema_name(content.get('schema', {})))}</code>"
                )
            responses = ", ".join(
                f"{esc(code)} {esc(r.get('description', ''))}" for code, r in op.get("responses", {}).items()
            )
            doc = esc(op.get("description") or op.get("summary") or "").replace("\n", "<br>")
            rows.append(
                f"<section><h2><span class=m>{esc(method.upper())}</span> <code>{esc(path)}</code></h2>"
                f"<p>{doc}</p><p>{'<br>'.join(params) or 'no parameters'}</p><p class=r>{responses}</p></section>"
            )
    models = "".join(
        f"<li><code>{esc(name)}</code>: "
        + ", ".join(f"{esc(k)} ({esc(_schema_name(v))})" for k, v in schema.get("properties", {}).items())
        + "</li>"
        for name, schema in spec.get("components", {}).get("schemas", {}).items()
    )
    info = spec.get("info", {})
    title = esc(f"{info.get('title', 'API')} {info.get('version', '')}")
    return (
        f"<!doctype html><html lang=zh><head><meta charset=utf-8><title>{title}</title><style>{_DOCS_CSS}</style>"
        f"</head><body><h1>{title}</h1><p>{esc(info.get('description', ''))} The machine-readable spec is at "
        f"<a href=/openapi.json>/openapi.json</a>.</p>{''.join(rows)}<h2>Schemas</h2><ul>{models}</ul></body></html>"
    )


_DOCS_CSS = (
    "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "section{border-top:1px solid #ddd}.m{background:#eef;padding:0 .4rem}.r{color:#555}"
)


def create_api(
    retriever_provider: Callable[[], Retriever],
    settings: Settings | None = None,
    kbs: KnowledgeBases | None = None,
) -> FastAPI:
    """The FastAPI app; `retriever_provider()` returns the (already opened) Retriever of the default
    knowledge base, `kbs` the others (/api/kb/{kb}/…; by default every registered one, opened on use)."""
    api = FastAPI(
        title="郑州政府报告问答 API",
        description="Retrieval over Zhengzhou government reports with cited passages.",
        version="0.1.0",
        # FastAPI's Swagger and ReDoc pages load their scripts from a CDN; /docs is served from here instead.
        docs_url=None,
        redoc_url=None,
    )

    @api.get("/docs", include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(docs_html(api.openapi()))

    def _settings() -> Settings:
        return settings or retriever_provider().settings

    @api.exception_handler(QAError)
    async def _qa_error(_: Request, exc: QAError) -> JSONResponse:
        return _error(400, str(exc))

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_sentence(exc))

    @api.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"error": str(exc.detail)}, headers=exc.headers
        )

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "服务器内部错误，请稍后重试；详情已记录在服务器日志中。")

    @api.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and what is loaded."""
        docs = retriever_provider().documents()
        return {"status": "ok", "documents": len(docs), "passages": sum(d.passages for d in docs)}

    @api.post("/api/search")
    def search(req: SearchRequest) -> dict[str, Any]:
        """Ranked passages with citations."""
        r = retriever_provider()
        hits = r.search(
            req.question, k=req.k, filters=req.filters.to_dict() if req.filters else None, rerank=req.rerank
        )
        return {"question": req.question, "hits": [h.to_dict() for h in hits]}

    @api.post("/api/ask")
    def ask(req: AskRequest) -> dict[str, Any]:
        """An answer line with [n] markers and the cited passages (Answer.to_dict())."""
        r = retriever_provider()
        answer = r.ask(
            req.question,
            k=req.k,
            filters=req.filters.to_dict() if req.filters else None,
            rerank=req.rerank,
            history=req.history,
        )
        return answer.to_dict()

    @api.get("/api/documents")
    def documents() -> dict[str, Any]:
        """The indexed documents with their passage counts."""
        out = []
        for d in retriever_provider().documents():
            row = _to_jsonable(d.info)
            row["passages"] = d.passages
            out.append(row)
        return {"documents": out}

    @api.post(
        "/api/documents",
        responses={
            413: {"description": "file larger than max_upload_mb"},
            415: {"description": "file type not allowed"},
            409: {"description": "same content as a document already indexed"},
            422: {"description": "file could not be read; nothing was added"},
        },
    )
    def upload(file: UploadFile = File(..., description="txt, md, pdf, docx, html")) -> JSONResponse:
        """Add one document to the documents folder and index it incrementally."""
        name = clean_text(file.filename or "")
        max_mb = _settings().max_upload_mb
        try:
            # name and type first, so a wrong type is refused (415) before the body is read into memory
            safe = check_name(name)
            # one byte past the limit, so an oversized body is refused without holding it all
            data = file.file.read(max_mb * 1024 * 1024 + 1)
            check_size(safe, len(data), max_mb)
        except UploadRefused as exc:
            return _error(exc.status, str(exc))
        report = retriever_provider().add_upload(name, data)
        body = {"report": _to_jsonable(report)}
        if report.added or report.updated:
            return JSONResponse(status_code=200, content={"added": report.added + report.updated, **body})
        message = report.errors[0] if report.errors else f"{name} 没有被加入索引。"
        status = 409 if report.duplicates else 422
        return _error(status, message, **body)

    add_kb_routes(api, retriever_provider, _settings, kbs)
    return api


# ---- knowledge bases and curating (issue 17) -------------------------------------------------------------
def add_kb_routes(
    api: FastAPI,
    retriever_provider: Callable[[], Retriever],
    settings_provider: Callable[[], Settings],
    kbs: KnowledgeBases | None = None,
) -> None:
    """/api/kb: list the knowledge bases; /api/kb/{kb}/search|ask|documents per knowledge base ('default'
    is documents/ → index/); uploading, replacing and removing a document need the write token
    (qa.serve.auth)."""
    from qa.index.kb import DEFAULT_KB
    from qa.search.retriever import NoSuchDocument

    holder: dict[str, KnowledgeBases] = {}
    if kbs is not None:
        holder["kbs"] = kbs

    def registry() -> KnowledgeBases:
        if "kbs" not in holder:
            holder["kbs"] = KnowledgeBases(settings_provider(), default=retriever_provider())
        return holder["kbs"]

    def kb_retriever(kb: str) -> Retriever:
        return retriever_provider() if kb == DEFAULT_KB else registry().get(kb)

    def refused(request: Request) -> JSONResponse | None:
        why = admin_refusal(bearer_token(request.headers.get("authorization")), settings_provider())
        return _error(why[0], why[1]) if why else None

    @api.exception_handler(UnknownKnowledgeBase)
    async def _unknown_kb(_: Request, exc: UnknownKnowledgeBase) -> JSONResponse:
        return _error(404, str(exc))

    @api.exception_handler(NoSuchDocument)
    async def _no_such_document(_: Request, exc: NoSuchDocument) -> JSONResponse:
        return _error(404, str(exc))

    @api.get("/api/kb")
    def list_knowledge_bases() -> dict[str, Any]:
        """The knowledge bases, their documents and passages, and the index version this worker serves."""
        out = []
        for base in registry().known():
            row: dict[str, Any] = {"name": base.name}
            try:
                r = kb_retriever(base.name)
                docs = r.documents()
                row.update(
                    documents=len(docs), passages=sum(d.passages for d in docs), version=r.store.version
                )
            except QAError as exc:
                row.update(documents=0, passages=0, version=None, problem=str(exc))
            out.append(row)
        return {"kbs": out, "worker": os.getpid()}

    @api.post("/api/kb/{kb}/search")
    def kb_search(kb: str, req: SearchRequest) -> dict[str, Any]:
        """Ranked passages with citations, from one knowledge base."""
        hits = kb_retriever(kb).search(
            req.question, k=req.k, filters=req.filters.to_dict() if req.filters else None, rerank=req.rerank
        )
        return {"question": req.question, "kb": kb, "hits": [h.to_dict() for h in hits]}

    @api.post("/api/kb/{kb}/ask")
    def kb_ask(kb: str, req: AskRequest) -> dict[str, Any]:
        """An answer line with [n] markers and the cited passages, from one knowledge base."""
        answer = kb_retriever(kb).ask(
            req.question,
            k=req.k,
            filters=req.filters.to_dict() if req.filters else None,
            rerank=req.rerank,
            history=req.history,
        )
        return {**answer.to_dict(), "kb": kb}

    @api.get("/api/kb/{kb}/documents")
    def kb_documents(kb: str) -> dict[str, Any]:
        """The documents of one knowledge base with their passage counts."""
        out = []
        for d in kb_retriever(kb).documents():
            row = _to_jsonable(d.info)
            row["passages"] = d.passages
            out.append(row)
        return {"kb": kb, "documents": out}

    def take_upload(r: Retriever, file: UploadFile, name: str, replace: bool) -> JSONResponse:
        max_mb = settings_provider().max_upload_mb
        try:
            safe = check_name(name)
            data = file.file.read(max_mb * 1024 * 1024 + 1)
            check_size(safe, len(data), max_mb)
        except UploadRefused as exc:
            return _error(exc.status, str(exc))
        report = r.add_upload(name, data, replace=replace)
        body = {"report": _to_jsonable(report)}
        if report.added or report.updated:
            return JSONResponse(status_code=200, content={"added": report.added + report.updated, **body})
        message = report.errors[0] if report.errors else f"{name} 没有被加入索引。"
        return _error(409 if report.duplicates else 422, message, **body)

    write_responses: dict[int | str, dict[str, Any]] = {
        401: {"description": "a write token is configured and was not sent (Authorization: Bearer …)"},
        403: {"description": "no write token is configured and the server is not on loopback"},
        404: {"description": "no such knowledge base or document"},
    }

    @api.post("/api/kb/{kb}/documents", responses=write_responses)
    def kb_upload(
        kb: str, request: Request, file: UploadFile = File(..., description="txt, md, pdf, docx, html")
    ) -> JSONResponse:
        """Add one document to a knowledge base and index it incrementally (needs the write token)."""
        denied = refused(request)
        if denied is not None:
            return denied
        return take_upload(kb_retriever(kb), file, clean_text(file.filename or ""), replace=False)

    @api.put("/api/kb/{kb}/documents/{name}", responses=write_responses)
    def kb_replace(
        kb: str, name: str, request: Request, file: UploadFile = File(..., description="the new file")
    ) -> JSONResponse:
        """Replace a document by name with new bytes: its passages are made anew (needs the write token)."""
        denied = refused(request)
        if denied is not None:
            return denied
        # whether the document exists is decided under the writer's lock (another worker may have just
        # added or removed it): NoSuchDocument -> 404
        return take_upload(kb_retriever(kb), file, name, replace=True)

    @api.delete("/api/kb/{kb}/documents/{name}", responses=write_responses)
    def kb_remove(kb: str, name: str, request: Request) -> JSONResponse:
        """Remove a document: a new index version without its passages goes live at once on this worker
        and within a second on the others (needs the write token)."""
        denied = refused(request)
        if denied is not None:
            return denied
        report = kb_retriever(kb).remove_document(name)  # NoSuchDocument -> 404
        return JSONResponse(
            status_code=200, content={"removed": report.removed, "kb": kb, "report": _to_jsonable(report)}
        )


def _print_progress(message: str, fraction: float | None) -> None:
    pct = f"{fraction * 100:5.1f}% " if fraction is not None else ""
    print(f"[index] {pct}{message}", flush=True)


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Open (building or updating if needed) the index and serve the API alone with uvicorn."""
    import uvicorn

    from qa.search.retriever import Retriever

    retriever = Retriever.open(
        settings.index_dir,
        settings,
        documents_dir=settings.documents_dir,
        build=True,
        progress=_print_progress,
    )
    api = create_api(lambda: retriever, settings)
    host = host or settings.host
    port = port or settings.port
    print(f"[api] serving on http://{host}:{port}/  (OpenAPI docs at /docs)", flush=True)
    uvicorn.run(api, host=host, port=port, log_level="warning")


def main(argv: Sequence[str] | None = None) -> int:
    """`qa serve --api-only`: the same options as app.py, without the web chat."""
    parser = argparse.ArgumentParser(prog="qa serve --api-only", description="HTTP API only")
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--documents", default=None, help="documents folder")
    parser.add_argument("--index", default=None, help="index folder")
    parser.add_argument("--config", default=None, help="a qa.toml with settings")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(
            args.config, host=args.host, port=args.port, documents_dir=args.documents, index_dir=args.index
        )
        serve(settings)
    except QAError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    return 0
