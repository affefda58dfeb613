"""Once-only (一次提交) check: what is on file, what must be submitted."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response

from exchange.api.core.access import CREDENTIAL_OPENAPI, credentials_of
from exchange.api.core.identifiers import check_holder_code
from exchange.api.core.lean import lean_route
from exchange.api.deps import CST, refreshed, request_now
from exchange.api.exceptions import InvalidIdentifier, ItemNotFound
from exchange.api.schemas.common import error_responses
from exchange.api.schemas.onceonly import OnceOnlyRequest, OnceOnlyResponse
from exchange.onceonly.exceptions import UnknownItemError
from exchange.onceonly.resolver import Applicant, OnFile, Rejected, Resolution, Served, resolve
from quality.standards import mask_identifier

router = APIRouter(prefix="/api/v1", tags=["once-only"])
log = logging.getLogger("exchange.api.onceonly")


_SERVED: dict[int, tuple[Served, dict[str, Any]]] = {}
_SERVED_LIMIT = 8192


def _served(v: Served) -> dict[str, Any]:
    """A ``serves`` entry, built once per :class:`Served` object (the resolver keeps one per
    catalogue material of a bundle). The entry keeps its object alive, so its ``id`` is not
    reused; callers only read (encode or validate) the dict."""
    hit = _SERVED.get(id(v))
    if hit is None or hit[0] is not v:
        if len(_SERVED) >= _SERVED_LIMIT:
            _SERVED.clear()
        hit = _SERVED[id(v)] = (v, {"item_code": v.item_code, "item_name": v.item_name,
                                    "material_key": v.material_key, "material_name": v.material_name,
                                    "necessity": v.necessity, "condition": v.condition})
    return hit[1]


def answer(res: Resolution, snapshot_id: str, granted: frozenset[str] | None = None) -> dict[str, Any]:
    """The answer as plain data in the shape (and field order) of :class:`OnceOnlyResponse`; with
    ``granted``, licences of other types keep their status but not their numbers.

    The API encodes it with msgspec (building the pydantic models cost ~0.2 ms a 5-item answer);
    :func:`to_response` validates it into the models. Tests check both give the same JSON.
    """

    def shown(type_code: str) -> bool:
        return granted is None or not type_code or type_code in granted

    def on_file(u: OnFile) -> dict[str, Any]:
        show = shown(u.licence_type_code)
        return {"kind": u.kind, "licence_id": u.licence_id if show else None, "material_id": u.material_id,
                "digest": u.digest, "verified_by": u.verified_by, "withheld": not show,
                "licence_type": u.licence_type_name, "licence_type_code": u.licence_type_code,
                "cert_number": u.cert_number if show else "", "issuing_department": u.issuer_name,
                "issuer_code": u.issuer_code, "valid_until": u.valid_until, "status": u.status,
                "flags": list(u.flags)}

    def not_counted(x: Rejected) -> dict[str, Any]:
        show = shown(x.licence_type_code)
        return {"licence_id": x.licence_id if show else None, "licence_type": x.licence_type_name,
                "cert_number": x.cert_number if show else "", "status": x.status, "valid_from": x.valid_from,
                "valid_until": x.valid_until, "reason_code": x.reason_code, "reason_zh": x.reason_zh}

    masked: dict[str, str] = {}  # the applicant's code (and the agent's) on every line: masked once

    def mask(code: str) -> str:
        if code not in masked:
            masked[code] = mask_identifier(code)
        return masked[code]

    reqs = [{"status": r.status, "title": r.title, "holder_role": r.holder_role,
             "holder_code_masked": mask(r.holder_code) if r.holder_code else None,
             "satisfied_by": r.satisfied_by, "licence_types": list(r.licence_types), "necessity": r.necessity,
             "source_channel": r.source_channel, "on_file": [on_file(u) for u in r.on_file],
             "missing": list(r.missing), "not_counted": [not_counted(x) for x in r.rejected],
             "serves": [_served(v) for v in r.serves], "note": r.note} for r in res.requirements]
    findings = [{"holder_code_masked": mask(f.holder_code), "field": f.field,
                 "values": [{"department": o.department, "source": o.source, "value": o.value, "record": o.record,
                             "licence_id": o.licence_id} for o in f.values],
                 "message_zh": f.message_zh} for f in res.findings]
    return {"snapshot_id": snapshot_id, "at": res.at.isoformat(timespec="seconds"),
            "items": [{"code": i.code, "impl_code": i.impl_code, "name": i.name} for i in res.items],
            "on_file_count": res.on_file_count, "must_submit_count": res.must_submit_count,
            "requirements": reqs, "findings": findings, "notes": list(res.notes)}


def to_response(res: Resolution, snapshot_id: str,
                granted: frozenset[str] | None = None) -> OnceOnlyResponse:
    """:func:`answer` as the documented pydantic models (the counter pages render these)."""
    return OnceOnlyResponse.model_validate(answer(res, snapshot_id, granted))


@lean_route(router, "/once-only", methods=["POST"], hot=True, response_model=OnceOnlyResponse,
            responses=error_responses(400, 401, 403, 404, 422, 503), openapi_extra=CREDENTIAL_OPENAPI)
async def once_only(request: Request, body: OnceOnlyRequest) -> OnceOnlyResponse:
    """Which materials of the given items are already on file for the applicant (purpose required)."""
    # A lean route: the resolver reads the in-memory index; the usage-log commit is awaited.
    state, now, a = request.app.state, request_now(request), body.applicant
    code = check_holder_code(a.code, a.code_type)
    with (await refreshed(state.snapshots)).lease(refresh=False) as snap:
        access = state.access
        decision = await access.authorise_async(credentials_of(request), action="once_only", holder_code=code.code,
                                                licence_types=[], at=now, target=",".join(body.items)[:256],
                                                require_all=False)
        if code.check_char_warning and snap.index.subject(code.code) is None \
                and not snap.index.certificates_of(code.code):
            raise InvalidIdentifier(code.check_char_warning)
        agent = None
        if a.agent_code:
            agent = check_holder_code(a.agent_code, "111").code
        applicant = Applicant(code=code.code, code_type=a.code_type, agent_code=agent)
        at = now.astimezone(CST).replace(tzinfo=None) if now.tzinfo else now  # library dates are naive CST
        try:
            res = resolve(state.catalogue, snap.index, applicant, body.items, at=at, materials=state.materials)
        except UnknownItemError as exc:
            raise ItemNotFound(f"没有编码为 {exc.code} 的政务服务事项。{exc}") from exc
        if log.isEnabledFor(logging.INFO):  # the arguments cost ~6 % of a check when nobody logs them
            log.info("once-only %s items=%s on_file=%d must_submit=%d findings=%d",
                     mask_identifier(code.code), body.items, res.on_file_count, res.must_submit_count,
                     len(res.findings))
        out = answer(res, snap.snapshot_id, access.store.grants_of(decision.client.department_code))
    # The shape of OnceOnlyResponse (tested), as JSON bytes: FastAPI does not validate it again.
    return Response(msgspec.json.encode(out), media_type="application/json")  # type: ignore[return-value]
