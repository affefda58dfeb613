"""Shared by the page routes: Chinese messages, the request clock, the clerk's counter access."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import Request

from exchange.api.core.access import AccessControl, RequestCredentials
from exchange.api.deps import get_now
from exchange.web.exceptions import PageError

CLERK_ROLES = ("clerk", "administrator")
MAX_TOKEN = 64 * 1024
LOG_LIMIT = 200
_ZH = re.compile(r"^(.*?。)(?=[A-Za-z(]|$)", re.S)


def zh(message: str) -> str:
    """The Chinese sentence(s) of a bilingual service message."""
    m = _ZH.match(message or "")
    return m.group(1) if m else message


def clock(request: Request) -> dt.datetime:
    """The request's moment: the API's clock, overridden in tests like the API's."""
    return request.app.dependency_overrides.get(get_now, get_now)()


class CounterAccess(AccessControl):
    """The service's access rules with the web clerk's counter client as the authenticated caller."""

    def __init__(self, base: AccessControl, client: Any) -> None:
        self.__dict__.update(base.__dict__)
        self.client = client

    def authenticate(self, creds: RequestCredentials) -> Any:
        return self.client


def counter_access(request: Request, user: dict[str, Any]) -> CounterAccess:
    base: AccessControl = request.app.state.access
    client = base.store.client(user["client_id"]) if user.get("client_id") else None
    if client is None or client.disabled or "counter" not in client.roles:
        raise PageError(403, "无法办理", f"账户 {user['username']} 未关联可用的窗口客户端（{user.get('client_id') or '无'}），"
                        "请联系管理员（onewindow admin add-user … --client，或启用该客户端）。")
    return CounterAccess(base, client)
