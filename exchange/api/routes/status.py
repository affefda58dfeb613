"""Published verification material: licence status lists and the hub's trust bundle / JWKS.

Everything here is public and cacheable: an offline verifier downloads it once and
checks licences without the service (``onewindow licence verify``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from exchange.api.deps import get_layout
from exchange.api.exceptions import TrustUnavailable
from warehouse.datadir import Layout

router = APIRouter(tags=["verification material"])
LayoutDep = Annotated[Layout, Depends(get_layout)]
_LIST_ID = re.compile(r"[0-9A-Z]{18}-[0-9]{4}")


def _published(path: Path, what: str) -> Path:
    if not path.is_file():
        raise TrustUnavailable(f"{what}尚未发布（{path.name}）。{what} is not published yet: run the pipeline.")
    return path


@router.get("/.well-known/jwks.json")
def jwks(layout: LayoutDep) -> Response:
    """The issuers' licence-signing keys as a JWKS (RFC 7517), with their x5c chains."""
    path = _published(layout.trust / "jwks.json", "签名公钥 JWKS")
    return FileResponse(path, media_type="application/jwk-set+json",
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/.well-known/onewindow-trust.pem")
def trust_bundle(layout: LayoutDep) -> Response:
    """The trust bundle: hub root certificate and every issuer certificate (PEM)."""
    path = _published(layout.trust / "bundle.pem", "信任列表")
    return FileResponse(path, media_type="application/x-pem-file",
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/status/lists/{list_id}")
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


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
