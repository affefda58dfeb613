"""The material library (材料库): submit at the counter, verify, list a holder's materials."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from exchange.api.core.access import AccessControl, AccessDep, CredentialsDep, RequestCredentials
from exchange.api.core.identifiers import check_holder_code
from exchange.api.core.materials import MaterialsDep
from exchange.api.deps import NowDep
from exchange.api.exceptions import AccessDenied, ApiError, Unauthenticated
from exchange.api.schemas.common import error_responses
from exchange.api.schemas.materials import MaterialList, MaterialOut, SubmitOut, VerifyMaterialIn
from exchange.materials import MaterialError
from exchange.store.base import Client
from quality.standards import mask_identifier

router = APIRouter(prefix="/api/v1/materials", tags=["materials"])


class MaterialRefused(ApiError):
    def __init__(self, exc: MaterialError) -> None:
        self.status_code, self.code = exc.status, exc.code
        super().__init__(str(exc), detail=exc.detail or None)


def _out(rec: dict[str, Any]) -> MaterialOut:
    return MaterialOut(material_id=rec["material_id"], material_type=rec["material_type"], digest=rec["digest"],
                       size=rec["size"], media_type=rec["media_type"],
                       holder_code_masked=mask_identifier(rec["holder_code"]), filename=rec["filename"],
                       case_number=rec["case_number"], submitted_by=rec["submitted_by"],
                       submitted_at=rec["submitted_at"], verified_by=rec["verified_by"],
                       verified_at=rec["verified_at"], reuse_until=rec["reuse_until"])


def _counter(access: AccessControl, creds: RequestCredentials, *, action: str, holder: str | None,
             target: str | None, now: Any) -> Client:
    """The authenticated counter client, or a logged refusal."""
    client = access.authenticate(creds)
    kw = {"action": action, "creds": creds, "holder_code": holder, "licence_types": [], "target": target, "at": now}
    if client is None:
        access.record(client=None, decision="denied", rule="unauthenticated", **kw)
        raise Unauthenticated("缺少或无效的 X-API-Key。Authenticate with the X-API-Key header.")
    if "counter" not in client.roles:
        access.record(client=client, decision="denied", rule="not_counter", **kw)
        raise AccessDenied("not_counter", "只有综合受理窗口的客户端可以提交或核验材料。Only counter clients "
                                          "may submit or verify materials.")
    access.record(client=client, decision="granted", rule="counter", **kw)
    return client


@router.post("", response_model=SubmitOut, status_code=201, responses=error_responses(401, 403, 413, 415, 422))
async def submit_material(
    access: AccessDep, creds: CredentialsDep, materials: MaterialsDep, now: NowDep,
    file: Annotated[UploadFile, File(description="the material file (PDF, JPEG or PNG per type)")],
    material_type: Annotated[str, Form(max_length=64, description="material type key (materials.toml)")],
    holder_code: Annotated[str, Form(max_length=32, description="holder's ID number or credit code")],
    case_number: Annotated[str | None, Form(max_length=64)] = None,
) -> SubmitOut:
    """Submit a material at the counter; the same file is stored once (sha256)."""
    # The store calls (the usage-log record, the material row) and the file write run in the
    # thread pool: a synchronous store call on the event loop would wait for a log commit
    # that, on PostgreSQL, may need this very loop to finish the batch ahead of it.
    holder = check_holder_code(holder_code).code
    client = await run_in_threadpool(_counter, access, creds, action="submit_material", holder=holder,
                                     target=material_type, now=now)
    try:
        mt = materials.material_type(material_type)
        data = await file.read(mt.max_bytes + 1)
        rec, new = await run_in_threadpool(
            materials.submit, data, media_type=(file.content_type or "").split(";")[0].strip(),
            material_type=material_type, holder_code=holder, submitted_by=client.client_id, at=now,
            filename=file.filename, case_number=case_number)
    except MaterialError as exc:
        raise MaterialRefused(exc) from exc
    stored = await run_in_threadpool(materials.store.material, rec["material_id"])
    return SubmitOut(material=_out(stored), stored_new_file=new)


@router.post("/{material_id}/verify", response_model=MaterialOut, responses=error_responses(401, 403, 404, 422))
def verify_material(body: VerifyMaterialIn, access: AccessDep, creds: CredentialsDep, materials: MaterialsDep,
                    now: NowDep, material_id: Annotated[str, Path(max_length=64)]) -> MaterialOut:
    """Mark a material verified by a clerk, reusable until a date."""
    _counter(access, creds, action="verify_material", holder=None, target=material_id, now=now)
    try:
        materials.verify(material_id, verified_by=body.verified_by, at=now, reuse_until=body.reuse_until)
    except MaterialError as exc:
        raise MaterialRefused(exc) from exc
    return _out(materials.store.material(material_id))


@router.get("", response_model=MaterialList, responses=error_responses(400, 401, 403, 422))
def list_materials(access: AccessDep, creds: CredentialsDep, materials: MaterialsDep, now: NowDep,
                   holder_code: Annotated[str, Query(max_length=32)]) -> MaterialList:
    """A holder's materials in the library (purpose and holder authorisation required)."""
    holder = check_holder_code(holder_code).code
    access.authorise(creds, action="list_materials", holder_code=holder, licence_types=[], at=now,
                     require_all=False)
    return MaterialList(holder_code_masked=mask_identifier(holder),
                        materials=[_out(r) for r in materials.materials_of(holder)])
