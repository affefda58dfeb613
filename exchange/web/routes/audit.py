"""The audit room: indicators, usage-log search (masked), chain verification."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from exchange.web import indicators
from exchange.web.app import AUDIT_ROLES, check_csrf, render, require
from exchange.web.routes.common import LOG_LIMIT, clock
from quality.standards import mask_identifier

router = APIRouter(include_in_schema=False)


@router.get("/audit", response_class=HTMLResponse)
def audit_home(request: Request) -> HTMLResponse:
    """The audit room: links to the quality report and the usage log, indicators as SVG charts."""
    require(request, *AUDIT_ROLES)
    data = indicators.collect(request.app, clock(request))
    return render(request, "audit.html", ind=data)


ACTION_NAMES = {"subject_certificates": "查询持证主体证照", "licence": "调取电子证照", "once_only": "一次提交核对",
                "accept_application": "登记受理办件", "submit_material": "提交材料", "verify_material": "核验材料",
                "list_materials": "查询材料", "accept_case": "窗口受理"}
RULE_NAMES = {"ok": "准予", "counter": "综合受理窗口", "unauthenticated": "未认证", "purpose_required": "未说明用途",
              "invalid_purpose": "用途事项无效", "not_granted": "部门未获授权", "holder_not_authorised": "无持证人授权",
              "authorisation_code_invalid": "用证码无效", "authorisation_code_expired": "用证码已过期",
              "authorisation_code_used": "用证码已使用", "not_counter": "非窗口客户端",
              "application:counter": "窗口受理办件", "application:code": "持证人用证码", "authorisation_code": "持证人用证码"}


def _log_filters(params: Any) -> dict[str, str]:
    return {k: str(params.get(k) or "").strip() for k in ("holder", "department", "item", "date_from", "date_to",
                                                          "outcome")}


def search_log(store: Any, f: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
    """Usage-log records matching the filters, newest first (at most LOG_LIMIT), and an input error."""
    holder_masked = None
    if f["holder"]:
        h = f["holder"].upper()
        holder_masked = h if "*" in h else mask_identifier(h)
    for k in ("date_from", "date_to"):
        if f[k]:
            try:
                dt.date.fromisoformat(f[k])
            except ValueError:
                return [], f"日期“{f[k]}”格式不正确，应为 YYYY-MM-DD，例如 2026-11-20。"
    out = []
    for r in store.search_log(holder_masked=holder_masked, department=f["department"] or None,
                              item=f["item"] or None, day_from=f["date_from"] or None, day_to=f["date_to"] or None,
                              decision=f["outcome"] or None, limit=LOG_LIMIT):
        rec = json.loads(r.record)
        rec["purpose"] = rec.get("purpose") or {}
        out.append(rec)
    return out, None


@router.get("/audit/log", response_class=HTMLResponse)
def audit_log(request: Request) -> HTMLResponse:
    """The usage-log search form (the search itself is a POST)."""
    require(request, *AUDIT_ROLES)
    f = _log_filters(request.query_params)
    store = request.app.state.service_store
    searched = any(f.values()) or "search" in request.query_params
    records, error = search_log(store, f) if searched else ([], None)
    return _log_page(request, store, f=f, records=records, error=error, searched=searched)


def _log_page(request: Request, store: Any, *, f: dict[str, str], records: list[dict], error: str | None,
              searched: bool, chain: dict | None = None) -> HTMLResponse:
    """The usage-log page: search form, results (422 when the filters were refused), chain check."""
    return render(request, "log.html", 422 if error else 200, f=f, records=records, error=error, searched=searched,
                  departments=dict(store.departments()), chain=chain, limit=LOG_LIMIT,
                  action_names=ACTION_NAMES, rule_names=RULE_NAMES)


@router.post("/audit/log", response_class=HTMLResponse)
async def audit_log_search(request: Request) -> HTMLResponse:
    """The search as a POST form, so that a holder's full ID number never lands in a URL or access log."""
    form = await request.form()
    return await run_in_threadpool(_audit_log_search, request, form)


def _audit_log_search(request: Request, form: Any) -> HTMLResponse:
    require(request, *AUDIT_ROLES)
    check_csrf(request, form)
    f = _log_filters(form)
    store = request.app.state.service_store
    records, error = search_log(store, f)
    return _log_page(request, store, f=f, records=records, error=error, searched=True)


@router.post("/audit/log/verify", response_class=HTMLResponse)
async def audit_verify_chain(request: Request) -> HTMLResponse:
    """Verify the live hash chain of the usage log (exchange.usagelog.verify.verify_store_chain)."""
    form = await request.form()
    return await run_in_threadpool(_audit_verify_chain, request, form)


def _audit_verify_chain(request: Request, form: Any) -> HTMLResponse:
    from exchange.usagelog.verify import verify_store_chain

    require(request, *AUDIT_ROLES)
    check_csrf(request, form)
    store = request.app.state.service_store
    report = verify_store_chain(store)
    # the page shows the count only when the chain is intact, when every record was checked
    chain = {"intact": report.intact, "records": report.records, "days": report.days,
             "problem": str(report.first_broken) if report.first_broken else None}
    return _log_page(request, store, f=_log_filters({}), records=[], error=None, searched=False, chain=chain)
