"""Published verification material (status lists, trust bundle / JWKS), the verify page and
the printable copy of a licence.

Everything here is public. The verify page shows only the outcome and the identifier,
never personal data; the printable copy is rendered from a token the caller presents
(whoever holds the token already holds its content), and only if it verifies.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from fastapi import Body
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.requests import Request

from exchange.api.core.statuslists import StatusListsDep
from exchange.api.deps import NowDep, SnapshotDep, TrustDep, get_layout
from exchange.api.exceptions import TrustUnavailable
from exchange.api.schemas.common import error_responses
from exchange.api.schemas.trust import TrustExpiryResponse
from warehouse.datadir import Layout

router = APIRouter(tags=["verification material"])
LayoutDep = Annotated[Layout, Depends(get_layout)]
_LIST_ID = re.compile(r"[0-9A-Z]{18}-[0-9]{4}")


def _published(path: Path, what: str) -> Path:
    if not path.is_file():
        raise TrustUnavailable(f"{what}尚未发布（{path.name}）。{what} is not published yet: run the pipeline.")
    return path


def _json_errors(*codes: int) -> dict:
    """The error envelope for routes whose success body is not JSON (errors still are)."""
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    return {c: {"description": "error", "content": {"application/json": {"schema": ref}}} for c in codes}


def _content(media_type: str, description: str, schema: dict | None = None) -> dict:
    """OpenAPI for a 200 that is not JSON (or is JSON of another media type)."""
    return {200: {"description": description,
                  "content": {media_type: {"schema": schema or {"type": "string"}}}}}


@router.get("/.well-known/jwks.json", response_class=Response,
            responses={**_content("application/jwk-set+json", "JWKS", {"type": "object"}), **error_responses(503)})
def jwks(layout: LayoutDep) -> Response:
    """The issuers' licence-signing keys as a JWKS (RFC 7517), with their x5c chains."""
    path = _published(layout.trust / "jwks.json", "签名公钥 JWKS")
    return FileResponse(path, media_type="application/jwk-set+json",
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/.well-known/onewindow-trust.pem", response_class=Response,
            responses={**_content("application/x-pem-file", "PEM certificates"), **error_responses(503)})
def trust_bundle(layout: LayoutDep) -> Response:
    """The trust bundle: hub root certificate and every issuer certificate (PEM)."""
    path = _published(layout.trust / "bundle.pem", "信任列表")
    return FileResponse(path, media_type="application/x-pem-file",
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/status/lists/{list_id}", response_class=Response,
            responses={**_content("application/jose", "compact JWS of the status list"), **error_responses(404)})
def status_list(layout: LayoutDep,
                list_id: Annotated[str, PathParam(description="<issuer credit code>-<4 digits>")]) -> Response:
    """A signed licence status list (W3C Bitstring Status List style, compact JWS)."""
    path = layout.root / "status" / f"{list_id}.jws"
    if not _LIST_ID.fullmatch(list_id) or not path.is_file():
        raise HTTPException(404, f"没有状态列表 {list_id}。No status list {list_id!r}.")
    token = path.read_text("ascii").strip()
    payload = json.loads(_b64(token.split(".")[1]))
    until = dt.datetime.fromisoformat(payload["validUntil"])
    max_age = max(0, int((until - dt.datetime.now(dt.timezone.utc)).total_seconds()))
    return Response(token, media_type="application/jose",
                    headers={"Cache-Control": f"public, max-age={max_age}",
                             "Expires": until.astimezone(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")})


@router.get("/api/v1/trust/expiry", response_model=TrustExpiryResponse, responses=error_responses(503))
def trust_expiry(trust: TrustDep, now: NowDep) -> TrustExpiryResponse:
    """Signing certificates (departments' licence keys, the hub service key) expired or expiring soon."""
    from exchange.api.core.certexpiry import as_dict, expiring, warn_days

    days = warn_days()
    return TrustExpiryResponse(checked_at=now.isoformat(timespec="seconds"), warn_days=days,
                               certificates=[as_dict(e) for e in expiring(trust, now, days)])


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


_VERIFY_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>电子证照核验</title>
<style>body{{font-family:"PingFang SC","Microsoft YaHei",sans-serif;max-width:36rem;margin:2rem auto;
padding:0 1rem}} .ok{{color:#1e7e34}} .bad{{color:#c0392b}} code{{word-break:break-all}}</style></head>
<body><h1>电子证照核验</h1><p class="{cls}"><strong>{reason}</strong></p>
<p>结果代码：<code>{code}</code></p><p>证照标识：<code>{licence_id}</code></p>
<p>颁发机构：{issuer}</p><p>核验时间：{at}</p></body></html>"""


@router.get("/verify/{licence_id}", response_class=HTMLResponse, responses=_json_errors(404, 503))
def verify_page(licence_id: str, snap: SnapshotDep, trust: TrustDep, lists: StatusListsDep,
                now: NowDep) -> HTMLResponse:
    """The verify page a licence's QR code opens: signature, issuer and current status, no personal data."""
    import html

    from certificates import verify_licence

    row = snap.index.licence(licence_id.strip())
    if row is None:
        raise HTTPException(404, f"证照库中没有标识为 {licence_id} 的电子证照。No licence {licence_id!r}.")
    result = verify_licence(row["token"], trust, at=now, status_source=lists)
    return HTMLResponse(_VERIFY_PAGE.format(
        cls="ok" if result.ok else "bad", reason=html.escape(result.reason_zh), code=result.code,
        licence_id=html.escape(licence_id), issuer=html.escape(result.issuer_name or "未知"),
        at=now.isoformat(timespec="seconds")))


@router.post("/licences/print", response_class=HTMLResponse, responses=_json_errors(422, 503))
def print_copy(request: Request, trust: TrustDep, now: NowDep,
               token: Annotated[str, Body(embed=True, description="The licence token to print")]) -> HTMLResponse:
    """Printable HTML copy of a presented licence, with a QR code to its verify page."""
    from certificates import verify_licence
    from certificates.render import render_licence_html

    result = verify_licence(token, trust, at=now)
    if result.payload is None or result.code in ("tampered", "unknown_issuer", "malformed"):
        raise HTTPException(422, f"证照无法核验，不予打印：{result.reason_zh}（{result.code}）")
    url = str(request.url_for("verify_page", licence_id=result.licence_id))
    return HTMLResponse(render_licence_html(result.payload, verify_url=url))
