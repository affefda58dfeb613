"""Once-only (一次提交) check request and answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ApplicantIn(BaseModel):
    code: str = Field(description="citizen ID number (111) or credit code (001)")
    code_type: Literal["111", "001"]
    agent_code: str | None = Field(default=None, description="经办人 citizen ID number, if any")


class OnceOnlyRequest(BaseModel):
    applicant: ApplicantIn
    items: list[str] = Field(min_length=1, max_length=50, description="基本编码 or 实施编码")


class OnFileOut(BaseModel):
    kind: Literal["licence", "material"] = "licence"
    licence_id: str | None = Field(description="the licence (None for a material from the material library)")
    material_id: str | None = None
    digest: str | None = Field(default=None, description="sha256 of a material's file")
    verified_by: str | None = None
    withheld: bool = Field(default=False, description="on file, but the caller's department holds no grant "
                                                      "for this type: licence id and number withheld")
    licence_type: str
    licence_type_code: str
    cert_number: str
    issuing_department: str
    issuer_code: str
    valid_until: str | None = Field(description="None = 长期")
    status: str
    flags: list[str]


class RejectedOut(BaseModel):
    licence_id: str | None
    licence_type: str
    cert_number: str
    status: str
    valid_from: str | None
    valid_until: str | None
    reason_code: str
    reason_zh: str


class ServedOut(BaseModel):
    item_code: str
    item_name: str
    material_key: str
    material_name: str
    necessity: str
    condition: str | None


class RequirementOut(BaseModel):
    status: Literal["on_file", "must_submit"]
    title: str
    holder_role: str
    holder_code_masked: str | None
    satisfied_by: str | None
    licence_types: list[str]
    necessity: str
    source_channel: str
    on_file: list[OnFileOut] = Field(description="licences that meet it (for AND, the part on file)")
    missing: list[str] = Field(description="licence types still to be presented")
    not_counted: list[RejectedOut] = Field(description="licences on file that do not count now, and why")
    serves: list[ServedOut]
    note: str | None


class ObservationOut(BaseModel):
    department: str
    source: str
    value: str
    record: str = Field(description="主体登记信息, or the licence type the value comes from")
    licence_id: str | None


class FindingOut(BaseModel):
    holder_code_masked: str
    field: str
    values: list[ObservationOut]
    message_zh: str


class ItemRef(BaseModel):
    code: str
    impl_code: str
    name: str


class OnceOnlyResponse(BaseModel):
    snapshot_id: str
    at: str
    items: list[ItemRef]
    on_file_count: int
    must_submit_count: int
    requirements: list[RequirementOut]
    findings: list[FindingOut] = Field(description="比对 discrepancies across departments")
    notes: list[str]
