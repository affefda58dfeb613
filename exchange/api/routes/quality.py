"""Data-quality pages for auditors (数据质量报告): overview, per-run drill-down, GX Data Docs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from exchange.api.deps import NowDep, SnapshotDep
from exchange.api.exceptions import ApiError

router = APIRouter(prefix="/quality", tags=["quality"])

_NAME = re.compile(r"^[0-9A-Za-z._=-]+$")


class QualityNotFound(ApiError):
    status_code = 404
    code = "not_found"


def _link(run_id: str) -> str:
    return f"/quality/runs/{quote(run_id, safe='')}"


def _docs_link(request: Request) -> Callable[[Any], str | None]:
    from quality.data_docs import page_name

    reports = request.app.state.layout.reports

    def link(run: Any) -> str | None:
        page = page_name(run.run_id)
        if not (reports / "data_docs" / run.source_id / run.interval / page).is_file():
            return None
        return f"/quality/data-docs/{quote(run.source_id)}/{quote(run.interval)}/{quote(page)}"
    return link


def _cert_expiry(request: Request, now: Any) -> str:
    """The "证书到期提醒" section from the published trust material (same data as /api/v1/trust/expiry)."""
    from exchange.api.core.certexpiry import as_dict, expiring, warn_days
    from exchange.api.exceptions import TrustUnavailable
    from quality.report import cert_expiry_section

    days = warn_days()
    try:
        trust = request.app.state.trust.get()
    except TrustUnavailable:
        return cert_expiry_section(None, days)
    return cert_expiry_section([as_dict(e) for e in expiring(trust, now, days)], days)


@router.get("", response_class=HTMLResponse)
def quality_report(snap: SnapshotDep, request: Request, now: NowDep) -> HTMLResponse:
    """Data-quality report: certificate expiry warnings, score per department over time, worst rules, cross-check findings."""
    from quality.report import build_report

    cur = snap.cursor()
    try:
        return HTMLResponse(build_report(cur, link=_link, prelude=_cert_expiry(request, now)))
    finally:
        cur.close()


@router.get("/runs/{run_id}", response_class=HTMLResponse, responses={404: {"description": "unknown run"}})
def quality_run(run_id: str, snap: SnapshotDep, request: Request) -> HTMLResponse:
    """One run's drill-down: counts, quarantined rows and findings, identifiers masked."""
    from quality.report import build_report, read_run

    cur = snap.cursor()
    try:
        if not read_run(cur, run_id)["batches"]:
            raise QualityNotFound(f"快照 {snap.snapshot_id} 中没有运行 {run_id} 的质量记录。Unknown run id.")
        return HTMLResponse(build_report(cur, run_id, link=_link, docs_link=_docs_link(request)))
    finally:
        cur.close()


@router.get("/data-docs/{source_id}/{interval}/{page}", responses={404: {"description": "no such page"}})
def data_docs_page(source_id: str, interval: str, page: str, request: Request) -> FileResponse:
    """A run's GX Data Docs page (kept per run; remote assets removed)."""
    for part in (source_id, interval, page):
        if not _NAME.match(part) or part.startswith("."):
            raise QualityNotFound("没有这个数据文档页面。No such Data Docs page.")
    path = request.app.state.layout.reports / "data_docs" / source_id / interval / page
    if path.suffix != ".html" or not path.is_file():
        raise QualityNotFound("没有这个数据文档页面。No such Data Docs page.")
    return FileResponse(path, media_type="text/html; charset=utf-8")
