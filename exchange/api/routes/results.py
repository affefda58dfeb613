"""Back-office results (办结结果): issuing departments push new or changed certificate records.

The route checks shape (422 ``invalid_request`` / ``invalid_result``), the caller (401;
403 ``not_issuer`` without the issuer role; 403 ``not_granted_issue`` when the
department holds no issue grant for a type or is not the type's registered issuer),
writes the records durably into the results inbox and answers 202 with a receipt.
Quality runs later, in the ``hub_results`` ingest, with the same ``licence_records``
suite as the construction approval system's drops; the next library build issues the
licences. Every push, accepted or refused, is in the usage log (action ``push_results``).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from exchange.api.core.access import AccessDep, CredentialsDep
from exchange.api.deps import NowDep
from exchange.api.exceptions import AccessDenied, ApiError, Unauthenticated
from exchange.api.schemas.common import error_responses
from exchange.api.schemas.results import ResultsIn, ResultsReceipt
from exchange.results import RESULTS_SOURCE, IssueGrants, ResultInbox

router = APIRouter(prefix="/api/v1/results", tags=["results"])


class InvalidResult(ApiError):
    status_code = 422
    code = "invalid_result"


def _state(request: Request) -> tuple[IssueGrants, ResultInbox]:
    state = request.app.state
    if getattr(state, "issue_grants", None) is None:
        state.issue_grants = IssueGrants(state.service_store)
        state.results_inbox = ResultInbox(state.layout)
    return state.issue_grants, state.results_inbox


@router.post("", response_model=ResultsReceipt, status_code=202,
             responses=error_responses(401, 403, 422))
def push_results(body: ResultsIn, request: Request, access: AccessDep, creds: CredentialsDep,
                 now: NowDep) -> ResultsReceipt:
    """Push back-office results (办结结果): new or changed certificates to be issued as licences."""
    from certificates.registry import load_registry

    grants, inbox = _state(request)
    reg = load_registry()
    problems, types = [], []
    for i, rec in enumerate(body.records):
        lt = None
        if rec.licence_type in reg.licence_types:
            lt = reg.licence_type(rec.licence_type)
        else:
            try:
                lt = reg.by_code(rec.licence_type)
            except KeyError:
                problems.append({"loc": ["body", "records", i, "licence_type"],
                                 "msg": f"unknown licence type {rec.licence_type!r}", "type": "unknown_licence_type"})
        types.append(lt)
    log_kw = {"action": "push_results", "holder_code": None, "target": None, "at": now,
              "licence_types": sorted({lt.code for lt in types if lt is not None})}
    client = access.authenticate(creds)
    if client is None:
        access.record(client=None, creds=creds, decision="denied", rule="unauthenticated", **log_kw)
        raise Unauthenticated("缺少或无效的 X-API-Key / 客户端证书。Authenticate as a department client "
                              "with the issuer role.")
    if "issuer" not in client.roles:
        access.record(client=client, creds=creds, decision="denied", rule="not_issuer", **log_kw)
        raise AccessDenied("not_issuer", "只有具备发证角色（issuer）的部门系统可以推送办结结果。Only clients with "
                                         "the issuer role may push back-office results "
                                         "(onewindow admin add-client --issuer).")
    if problems:
        access.record(client=client, creds=creds, decision="denied", rule="invalid_result", **log_kw)
        where = "; ".join(f"{'.'.join(map(str, p['loc'][1:]))}: {p['msg']}" for p in problems)
        raise InvalidResult(f"办结结果不符合要求。Invalid result records: {where}", detail={"problems": problems})
    granted = grants.of(client.department_code)
    refused = sorted({lt.key for lt in types if lt.code not in granted or lt.issuer.code != client.department_code})
    if refused:
        access.record(client=client, creds=creds, decision="denied", rule="not_granted_issue", **log_kw)
        raise AccessDenied("not_granted_issue",
                           f"{client.department_name} 无权推送这些证照类型的办结结果：{', '.join(refused)}。The "
                           f"department {client.department_code} is not the registered issuer of, or holds no "
                           "issue grant for, these types (onewindow admin grant-issue).",
                           detail={"licence_types": refused})
    rows = [{"licence_type_code": lt.code, "cert_no": rec.cert_number,
             "holder_code": rec.holder_code.upper(), "holder_code_type": rec.holder_code_type,
             "holder_name": rec.holder_name, "issue_date": rec.issue_date.isoformat(),
             "valid_from": (rec.valid_from or rec.issue_date).isoformat(),
             "valid_until": rec.valid_until.isoformat() if rec.valid_until else "",
             "status": rec.status, "details": json.dumps(rec.details, ensure_ascii=False, sort_keys=True)}
            for rec, lt in zip(body.records, types)]
    receipt = inbox.write(rows, client_id=client.client_id, at=now)
    access.record(client=client, creds=creds, decision="granted", rule="issuer",
                  **{**log_kw, "target": receipt.receipt_id})
    return ResultsReceipt(
        receipt_id=receipt.receipt_id, records=receipt.records, received_at=receipt.received_at,
        source_id=RESULTS_SOURCE, licence_types=sorted({lt.key for lt in types}),
        message=f"已接收 {receipt.records} 条办结结果，经数据质量检查后由下一次证照库构建签发电子证照。"
                f"Accepted; the ingest_{RESULTS_SOURCE} run checks and merges them, the next library build "
                "issues the licences.")
