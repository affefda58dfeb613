"""Subjects (持证主体) and the certificates on file for them."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from exchange.api.core.access import CREDENTIAL_OPENAPI, AccessDep, credentials_of
from exchange.api.core.identifiers import check_holder_code, uscc_check_error
from exchange.api.deps import SnapshotDep, request_now
from exchange.api.exceptions import SubjectNotFound
from exchange.api.schemas.common import error_responses
from exchange.api.schemas.subjects import Certificate, CodeName, Holder, Status, SubjectCertificates
from exchange.onceonly.resolver import STATUS_NAMES
from quality.standards import mask_identifier

router = APIRouter(prefix="/api/v1/subjects", tags=["subjects"])
log = logging.getLogger("exchange.api.subjects")


@router.get("/{code}/certificates", response_model=SubjectCertificates,
            responses=error_responses(400, 401, 403, 404, 422, 503),
            openapi_extra=CREDENTIAL_OPENAPI)
async def subject_certificates(
    request: Request,
    snap: SnapshotDep,
    access: AccessDep,
    code: Annotated[str, Path(description="citizen ID number (GB 11643) or credit code (GB 32100)")],
    code_type: Annotated[Literal["111", "001"] | None, Query(description="force the code type")] = None,
) -> SubjectCertificates:
    """Certificates on file for a holder that the caller's department may read (purpose required)."""
    holder_code = check_holder_code(code, code_type)
    index = snap.index
    all_certs = index.certificates_of(holder_code.code)
    # async: in-memory index and cached rules on the loop; the usage-log commit is awaited.
    decision = await access.authorise_async(
        credentials_of(request), action="subject_certificates", holder_code=holder_code.code,
        licence_types=[c["licence_type_code"] for c in all_certs], at=request_now(request), require_all=False)
    subject = index.subject(holder_code.code)
    certs = [c for c in all_certs if c["licence_type_code"] in decision.granted_types]
    log.info("lookup %s (%s): subject=%s certificates=%d", mask_identifier(holder_code.code),
             holder_code.code_type, subject is not None, len(certs))
    warnings = []
    if holder_code.check_char_warning:
        if subject is None and not all_certs:
            raise uscc_check_error(holder_code.code)
        warnings.append(holder_code.check_char_warning + "（登记机关原始数据如此，已标记待核）")
    if subject is None and not all_certs:
        raise SubjectNotFound(f"证照库中没有该主体（{mask_identifier(holder_code.code)}）的记录。"
                              f"No subject or certificate on file for this code in snapshot "
                              f"{snap.snapshot_id}.")
    if subject is not None:
        holder = Holder(code=holder_code.code, code_type=subject["code_type"] or holder_code.code_type,
                        name=subject["name"], kind=subject["kind"], source_id=subject["source_id"],
                        in_subject_register=True)
    else:  # known only from certificates: use what the first one says
        holder = Holder(code=holder_code.code,
                        code_type=all_certs[0]["holder_code_type"] or holder_code.code_type,
                        name=all_certs[0]["holder_name"], in_subject_register=False)
    out = [Certificate(
        licence_type=CodeName(code=c["licence_type_code"], name=c["licence_type_name"]),
        cert_number=c["cert_number"], holder_name=c["holder_name"],
        issuer=CodeName(code=c["issuer_code"], name=c["issuer_name"]),
        issue_date=c["issue_date"], valid_from=c["valid_from"], valid_until=c["valid_until"],
        status=Status(code=c["status"], name=STATUS_NAMES.get(c["status"], "未知")),
        licence_id=c["licence_id"], licence_version=c["licence_version"],
        flags=list(c["flags"] or [])) for c in certs]
    return SubjectCertificates(snapshot_id=snap.snapshot_id, holder=holder, certificates=out,
                               warnings=warnings)
