"""Sign-in and sign-out (one new session and CSRF token per sign-in)."""

from __future__ import annotations

import secrets
import time

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from exchange.web import accounts
from exchange.web.app import AUDIT_ROLES, check_csrf, render, require
from exchange.web.exceptions import SignInRefused

router = APIRouter(include_in_schema=False)
THROTTLE = accounts.SignInThrottle()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> HTMLResponse:
    """The sign-in form."""
    return render(request, "login.html", next=safe_next(next), username="", error=None)


def safe_next(value: str) -> str:
    """A local path to return to after sign-in, or "" (no open redirect: //host, /\\host, schemes, controls)."""
    ok = (value.startswith("/") and not value.startswith(("//", "/\\")) and "\\" not in value
          and all(ord(c) > 0x20 and c != "\x7f" for c in value))
    return value if ok else ""


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Sign in: a new session with the account's role and a fresh CSRF token."""
    form = await request.form()
    return await run_in_threadpool(_login, request, form)


def _login(request: Request, form: Any) -> Response:
    check_csrf(request, form)
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    nxt = safe_next(str(form.get("next") or ""))
    error = None
    if not username or not password:
        error = "请填写用户名和密码。"
    elif (wait := THROTTLE.wait_seconds(username, time.monotonic())) > 0:
        error = f"该用户连续登录失败次数过多，请 {(wait + 59) // 60} 分钟后再试，或联系管理员重置密码。"
    else:
        try:
            account = accounts.authenticate(request.app.state.service_store, username, password)
            THROTTLE.succeeded(username)
        except SignInRefused:
            THROTTLE.failed(username, time.monotonic())
            error = "用户名或密码不正确，请重新输入。"
    if error:
        return render(request, "login.html", 401, next=nxt, username=username, error=error)
    request.session.clear()  # a new session (and CSRF token) on sign-in
    request.session.update(user=account.username, role=account.role, name=account.display_name,
                           client_id=account.client_id, csrf=secrets.token_urlsafe(24))
    home = "/counter" if account.role == "clerk" else "/audit"
    return RedirectResponse(nxt or home, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out (POST with the CSRF token): the session is cleared."""
    form = await request.form()
    return await run_in_threadpool(_logout, request, form)


def _logout(request: Request, form: Any) -> Response:
    check_csrf(request, form)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/web")
def web_home(request: Request) -> Response:
    """Home by role: the counter for clerks, the audit room for auditors and administrators."""
    user = require(request, "clerk", *AUDIT_ROLES)
    return RedirectResponse("/counter" if user["role"] == "clerk" else "/audit", status_code=303)
