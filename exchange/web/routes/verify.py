"""Verifying a licence the applicant presents: pasted or uploaded token, printable copy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from exchange.api.exceptions import ApiError
from exchange.web.app import check_csrf, render, require
from exchange.web.routes.common import CLERK_ROLES, MAX_TOKEN, clock, zh

router = APIRouter(include_in_schema=False)


@router.get("/counter/verify", response_class=HTMLResponse)
def verify_page(request: Request) -> HTMLResponse:
    """The form to verify a licence the applicant presents."""
    require(request, *CLERK_ROLES, "auditor")
    return render(request, "verify.html", token="", result=None, error=None)


@router.post("/counter/verify", response_class=HTMLResponse)
async def verify_submit(request: Request) -> Response:
    """Verify a pasted or uploaded licence token: signature, issuer, current status, validity."""
    form = await request.form()
    return await run_in_threadpool(_verify_submit, request, form)


def _verify(request: Request, token: str) -> Any:
    """The one verification the pages run: trust store and status from the published signed
    status lists, as in POST /api/v1/verify and the offline verifier (not the snapshot's rows)."""
    from certificates import verify_licence
    from exchange.api.core.statuslists import get_status_lists

    trust = request.app.state.trust.get()
    return verify_licence(token, trust, at=clock(request), status_source=get_status_lists(request, trust))


def _verify_submit(request: Request, form: Any) -> Response:
    require(request, *CLERK_ROLES, "auditor")
    check_csrf(request, form)
    token = str(form.get("token") or "").strip()
    upload = form.get("file")
    if upload is not None and not isinstance(upload, str) and upload.filename:
        raw = upload.file.read(MAX_TOKEN + 1)
        if len(raw) > MAX_TOKEN:
            return render(request, "verify.html", 413, token="", result=None,
                          error=f"上传的文件超过 {MAX_TOKEN // 1024} KB，不是电子证照文件。请上传签发的 .jws 证照文件。")
        try:
            token = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            return render(request, "verify.html", 422, token="", result=None,
                          error="上传的文件不是电子证照（应为签名后的文本文件 .jws）。请重新选择文件。")
    if not token:
        return render(request, "verify.html", 422, token="", result=None,
                      error="请粘贴电子证照内容，或选择证照文件后再核验。")
    if len(token) > MAX_TOKEN:
        return render(request, "verify.html", 413, token="", result=None,
                      error=f"粘贴的内容超过 {MAX_TOKEN // 1024} KB，不是电子证照。")
    try:
        result = _verify(request, token)
    except ApiError as exc:
        return render(request, "verify.html", exc.status_code, token=token, result=None, error=zh(exc.message))
    return render(request, "verify.html", token=token, result=result, error=None,
                  holder=(result.payload or {}).get("holder") or {} if result.ok else {})


@router.post("/counter/verify/print", response_class=HTMLResponse)
async def verify_print(request: Request) -> Response:
    """Printable copy (with QR code to /verify/{id}) of a presented licence that verifies."""
    form = await request.form()
    return await run_in_threadpool(_verify_print, request, form)


def _verify_print(request: Request, form: Any) -> Response:
    from certificates.render import render_licence_html

    require(request, *CLERK_ROLES, "auditor")
    check_csrf(request, form)
    token = str(form.get("token") or "").strip()[:MAX_TOKEN]
    result = _verify(request, token)
    if result.payload is None or result.code in ("tampered", "unknown_issuer", "malformed"):
        return render(request, "verify.html", 422, token=token, result=result,
                      error=f"证照无法核验，不予打印：{result.reason_zh}")
    url = str(request.url_for("verify_page", licence_id=result.licence_id))
    return HTMLResponse(render_licence_html(result.payload, verify_url=url))
