"""Who may change a corpus: the one check every write route (and the chat's delete button) goes through.

A minimal version written for issue 17 (removing documents) ahead of the security work (issue 16),
which adds the same write token: ``admin_token`` in qa.toml or ``QA_ADMIN_TOKEN``, sent as
``Authorization: Bearer <token>``. When a token is configured, a change needs it; without one, changes
are accepted only while the server listens on loopback (as uploads always were), and refused otherwise.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.config import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ("" when absent or of another kind)."""
    if not authorization:
        return ""
    kind, _, value = authorization.strip().partition(" ")
    return value.strip() if kind.lower() == "bearer" else ""


def admin_refusal(token: str, settings: Settings) -> tuple[int, str] | None:
    """None when `token` may change the corpus; else (HTTP status, the one sentence that says why not)."""
    expected = settings.admin_token
    if expected:
        if token and hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
            return None
        return 401, "修改文档需要管理员口令：请在请求头中加入 Authorization: Bearer <admin_token>。"
    if settings.host in LOOPBACK:
        return None
    return (
        403,
        "这个服务器没有设置管理员口令（admin_token 或 QA_ADMIN_TOKEN），不接受修改文档；请设置后重新启动。",
    )
