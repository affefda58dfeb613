"""Applications accepted at the counter (受理): they authorise reads for that holder in that case."""

from __future__ import annotations

from fastapi import APIRouter

from exchange.api.core.access import AccessDep, CredentialsDep
from exchange.api.core.identifiers import check_holder_code
from exchange.api.deps import CatalogueDep, NowDep
from exchange.api.exceptions import AccessDenied, ItemNotFound, Unauthenticated
from exchange.api.schemas.access import ApplicationIn, ApplicationOut
from exchange.api.schemas.common import error_responses
from exchange.onceonly.exceptions import UnknownItemError
from exchange.store.base import StoreError
from quality.standards import mask_identifier

router = APIRouter(prefix="/api/v1/applications", tags=["access"])


@router.post("", response_model=ApplicationOut, status_code=201,
             responses=error_responses(401, 403, 404, 409, 422))
def accept_application(body: ApplicationIn, access: AccessDep, creds: CredentialsDep, catalogue: CatalogueDep,
                       now: NowDep) -> ApplicationOut:
    """Record an application accepted at the counter (clients with the counter role only)."""
    holder = check_holder_code(body.holder_code, body.holder_code_type).code
    client = access.authenticate(creds)
    log_kw = {"action": "accept_application", "holder_code": holder, "licence_types": [],
              "target": body.case_number, "at": now}
    if client is None:
        access.record(client=None, creds=creds, decision="denied", rule="unauthenticated", **log_kw)
        raise Unauthenticated("缺少或无效的 X-API-Key。Authenticate with the X-API-Key header.")
    if "counter" not in client.roles:
        access.record(client=client, creds=creds, decision="denied", rule="not_counter", **log_kw)
        raise AccessDenied("not_counter", "只有综合受理窗口的客户端可以登记受理办件。Only clients with the "
                                          "counter role may record accepted applications.")
    try:
        item = catalogue.get(body.item_code)
    except UnknownItemError as exc:
        raise ItemNotFound(f"没有编码为 {body.item_code} 的政务服务事项。{exc}") from exc
    try:
        app = access.store.accept_application(body.case_number, item.code, holder, body.clerk_id,
                                              client.client_id, at=now)
    except StoreError as exc:
        access.record(client=client, creds=creds, decision="denied", rule=exc.code, **log_kw)
        raise CaseConflict(str(exc)) from exc
    access.record(client=client, creds=creds, decision="granted", rule="counter", **log_kw)
    return ApplicationOut(case_number=app.case_number, item_code=app.item_code,
                          holder_code_masked=mask_identifier(app.holder_code), clerk_id=app.clerk_id,
                          client_id=app.client_id, accepted_at=app.accepted_at, basis=app.basis)  # type: ignore[arg-type]


class CaseConflict(AccessDenied):
    status_code = 409

    def __init__(self, message: str) -> None:
        super().__init__("case_conflict", message)
