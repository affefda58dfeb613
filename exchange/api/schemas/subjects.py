"""Subject (持证主体) and certificate list."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CodeName(BaseModel):
    code: str
    name: str


class Status(BaseModel):
    code: str = Field(description="GB/T 36903 practice code: 01 valid, 02 suspended, 03 revoked, "
                                  "04 cancelled, 05 expired, 07 withdrawn")
    name: str


class Holder(BaseModel):
    code: str
    code_type: str = Field(description="111 citizen ID, 001 credit code")
    name: str | None
    kind: str | None = None
    source_id: str | None = None
    in_subject_register: bool


class Certificate(BaseModel):
    licence_type: CodeName
    cert_number: str
    holder_name: str | None
    issuer: CodeName
    issue_date: str | None
    valid_from: str | None
    valid_until: str | None = Field(description="None = 长期 (no end)")
    status: Status
    licence_id: str | None = Field(description="GB/T 36904 identifier of the newest signed licence")
    licence_version: int | None
    flags: list[str]


class SubjectCertificates(BaseModel):
    snapshot_id: str
    holder: Holder
    certificates: list[Certificate]
    warnings: list[str] = []
