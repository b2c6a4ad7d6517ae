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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa.config import Settings, load_settings
from qa.errors import IndexProblem, QAError
from qa.ingest.uploads import UploadRefused, check_name, check_size, clean_stale_staging, corpus_changes
from qa.serve.kbs import KnowledgeBases, UnknownKnowledgeBase
from qa.serve.security import SESSION_COOKIE, SESSION_SECONDS, Access, Guard, is_loopback

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


DocName = Annotated[str, StringConstraints(max_length=255)]


class Filters(BaseModel):
    """Explicit restrictions: documents by file name, years the documents cover."""

    # strict: "5" is not a year and true is not a number (JSON types are taken as they are)
    model_config = ConfigDict(extra="forbid", strict=True)
    doc: list[DocName] | None = Field(default=None, max_length=100, description="document file names")
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

    model_config = ConfigDict(extra="forbid", strict=True)
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


class Correction(BaseModel):
    """A user's correction of one document's metadata; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    year: int | None = Field(default=None, ge=1900, le=2100)
    kind: str | None = Field(
        default=None, max_length=20, description="政府工作报告 | 五年规划纲要 | 新闻稿 | 其他"
    )
    delivered: str | None = Field(default=None, max_length=10, description="2024-02-03, 2024-02 or 2024")
    looks_back: list[int] | None = Field(default=None, max_length=30)
    plans_for: list[int] | None = Field(default=None, max_length=30)
    issuer: str | None = Field(default=None, max_length=60)
    place: str | None = Field(default=None, max_length=60)


def _to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra})


def _short(value: object, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validation_sentence(exc: RequestValidationError) -> str:
    errs = exc.errors()
    if not errs:
        return "请求格式不正确。"
    e = errs[0]
    if e.get("type") == "json_invalid":
        loc = [x for x in e.get("loc", ()) if x != "body"]
        at = f"（第 {loc[0]} 个字符附近）" if loc and isinstance(loc[0], int) else ""
        return f"请求体不是有效的 JSON{at}；请检查引号、逗号和括号。"
    # neither a key nor a message may echo a huge input back: both are cut short
    where = ".".join(_short(x) for x in e.get("loc", ()) if x != "body") or "请求体"
    return f"请求参数 {where} 不正确：{_short(e.get('msg', ''), 200)}。"


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


def _client(request: Request) -> str:
    """The request's client for the audit log and the logs: `Guard` has set it to
    qa.serve.security.client_address (behind a trusted proxy, the client X-Forwarded-For names)."""
    return request.client.host if request.client else ""


def create_api(
    retriever_provider: Callable[[], Retriever],
    settings: Settings | None = None,
    *,
    access: Access | None = None,
    upload_folder: Path | None = None,
    kbs: KnowledgeBases | None = None,
) -> FastAPI:
    """The FastAPI app; `retriever_provider()` returns the (already opened) Retriever of the default
    knowledge base, `kbs` the others (/api/kb/{kb}/…; by default every registered one, opened on use).

    Writing (upload, replace, delete, reindex, corrections) goes through `access` (from the settings when
    not given); every request first passes `qa.serve.security.Guard` (host, origin, body size, rate,
    Gradio file checks on `upload_folder`, the chat's temporary upload folder).
    """
    settings = settings or retriever_provider().settings
    access = access or Access.from_settings(settings)
    api = FastAPI(
        title="郑州政府报告问答 API",
        description="Retrieval over Zhengzhou government reports with cited passages.",
        version="0.1.0",
        # FastAPI's Swagger and ReDoc pages load their scripts from a CDN; /docs is served from here instead.
        docs_url=None,
        redoc_url=None,
    )
    api.add_middleware(Guard, settings=settings, access=access, upload_folder=upload_folder)
    api.state.access = access

    @api.get("/docs", include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(docs_html(api.openapi()))

    def _settings() -> Settings:
        return settings

    _add_error_handlers(api)
    writer = _writer_for(access)
    _add_question_routes(api, retriever_provider)
    _add_upload_route(api, retriever_provider, _settings, writer)
    _add_document_routes(api, retriever_provider, writer)
    _add_admin_routes(api, access)
    # before the catch-all below, which would otherwise answer /api/kb/… with 404
    add_kb_routes(api, retriever_provider, _settings, writer, kbs)
    _add_fallback_route(api)
    return api


def _add_error_handlers(api: FastAPI) -> None:
    """Every error as JSON {"error": one sentence}: a QAError 400, a malformed request 422, an HTTP error
    its own status, anything unexpected a logged 500."""

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


def _writer_for(access: Access) -> Callable[[Request], str | JSONResponse]:
    """The check every writing route makes first: the caller's name for the audit log when it may write,
    else the refusal to send (401 with WWW-Authenticate, or 403), logged."""

    def writer(request: Request) -> str | JSONResponse:
        refusal = access.refusal(request.headers)
        if refusal is not None:
            status, message = refusal
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            log.warning(
                "write refused (%s) for %s %s from %s",
                status,
                request.method,
                request.url.path,
                _client(request),
            )
            return JSONResponse(status_code=status, content={"error": message}, headers=headers)
        return access.who(request.headers) or "?"

    return writer


def _add_question_routes(api: FastAPI, retriever_provider: Callable[[], Retriever]) -> None:
    """/health, /api/search, /api/ask and the document list, over the default knowledge base."""

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


def _add_upload_route(
    api: FastAPI,
    retriever_provider: Callable[[], Retriever],
    settings_provider: Callable[[], Settings],
    writer: Callable[[Request], str | JSONResponse],
) -> None:
    """POST /api/documents: one file added to the default knowledge base (needs write access)."""

    @api.post(
        "/api/documents",
        responses={
            401: {"description": "an admin token is configured and was not sent (Authorization: Bearer)"},
            403: {"description": "uploads are off, or the request came from another site"},
            413: {"description": "file larger than max_upload_mb"},
            415: {"description": "file type not allowed"},
            409: {"description": "same content as a document already indexed"},
            422: {"description": "file could not be read (or more than one file); nothing was added"},
            503: {"description": "the index or documents folder cannot be written"},
        },
    )
    async def upload(
        request: Request, file: UploadFile = File(..., description="txt, md, pdf, docx, html")
    ) -> JSONResponse:
        """Add one document: staged, indexed, and only then moved into the documents folder."""
        who = writer(request)
        if isinstance(who, JSONResponse):
            return who
        form = await request.form()
        if len(form.getlist("file")) > 1:
            return _error(422, "一次只能上传一个文件；请把多个文件分开上传。")
        name = clean_text(file.filename or "")
        max_mb = settings_provider().max_upload_mb
        try:
            # name and type first, so a wrong type is refused (415) before the body is read into memory
            check_name(name)
            # one byte past the limit, so an oversized body is refused without holding it all
            data = await file.read(max_mb * 1024 * 1024 + 1)
            check_size(check_name(name), len(data), max_mb)
        except UploadRefused as exc:
            return _error(exc.status, str(exc))
        try:
            report = await run_in_threadpool(
                retriever_provider().add_upload, name, data, actor=who, via="api", client=_client(request)
            )
        except IndexProblem as exc:
            return _error(503, str(exc))
        body = {"report": _to_jsonable(report)}
        if report.added or report.updated:
            return JSONResponse(status_code=200, content={"added": report.added + report.updated, **body})
        message = report.errors[0] if report.errors else f"{name} 没有被加入索引。"
        status = 409 if report.duplicates else 422
        return _error(status, message, **body)


def _add_document_routes(
    api: FastAPI,
    retriever_provider: Callable[[], Retriever],
    writer: Callable[[Request], str | JSONResponse],
) -> None:
    """Removing and correcting a document of the default knowledge base, and re-syncing it with its
    folder (all need write access)."""
    from qa.search.retriever import NoSuchDocument

    @api.delete(
        "/api/documents/{file}",
        responses={401: {"description": "admin token needed"}, 404: {"description": "no such document"}},
    )
    def delete_document(file: str, request: Request) -> JSONResponse:
        """Remove one document from the documents folder and the index (needs write access)."""
        who = writer(request)
        if isinstance(who, JSONResponse):
            return who
        # whether the document exists is decided once, under the index writer's lock (another worker may
        # have just added or removed it)
        try:
            report = retriever_provider().update(remove=[file], actor=who, via="api", client=_client(request))
        except NoSuchDocument as exc:
            return _error(404, str(exc))
        except IndexProblem as exc:
            return _error(503, str(exc))
        return JSONResponse({"removed": report.removed, "report": _to_jsonable(report)})

    @api.patch(
        "/api/documents/{file}",
        responses={
            401: {"description": "admin token needed"},
            404: {"description": "no such document"},
            422: {"description": "a value the catalog refuses"},
        },
    )
    def correct_document(file: str, changes: Correction, request: Request) -> JSONResponse:
        """Correct a document's metadata (title, year, years looked back on / planned for …); needs write
        access. Written into catalog.toml; questions are re-routed at once, nothing is embedded again."""
        who = writer(request)
        if isinstance(who, JSONResponse):
            return who
        r = retriever_provider()
        if file not in {d.info.file for d in r.documents()}:
            return _error(404, f"没有名为 {_short(file, 80)} 的文档；文件名见 GET /api/documents。")
        fields = changes.model_dump(exclude_none=True)
        if not fields:
            return _error(
                422,
                "没有要更正的字段；可改 title、year、kind、delivered、looks_back、plans_for、issuer、place。",
            )
        try:
            info, report = r.correct(file, fields, actor=who, via="api", client=_client(request))
        except IndexProblem as exc:
            return _error(503, str(exc))
        except QAError as exc:
            return _error(422, str(exc))
        return JSONResponse({"document": _to_jsonable(info), "report": _to_jsonable(report)})

    @api.post("/api/reindex", responses={401: {"description": "admin token needed"}})
    def reindex(request: Request) -> JSONResponse:
        """Re-sync the index with the documents folder (files added or removed by hand); needs write access."""
        who = writer(request)
        if isinstance(who, JSONResponse):
            return who
        try:
            report = retriever_provider().update(actor=who, via="api reindex", client=_client(request))
        except IndexProblem as exc:
            return _error(503, str(exc))
        return JSONResponse({"report": _to_jsonable(report)})


def _add_admin_routes(api: FastAPI, access: Access) -> None:
    """/admin/login (the sign-in page and its form, which sets the session cookie) and /admin/logout."""

    @api.get("/admin/login", include_in_schema=False)
    def login_page(request: Request) -> HTMLResponse:
        return HTMLResponse(login_html(access, request.headers))

    @api.post("/admin/login", include_in_schema=False, response_model=None)
    def login(request: Request, token: str = Form("")) -> HTMLResponse | RedirectResponse:
        if not access.token or not access.valid_token(token):
            log.warning("failed admin sign-in from %s", _client(request))
            return HTMLResponse(login_html(access, request.headers, failed=True), status_code=401)
        resp = RedirectResponse("/", status_code=303)
        # Guard sets the scheme from X-Forwarded-Proto only when a trusted proxy sent it (forwarded_scheme)
        secure = request.url.scheme == "https"
        resp.set_cookie(
            SESSION_COOKIE,
            access.session_value(),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
        )
        return resp

    @api.post("/admin/logout", include_in_schema=False)
    def logout() -> RedirectResponse:
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp


def _add_fallback_route(api: FastAPI) -> None:
    """The catch-all under /api (registered last): 405 with Allow for a known path, else 404, both as JSON."""

    @api.api_route(
        "/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], include_in_schema=False
    )
    def no_such_route(rest: str, request: Request) -> JSONResponse:
        # without this the chat mounted at "/" would answer /api/… it does not know with {"detail": …}
        path = request.url.path
        allowed = sorted(
            m
            for route in api.routes
            if getattr(route, "path", None) == path and getattr(route, "include_in_schema", False)
            for m in getattr(route, "methods", ()) or ()
        )
        if allowed:
            return JSONResponse(
                status_code=405,
                content={"error": f"{path} 不接受 {request.method} 请求；请用 {'、'.join(allowed)}。"},
                headers={"Allow": ", ".join(allowed)},
            )
        return _error(404, f"没有这个接口：{_short(path, 80)}；接口列表见 /docs。")


def login_html(access: Access, headers: Any, failed: bool = False) -> str:
    """The admin sign-in page: a plain form (no scripts) that posts the token and gets a session cookie."""
    if not access.token:
        body = (
            "<p>此服务器没有设置管理员令牌（QA_ADMIN_TOKEN）。"
            + ("上传在本机地址上对所有访问者开放。" if access.uploads_on else html.escape(access.why_off))
            + "</p>"
        )
    else:
        signed = access.is_admin_session(headers)
        body = (
            ("<p class=bad>令牌不正确，请重试。</p>" if failed else "")
            + ("<p>你已以管理员身份登录。</p>" if signed else "")
            + '<form method="post" action="/admin/login"><label>管理员令牌 <input type="password" name="token" '
            'autocomplete="current-password" required></label> <button type="submit">登录</button></form>'
            '<form method="post" action="/admin/logout"><button type="submit">退出登录</button></form>'
        )
    return (
        "<!doctype html><html lang=zh><head><meta charset=utf-8><title>管理员登录</title>"
        f"<style>{_DOCS_CSS}.bad{{color:#b91c1c}}form{{margin:1em 0}}</style></head><body><h1>管理员登录</h1>"
        f'{body}<p><a href="/">返回问答</a></p></body></html>'
    )


def open_for_serving(settings: Settings, progress: Callable[[str, float | None], None]) -> Retriever:
    """Open the index for a server, building or updating it from the documents folder first.

    Stale staging left by a killed server is removed first. Start-up changes to the corpus go to the audit
    log. When the index cannot be written (a read-only folder) but a complete version exists, that version
    is served as it is, with a warning, instead of failing.
    """
    from qa.index.manifest import Manifest
    from qa.index.writer import current_version
    from qa.ingest.uploads import append_audit
    from qa.search.retriever import Retriever

    docs, index = Path(settings.documents_dir), Path(settings.index_dir)
    try:
        for name in clean_stale_staging(docs):
            progress(f"removed an unfinished upload left by a stopped server: {name}", None)
    except OSError as exc:
        progress(f"could not clean {docs}/.staging ({exc.strerror}); it is ignored", None)
    before: dict[str, str] = {}
    try:
        version = current_version(index)
        if version is not None:
            m = Manifest.from_json((version / "manifest.json").read_text(encoding="utf-8"))
            before = {n: e.sha256 for n, e in m.documents.items()}
    except (OSError, ValueError, KeyError, TypeError, QAError):
        before = {}
    try:
        retriever = Retriever.open(index, settings, documents_dir=docs, build=True, progress=progress)
    except (OSError, IndexProblem) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        try:
            retriever = Retriever.open(index, settings, documents_dir=docs)
        except QAError:
            if isinstance(exc, OSError):
                raise IndexProblem(
                    f"The index at {index} cannot be built or updated ({why}); make it writable and start again."
                ) from exc
            raise
        progress(
            f"WARNING: the index could not be updated ({why}); serving the version already built, "
            "and uploads will fail until the index folder is writable",
            None,
        )
        return retriever
    after = {n: e.sha256 for n, e in retriever.store.manifest.documents.items()}
    records = corpus_changes(
        before, after, actor="server start", via="documents folder", index_version=retriever.store.version
    )
    try:
        append_audit(index, records)
    except OSError as exc:
        log.error("could not write the audit log in %s: %s", index, exc)
    return retriever


# ---- knowledge bases and curating (issue 17) -------------------------------------------------------------
def add_kb_routes(
    api: FastAPI,
    retriever_provider: Callable[[], Retriever],
    settings_provider: Callable[[], Settings],
    writer: Callable[[Request], str | JSONResponse],
    kbs: KnowledgeBases | None = None,
) -> None:
    """/api/kb: list the knowledge bases; /api/kb/{kb}/search|ask|documents per knowledge base ('default'
    is documents/ → index/); uploading, replacing and removing a document need write access: `writer`
    returns the caller's name for the audit log, or the refusal to send (qa.serve.security.Access)."""
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

    @api.exception_handler(UnknownKnowledgeBase)
    async def _unknown_kb(_: Request, exc: UnknownKnowledgeBase) -> JSONResponse:
        return _error(404, str(exc))

    @api.exception_handler(NoSuchDocument)
    async def _no_such_document(_: Request, exc: NoSuchDocument) -> JSONResponse:
        return _error(404, str(exc))

    _add_kb_read_routes(api, registry, kb_retriever)
    _add_kb_write_routes(api, kb_retriever, settings_provider, writer)


def _add_kb_read_routes(
    api: FastAPI, registry: Callable[[], KnowledgeBases], kb_retriever: Callable[[str], Retriever]
) -> None:
    """GET /api/kb, and search, ask and the document list of one knowledge base."""

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


def _add_kb_write_routes(
    api: FastAPI,
    kb_retriever: Callable[[str], Retriever],
    settings_provider: Callable[[], Settings],
    writer: Callable[[Request], str | JSONResponse],
) -> None:
    """Adding, replacing and removing a document of one knowledge base (all need write access)."""
    write_responses: dict[int | str, dict[str, Any]] = {
        401: {"description": "a write token is configured and was not sent (Authorization: Bearer …)"},
        403: {"description": "no write token is configured and the server is not on loopback"},
        404: {"description": "no such knowledge base or document"},
    }

    def take_upload(
        r: Retriever, file: UploadFile, name: str, replace: bool, who: str, request: Request
    ) -> JSONResponse:
        return _take_upload(r, file, name, replace, who, request, settings_provider().max_upload_mb)

    @api.post("/api/kb/{kb}/documents", responses=write_responses)
    def kb_upload(
        kb: str, request: Request, file: UploadFile = File(..., description="txt, md, pdf, docx, html")
    ) -> JSONResponse:
        """Add one document to a knowledge base and index it incrementally (needs the write token)."""
        who = writer(request)
        if isinstance(who, JSONResponse):
            return who
        return take_upload(kb_retriever(kb), file, clean_text(file.filename or ""), False, who, request)

    @api.put("/api/kb/{kb}/documents/{name}", responses=write_responses)
    def kb_replace(
        kb: str, name: str, request: Request, file: UploadFile = File(..., description="the new file")
    ) -> JSONResponse:
        """Replace a document by name with new bytes: its passages are made anew (needs the write token)."""
        who = writer(request)
        if isinstance(who, JSONResponse):
            return who
        # whether the document exists is decided under the writer's lock (another worker may have just
        # added or removed it): NoSuchDocument -> 404
        return take_upload(kb_retriever(kb), file, name, True, who, request)

    @api.delete("/api/kb/{kb}/documents/{name}", responses=write_responses)
    def kb_remove(kb: str, name: str, request: Request) -> JSONResponse:
        """Remove a document: a new index version without its passages goes live at once on this worker
        and within a second on the others (needs the write token)."""
        who = writer(request)
        if isinstance(who, JSONResponse):
            return who
        r = kb_retriever(kb)
        try:
            report = r.remove_document(name, actor=who, via=f"api kb {r.kb}", client=_client(request))
        except IndexProblem as exc:  # NoSuchDocument -> 404 by the handler above
            return _error(503, str(exc))
        return JSONResponse(
            status_code=200, content={"removed": report.removed, "kb": kb, "report": _to_jsonable(report)}
        )


def _take_upload(
    r: Retriever, file: UploadFile, name: str, replace: bool, who: str, request: Request, max_mb: int
) -> JSONResponse:
    """One uploaded file added to (or, with `replace`, replacing a document of) a knowledge base."""
    try:
        safe = check_name(name)
        data = file.file.read(max_mb * 1024 * 1024 + 1)
        check_size(safe, len(data), max_mb)
    except UploadRefused as exc:
        return _error(exc.status, str(exc))
    try:
        report = r.add_upload(
            name, data, replace=replace, actor=who, via=f"api kb {r.kb}", client=_client(request)
        )
    except IndexProblem as exc:
        return _error(503, str(exc))
    body = {"report": _to_jsonable(report)}
    if report.added or report.updated:
        return JSONResponse(status_code=200, content={"added": report.added + report.updated, **body})
    message = report.errors[0] if report.errors else f"{name} 没有被加入索引。"
    return _error(409 if report.duplicates else 422, message, **body)


def _print_progress(message: str, fraction: float | None) -> None:
    pct = f"{fraction * 100:5.1f}% " if fraction is not None else ""
    print(f"[index] {pct}{message}", flush=True)


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Open (building or updating if needed) the index and serve the API alone with uvicorn."""
    import uvicorn

    settings = settings.with_(host=host, port=port)
    access = Access.from_settings(settings)
    retriever = open_for_serving(settings, _print_progress)
    api = create_api(lambda: retriever, settings, access=access)
    host, port = settings.host, settings.port
    announce_access(access, host)
    print(f"[api] serving on http://{host}:{port}/  (OpenAPI docs at /docs)", flush=True)
    # proxy_headers=False: uvicorn would trust X-Forwarded-For from loopback; trusted_proxies decides (Guard)
    uvicorn.run(api, host=host, port=port, log_level="warning", proxy_headers=False)


def announce_access(access: Access, host: str) -> None:
    """Print who may change the corpus on this server (at start, next to the address)."""
    if not access.uploads_on:
        print(f"[security] uploads, deletes and reindexing are OFF: {access.why_off}", flush=True)
    elif access.token:
        print(
            "[security] uploads, deletes and reindexing need the admin token (Bearer or the chat's sign-in)",
            flush=True,
        )
    else:
        print("[security] no admin token: anyone who can reach this loopback address may upload", flush=True)
    if not is_loopback(host):
        print(f"[security] listening on {host}: put it behind a proxy with TLS (docs/web.md).", flush=True)


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
