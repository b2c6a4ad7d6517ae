"""Who may change the corpus, and what every request meets before any work is done (docs/web.md).

- `Access`: writing (upload, delete, reindex) needs the admin token when one is configured
  (`admin_token` / QA_ADMIN_TOKEN, sent as ``Authorization: Bearer <token>`` or held as the chat's
  sign-in cookie); without a token it is open only while the server binds to loopback, and uploads
  are off by default on any other address. Reading stays open.
- `Guard`, an ASGI middleware in front of the API and the chat: Host names (against DNS rebinding),
  Origin on every state-changing request (no cross-site writes), request body size, a per-client rate
  limit on questions, uploads and sign-ins, and Gradio's file routes: only callers allowed to write may
  upload to its temporary folder, that folder has a quota, an event may only name files inside it, and
  the server never fetches a URL for a client. Every refusal is JSON ``{"error": "<one sentence>"}``.
- `client_address`: who a request comes from (the rate limit's key, the audit log's client): the socket's
  peer, or behind a trusted reverse proxy (`trusted_proxies`) the client its X-Forwarded-For names;
  `forwarded_scheme`: the scheme such a proxy says the client used (X-Forwarded-Proto, from it only).
- Security headers on every response, with a Content-Security-Policy that lets the page load nothing
  from another machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from qa.config import Settings
from qa.errors import QAError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SESSION_COOKIE = "qa_admin"
SESSION_SECONDS = 12 * 3600
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# requests that make the server work (answer, index, check a token): the ones the rate limit counts
COSTLY_PREFIXES = (
    "/api/",
    "/gradio_api/queue/join",
    "/gradio_api/upload",
    "/gradio_api/run",
    "/gradio_api/call",
)
COSTLY_PATHS = {"/admin/login"}
UPLOAD_PATHS = {"/api/documents", "/gradio_api/upload"}
STALE_UPLOAD_SECONDS = 600  # a file in the chat's upload folder no event has used after 10 minutes

CSP = "; ".join(
    [
        "default-src 'self'",
        # Gradio's page runs inline bootstrap code and compiles the page's js= snippets
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'none'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on our own form posts
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", CSP.encode()),
]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, localhost and ::1."""
    host = host.strip("[]").lower()
    return host in LOOPBACK or host.startswith("127.")


def _hostname(netloc: str) -> str:
    """The host part of a Host header or an origin's netloc, lower-case, without port or brackets."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def trusted_networks(value: str) -> tuple[Network, ...]:
    """The trusted_proxies setting (IP addresses and CIDR networks, separated by commas or spaces) as
    networks; QAError naming the first entry that is neither."""
    networks = []
    for entry in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise QAError(
                f"Setting trusted_proxies has {entry[:80]!r}, which is not an IP address or network; list "
                "addresses like 10.0.0.5 or networks like 10.0.0.0/24 in qa.toml or QA_TRUSTED_PROXIES."
            ) from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    """The IP address of a peer or an X-Forwarded-For entry (bare, IPv4:port or [IPv6]:port), an IPv4-mapped
    IPv6 address as its IPv4; None when it is not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(peer: str, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The address a request comes from: the socket's `peer`, unless the peer is in `trusted`; then the
    X-Forwarded-For values are walked from the right (the hop nearest us) and the first address not in
    `trusted` is the client (malformed entries are skipped; when every entry is trusted, the leftmost).

    An untrusted peer's X-Forwarded-For is ignored: a client cannot choose its own rate-limit bucket.
    """
    if not _trusted_peer(peer, trusted):
        return peer
    farthest: Address | None = None
    for entry in reversed([e for value in forwarded_for for e in value.split(",")]):
        hop = _address(entry)
        if hop is None:
            continue
        if not any(hop in net for net in trusted):
            return str(hop)
        farthest = hop
    return str(farthest) if farthest is not None else peer


def _trusted_peer(peer: str, trusted: Sequence[Network]) -> bool:
    # the socket's peer is one of the reverse proxies whose forwarding headers count
    ip = _address(peer)
    return ip is not None and any(ip in net for net in trusted)


def forwarded_scheme(peer: str, forwarded_proto: Iterable[str], trusted: Sequence[Network]) -> str:
    """The scheme a trusted proxy says the client used ("https" or "http", the X-Forwarded-Proto value
    nearest us), or "" when the peer is not a trusted proxy or says nothing readable. An untrusted peer's
    X-Forwarded-Proto is ignored: it cannot make the server treat a plain-HTTP request as HTTPS."""
    if not _trusted_peer(peer, trusted):
        return ""
    values = [e.strip().lower() for value in forwarded_proto for e in value.split(",") if e.strip()]
    return values[-1] if values and values[-1] in ("http", "https") else ""


def parse_cookies(header: str) -> dict[str, str]:
    """Cookies of a Cookie header (malformed ones are skipped)."""
    jar: SimpleCookie = SimpleCookie()
    with contextlib.suppress(Exception):
        jar.load(header)
    return {k: m.value for k, m in jar.items()}


@dataclass
class Access:
    """Who may write: the admin token, whether uploads are on at all, and the sign-in sessions; and the
    reverse proxies trusted to name the client (`client_address`)."""

    token: str = ""
    uploads_on: bool = True
    why_off: str = ""
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    proxies: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        """Read and check admin_token, uploads and trusted_proxies (at start, so a bad value stops the
        server with one sentence); uploads=auto is on for a loopback address or when a token is set."""
        proxies = trusted_networks(settings.trusted_proxies)
        mode = settings.uploads.strip().lower()
        if mode not in ("auto", "on", "off"):
            raise QAError(
                f"Setting uploads={settings.uploads!r} must be auto, on or off; fix it in qa.toml or QA_UPLOADS."
            )
        token = settings.admin_token.strip()
        if token and len(token) < 16:
            raise QAError("Setting admin_token is shorter than 16 characters; choose a longer random token.")
        if mode == "off":
            return cls(token, False, "此服务器关闭了上传和修改（uploads = off）。", proxies=proxies)
        if mode == "auto" and not token and not is_loopback(settings.host):
            return cls(
                token,
                False,
                f"此服务器监听 {settings.host} 且未设置管理员令牌，上传和修改已关闭；请设置 QA_ADMIN_TOKEN 后重启。",
                proxies=proxies,
            )
        return cls(token, True, "", proxies=proxies)

    # ---- sessions (the chat's sign-in cookie) ----------------------------------------------------------
    def _mac(self, expires: int) -> str:
        key = hmac.new(self.secret, self.token.encode("utf-8"), hashlib.sha256).digest()
        return hmac.new(key, f"admin:{expires}".encode(), hashlib.sha256).hexdigest()

    def session_value(self, now: float | None = None) -> str:
        """A fresh sign-in cookie value (expiry and MAC); valid for this process's lifetime at most."""
        expires = int((now or time.time()) + SESSION_SECONDS)
        return f"{expires}.{self._mac(expires)}"

    def valid_session(self, value: str) -> bool:
        """True for a cookie value this process issued for the current token and not yet expired."""
        if not self.token or "." not in value:
            return False
        expires, mac = value.split(".", 1)
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(mac, self._mac(int(expires)))

    def valid_token(self, candidate: str) -> bool:
        """Constant-time comparison with the configured token (False when none is configured)."""
        return bool(self.token) and hmac.compare_digest(candidate.encode("utf-8"), self.token.encode("utf-8"))

    # ---- decisions ------------------------------------------------------------------------------------
    def who(self, headers: Mapping[str, str]) -> str | None:
        """'admin (token)', 'admin (session)' or 'local (no token)' for a caller allowed to write; else None."""
        if not self.uploads_on:
            return None
        auth = headers.get("authorization", "")
        if self.token:
            if auth[:7].lower() == "bearer " and self.valid_token(auth[7:].strip()):
                return "admin (token)"
            if self.valid_session(parse_cookies(headers.get("cookie", "")).get(SESSION_COOKIE, "")):
                return "admin (session)"
            return None
        return "local (no token)"

    def is_admin_session(self, headers: Mapping[str, str]) -> bool:
        """True when the caller holds a valid sign-in cookie or Bearer token (a token must be configured)."""
        return bool(self.token) and self.who(headers) is not None

    def refusal(self, headers: Mapping[str, str]) -> tuple[int, str] | None:
        """None when the caller may write; else (HTTP status, one sentence)."""
        if not self.uploads_on:
            return 403, self.why_off
        if self.who(headers) is None:
            if headers.get("authorization"):
                return 401, "管理员令牌不正确；请检查 Authorization: Bearer 后的令牌。"
            return 401, "修改文档需要管理员令牌：请在请求头加 Authorization: Bearer <令牌>，或在聊天页登录。"
        return None


class RateLimiter:
    """A token bucket per client address: `per_minute` requests a minute, a burst of as many."""

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead; else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            if wait == 0.0:
                tokens -= 1
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


def upload_folder_bytes(folder: Path) -> int:
    """Bytes of all files under `folder` (0 when it does not exist)."""
    total = 0
    if folder.is_dir():
        for p in folder.rglob("*"):
            with contextlib.suppress(OSError):
                if p.is_file() and not p.is_symlink():
                    total += p.stat().st_size
    return total


EMPTY_SPOOL_SECONDS = 60  # gr.File's preprocessing leaves an empty tmp* file per file (a Gradio leak)


def sweep_upload_folder(folder: Path, older_than: float = STALE_UPLOAD_SECONDS) -> int:
    """Remove files (and emptied folders) older than `older_than` seconds from the chat's upload folder,
    and the empty files Gradio leaves behind after a minute (an upload in progress is never that old and empty)."""
    removed = 0
    if not folder.is_dir():
        return 0
    now = time.time()
    cutoff = now - older_than
    for p in sorted(folder.rglob("*"), key=lambda x: -len(x.parts)):
        with contextlib.suppress(OSError):
            if p.is_symlink() or p.is_file():
                st = p.lstat()
                empty_leak = (
                    st.st_size == 0 and p.parent == folder and st.st_mtime < now - EMPTY_SPOOL_SECONDS
                )
                if st.st_mtime < cutoff or empty_leak:
                    p.unlink()
                    removed += 1
            elif p.is_dir() and not any(p.iterdir()) and p.stat().st_mtime < cutoff:
                p.rmdir()
    return removed


def remove_uploaded(folder: Path, paths: Iterable[str | Path]) -> None:
    """Delete files the chat received once they are dealt with, with their per-file folders."""
    root = folder.resolve()
    for p in paths:
        path = Path(p)
        with contextlib.suppress(OSError):
            path.unlink()
            parent = path.parent.resolve()
            if parent != root and parent.is_relative_to(root) and not any(parent.iterdir()):
                parent.rmdir()


def inside(path: str | Path, folder: Path) -> bool:
    """True when `path` (symlinks resolved) is a regular file inside `folder`."""
    try:
        p = Path(path)
        real = p.resolve(strict=True)
        return not p.is_symlink() and real.is_file() and real.is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def _file_refs(value: Any) -> Iterable[Any]:
    """The `path` of every file a Gradio event payload names (a FileData, or any dict with a path).

    An input's `url` is only the page's link to the file; Gradio reads inputs from `path`.
    """
    if isinstance(value, dict):
        meta = value.get("meta")
        if "path" in value or (isinstance(meta, dict) and meta.get("_type") == "gradio.FileData"):
            yield value.get("path") or "<no path>"
        for v in value.values():
            yield from _file_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _file_refs(v)


async def _respond(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: host, origin, body size, rate and Gradio file checks before the app sees a request.

    Behind a trusted proxy the app below sees the client (`client_address`) as the request's client, so the
    audit log and the chat record who asked, not the proxy."""

    def __init__(
        self, app: ASGIApp, settings: Settings, access: Access, upload_folder: Path | None = None
    ) -> None:
        self.app = app
        self.settings = settings
        self.access = access
        self.upload_folder = upload_folder
        self.rate = RateLimiter(settings.rate_limit_per_minute)
        extra = {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
        self.hosts: set[str] | None = None
        if is_loopback(settings.host) or extra:
            # a DNS-rebinding page reaches a loopback server under its own name: answer only to ours
            self.hosts = LOOPBACK | {settings.host.lower()} | extra
        self.upload_limit = settings.max_upload_mb * 1024 * 1024 + 64 * 1024  # multipart framing
        self.request_limit = settings.max_request_kb * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        peer = str((scope.get("client") or ("?", 0))[0])
        forwarded = [
            v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-forwarded-for"
        ]
        client = client_address(peer, forwarded, self.access.proxies)
        if client != peer:
            scope = {**scope, "client": (client, 0)}  # the proxy's port says nothing about the client
        proto = [
            v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-forwarded-proto"
        ]
        scheme = forwarded_scheme(peer, proto, self.access.proxies)
        if scheme:
            # the request's scheme is what the client used at the proxy (the sign-in cookie's Secure flag)
            scope = {**scope, "scheme": scheme if scope["type"] == "http" else scheme.replace("http", "ws")}
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        refused = self.check_request(scope, headers, path, method)
        if refused is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _respond(send, *refused)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        if method in UNSAFE_METHODS or headers.get("content-length") or headers.get("transfer-encoding"):
            upload = path in UPLOAD_PATHS
            limit = self.upload_limit if upload else self.request_limit
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                await _respond(send, 413, self.too_large(upload))
                return
            if upload and not declared.isdigit():
                await _respond(send, 411, "上传请求必须带 Content-Length；请用普通的文件上传方式重试。")
                return
            if not upload:
                # small bodies: read them whole (within the limit), look at them, then hand them on
                try:
                    body = await self._read_body(receive, limit)
                except _TooLarge:
                    await _respond(send, 413, self.too_large(False))
                    return
                refused = self.check_gradio_body(path, headers, body)
                if refused is not None:
                    await _respond(send, *refused)
                    return
                receive = self._replay(body, receive)
        await self.app(scope, receive, self._with_headers(send))

    # ---- the checks ----------------------------------------------------------------------------------
    def check_request(
        self, scope: Scope, headers: Mapping[str, str], path: str, method: str
    ) -> tuple[int, str, list[tuple[bytes, bytes]]] | tuple[int, str] | None:
        """A refusal (status, sentence[, headers]) for the request line and headers alone, or None."""
        host = _hostname(headers.get("host", ""))
        if self.hosts is not None and host and host not in self.hosts:
            return (
                421,
                f"此服务器不接受主机名 {host[:80]} 的请求；如经反向代理访问，请在 allowed_hosts 中加入它。",
            )
        if method in UNSAFE_METHODS or scope["type"] == "websocket":
            origin = headers.get("origin")
            site = headers.get("sec-fetch-site", "")
            if origin is not None:
                parts = urlsplit(origin) if origin != "null" else None
                if (
                    parts is None
                    or not parts.netloc
                    or parts.netloc.lower() != headers.get("host", "").lower()
                ):
                    return 403, "拒绝跨站请求：修改和提问只接受来自本站页面的请求。"
            elif site in ("cross-site", "same-site"):
                return 403, "拒绝跨站请求：修改和提问只接受来自本站页面的请求。"
        if path.startswith("/gradio_api/file=http") or path.startswith("/gradio_api/proxy="):
            return 403, "此服务器不代为下载其他网址的文件。"
        if method in UNSAFE_METHODS and (path.startswith(COSTLY_PREFIXES) or path in COSTLY_PATHS):
            client = (scope.get("client") or ("?", 0))[0]  # client_address's, set in __call__
            wait = self.rate.take(str(client))
            if wait > 0:
                return (
                    429,
                    f"请求太频繁：每个地址每分钟最多 {self.settings.rate_limit_per_minute} 次提问、上传或登录，"
                    f"请 {wait:.0f} 秒后再试。",
                    [(b"retry-after", str(max(1, round(wait))).encode())],
                )
        if path == "/gradio_api/upload" and method == "POST":
            refusal = self.access.refusal(headers)
            if refusal is not None:
                return refusal
            if self.upload_folder is not None:
                sweep_upload_folder(self.upload_folder)
                used = upload_folder_bytes(self.upload_folder)
                if used >= self.settings.upload_temp_mb * 1024 * 1024:
                    return (
                        507,
                        f"待处理的上传文件已达 {self.settings.upload_temp_mb} MB 的上限（upload_temp_mb），请稍后再试。",
                    )
        return None

    def check_gradio_body(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str] | None:
        """A Gradio event may name files only inside the chat's upload folder, and only for a caller who may write."""
        if not path.startswith("/gradio_api/") or not body:
            return None
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None  # not JSON: Gradio answers it itself
        refs = [r for r in _file_refs(payload) if r]
        if not refs:
            return None
        refusal = self.access.refusal(headers)
        if refusal is not None:
            return refusal
        for ref in refs:
            ok = isinstance(ref, str) and self.upload_folder is not None
            if ok and ref.startswith(("/gradio_api/file=", "gradio_api/file=")):
                ref = unquote(ref.split("file=", 1)[1])
            if not ok or "://" in ref or not inside(ref, self.upload_folder):  # type: ignore[arg-type]
                return 403, "只能提交本页面刚上传的文件；服务器上的其他文件和网址一律拒绝。"
        return None

    def too_large(self, upload: bool) -> str:
        """The sentence for a body over its limit."""
        if upload:
            return f"上传内容太大：上限 {self.settings.max_upload_mb} MB（max_upload_mb）。"
        return f"请求体太大：上限 {self.settings.max_request_kb} KB（max_request_kb）；请缩短问题或历史。"

    # ---- plumbing ------------------------------------------------------------------------------------
    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in SECURITY_HEADERS if k not in present),
                ]
            await send(message)

        return sending


def chat_upload_folder() -> Path:
    """This process's folder for files the chat receives (Gradio's GRADIO_TEMP_DIR), set before Gradio starts."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or "").resolve()


def remove_stale_upload_folders(parent: Path, prefix: str) -> None:
    """Remove `<prefix><pid>` folders under `parent` whose process is gone (a kill -9 leaves them behind)."""
    for folder in parent.glob(f"{prefix}*"):
        pid_text = folder.name[len(prefix) :]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue
