"""Wiring of the web pages: signed session cookie, CSRF, role guards, templates, static files.

The session is Starlette's ``SessionMiddleware`` (itsdangerous-signed cookie
``ow_session``, HttpOnly, SameSite=Lax, Secure outside development, 8 hours), applied
only to page paths so the JSON API pays nothing for it. Its key comes from
``ONEWINDOW_WEB_SECRET`` or is created once under ``<data-dir>/keys/web-session.key``.
Every POST form carries the session's CSRF token. The signed-in account is re-read from
the store on every page, so a changed role or a disabled account ends the session.
``/quality`` (the data-quality report pages) needs an auditor or administrator session.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from exchange.web.exceptions import CsrfFailed, LoginRequired, PageError
from warehouse.datadir import Layout

HERE = Path(__file__).resolve().parent
SECRET_ENV = "ONEWINDOW_WEB_SECRET"
SESSION_COOKIE = "ow_session"
SESSION_MAX_AGE = 8 * 3600
# Paths that never carry a page session: the JSON API and published verification material.
_NO_SESSION = ("/api/", "/status/", "/.well-known/", "/healthz", "/openapi.json", "/docs", "/redoc", "/static/")
AUDIT_ROLES = ("auditor", "administrator")
templates = Jinja2Templates(directory=str(HERE / "templates"))


def session_secret(layout: Layout) -> str:
    env = os.environ.get(SECRET_ENV)
    if env:
        return env
    path = layout.keys / "web-session.key"
    if not path.exists():
        layout.keys.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # first writer wins when several workers start at once
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text("ascii").strip()


class _PageSessions:
    """Session middleware for page paths only, plus the role guard of ``/quality``."""

    def __init__(self, app: ASGIApp, secret_key: str, https_only: bool = False) -> None:
        self.app = app
        self.with_session = SessionMiddleware(self._guard, secret_key=secret_key, session_cookie=SESSION_COOKIE,
                                              max_age=SESSION_MAX_AGE, same_site="lax", https_only=https_only)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_NO_SESSION):
            await self.app(scope, receive, send)
        else:
            await self.with_session(scope, receive, send)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/quality" or path.startswith("/quality/"):
            session = scope.get("session") or {}
            account = scope["app"].state.service_store.account(session["user"]) if session.get("user") else None
            role = account["role"] if account and not account["disabled"] else None
            if role not in AUDIT_ROLES or role != session.get("role"):
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ------------------------------------------------------------------ session helpers
def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def check_csrf(request: Request, form: Any) -> None:
    sent = str(form.get("csrf") or "")
    want = request.session.get("csrf") or ""
    if not want or not hmac.compare_digest(sent.encode(), want.encode()):
        raise CsrfFailed()


def current_user(request: Request) -> dict[str, Any] | None:
    """The signed-in user, re-checked against the store (a disabled or changed account ends the session)."""
    name = request.session.get("user")
    if not name:
        return None
    row = request.app.state.service_store.account(name)
    if row is None or row["disabled"] or row["role"] != request.session.get("role") \
            or row["client_id"] != request.session.get("client_id"):
        request.session.clear()
        return None
    return {"username": name, "role": row["role"], "name": row["display_name"], "client_id": row["client_id"]}


def require(request: Request, *roles: str) -> dict[str, Any]:
    """The signed-in user if their role is one of ``roles``; else :class:`LoginRequired`."""
    user = current_user(request)
    if user is None or user["role"] not in roles:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path, roles, user is not None)
    return user


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    from exchange.web.accounts import ROLE_NAMES

    context.update(request=request, user=current_user(request), csrf=csrf_token(request), role_names=ROLE_NAMES)
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def install(app: FastAPI) -> None:
    """Mount the pages, their static files, the page sessions and the ``/quality`` guard."""
    from exchange.web import routes

    layout: Layout = app.state.layout
    app.include_router(routes.router)
    app.mount("/static/web", StaticFiles(directory=str(HERE / "static")), name="web-static")
    # Outside development the hub is served over TLS: the cookie is also marked Secure.
    app.add_middleware(_PageSessions, secret_key=session_secret(layout),
                       https_only=not app.state.settings.is_development)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> HTMLResponse:
        if exc.signed_in:
            from exchange.web.accounts import ROLE_NAMES

            need = "、".join(ROLE_NAMES[r] for r in exc.roles)
            return render(request, "error.html", 403, title="无权访问",
                          message=f"此页面仅限{need}使用，请使用相应账户登录。")
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='')}", status_code=303)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> HTMLResponse:
        return render(request, "error.html", exc.status, title=exc.title, message=exc.message)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> HTMLResponse:
        return render(request, "error.html", 403, title="表单已失效",
                      message="表单校验码（CSRF）缺失或已过期：请返回上一页刷新后重新提交。")
