"""Signed licences and their verification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class UseCopy(BaseModel):
    token: str = Field(description=(
        "compact JWS (typ vnd.onewindow.use-copy+jws, or +mtp when sealed with others) naming the "
        "licence by SHA-256 digest; present and verify it as `<use_copy.token>~<token>`"))
    expires_at: str
    stamp: str = Field(description="the 加注 text: purpose and expiry")


class Licence(BaseModel):
    licence_id: str
    base_id: str | None
    version: int | None
    cert_key: str
    licence_type_code: str | None
    holder_code: str | None
    issuer_code: str | None
    issued_at: str | None
    supersedes: str | None
    superseded: bool = Field(description="a newer version of this licence exists")
    status: str | None = Field(description="current status of the certificate behind it")
    token: str = Field(description="compact JWS (typ vnd.onewindow.licence+jws)")
    payload: dict[str, Any] = Field(description="the JWS payload, decoded for convenience — not verified")
    use_copy: UseCopy | None = Field(default=None, description="加注件: the read stamped with purpose and expiry")


class VerifyRequest(BaseModel):
    token: str = Field(min_length=1, max_length=65536,
                       description="compact JWS of a licence or a batch-issued licence, or a use-copy (加注件) "
                                   "presented with its licence: `<use_copy.token>~<token>`")


class VerifyResponse(BaseModel):
    outcome: str = Field(description="valid · tampered · unknown_issuer · revoked · suspended · "
                                     "expired · not_yet_valid · status_unavailable · use_copy_expired …")
    valid: bool
    reason_zh: str
    detail: str | None = Field(description="finer machine code, e.g. bad_signature, revoked")
    warnings: list[str] = []
    licence_id: str | None
    issuer: str | None = Field(description="credit code of the signing department")
    issuer_name: str | None
    payload: dict[str, Any] | None
    use_copy: dict[str, Any] | None = Field(
        default=None, description="for a use-copy (加注件): purpose, requester, issued_at, expires_at, stamp")
    checked_at: str
