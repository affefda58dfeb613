"""Signed licences: fetch one, verify a presented token."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated

import msgspec
from fastapi import APIRouter, Path, Request, Response

from exchange.api.core.access import CREDENTIAL_OPENAPI, credentials_of
from exchange.api.core.lean import lean_route
from exchange.api.core.statuslists import StatusListsDep
from exchange.api.deps import NowDep, TrustDep, refreshed, request_now
from exchange.api.exceptions import LicenceNotFound
from exchange.api.schemas.common import error_responses
from exchange.api.schemas.licences import Licence, VerifyRequest, VerifyResponse

router = APIRouter(prefix="/api/v1", tags=["licences"])
log = logging.getLogger("exchange.api.licences")


_EMPTY = msgspec.Raw(b"{}")


def payload_json(token: str) -> msgspec.Raw:
    """The JWS payload as the JSON object it holds, without verifying anything (display only);
    ``{}`` when it is not one. Checked as JSON by msgspec, not turned into Python objects: the
    answer embeds the bytes as they are."""
    try:
        segment = token.split(".")[1]
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        msgspec.json.decode(data, type=msgspec.Raw)
    except (IndexError, binascii.Error, ValueError, msgspec.DecodeError):
        return _EMPTY
    return msgspec.Raw(data) if data.lstrip()[:1] == b"{" else _EMPTY


@lean_route(router, "/licences/{licence_id}", methods=["GET"], hot=True, response_model=Licence,
            responses=error_responses(400, 401, 403, 404, 503), openapi_extra=CREDENTIAL_OPENAPI)
async def get_licence(
    request: Request,
    licence_id: Annotated[str, Path(description="GB/T 36904 identifier, e.g. 1.2.156.3005.2.…")],
) -> Licence:
    """A signed licence (compact JWS) with its decoded payload (granted type, purpose required)."""
    # A lean route: the in-memory index and cached rules on the loop; the usage-log commit is awaited.
    state, now, licence_id = request.app.state, request_now(request), licence_id.strip()
    with (await refreshed(state.snapshots)).lease(refresh=False) as snap:
        found = snap.index.licence_read(licence_id)
        row = found[0] if found else None
        decision = await state.access.authorise_async(
            credentials_of(request), action="licence", target=licence_id[:128],
            holder_code=row["holder_code"] if row else None,
            licence_types=[row["licence_type_code"]] if row else [], at=now, require_all=row is not None)
        if found is None:
            raise LicenceNotFound(f"证照库中没有标识为 {licence_id} 的电子证照。"
                                  f"No licence {licence_id!r} in snapshot {snap.snapshot_id}.")
        row, superseded, status = found
        token = row["token"]
        # The fields of `Licence`, in its order, serialised by msgspec without building the model
        # (tests check the answer validates as `Licence`).
        body = {"licence_id": row["licence_id"], "base_id": row["base_id"], "version": row["version"],
                "cert_key": row["cert_key"], "licence_type_code": row["licence_type_code"],
                "holder_code": row["holder_code"], "issuer_code": row["issuer_code"],
                "issued_at": row["issued_at"], "supersedes": row["supersedes"],
                "superseded": superseded, "status": status, "token": token,
                "payload": payload_json(token),
                "use_copy": await state.use_copies.stamp_async(decision, licence_id=row["licence_id"],
                                                               token=token, at=now)}
    return Response(msgspec.json.encode(body), media_type="application/json")  # type: ignore[return-value]


@router.post("/verify", response_model=VerifyResponse, responses=error_responses(503))
def verify(body: VerifyRequest, trust: TrustDep, lists: StatusListsDep, now: NowDep) -> VerifyResponse:
    """Verify a presented licence token: signature, issuer, current status, validity.

    The status (revoked, suspended …) comes from the published signed status lists, as in
    the offline verifier; a missing or expired list answers ``status_unavailable``.
    """
    from certificates import verify_licence

    result = verify_licence(body.token, trust, at=now, status_source=lists)
    log.info("verify %s -> %s", result.licence_id, result.code)
    return VerifyResponse(outcome=result.code, valid=result.ok, reason_zh=result.reason_zh,
                          detail=result.detail, licence_id=result.licence_id, issuer=result.issuer,
                          issuer_name=result.issuer_name,
                          payload=result.payload, warnings=list(result.warnings), use_copy=result.use_copy,
                          checked_at=now.isoformat(timespec="seconds"))
