"""Trust material status: signing certificates that expire soon (证书到期提醒)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ExpiringCertificate(BaseModel):
    kind: Literal["licence_issuer", "hub_service"] = Field(
        description="licence_issuer: a department's licence signing certificate; hub_service: the hub "
                    "service certificate (use-copies 加注件, usage-log seals)")
    kid: str = Field(description="the key's kid in /.well-known/jwks.json")
    code: str = Field(description="department credit code, or `hub-service`")
    name: str = Field(description="department (or hub) name")
    subject: str = Field(description="certificate common name")
    not_after: str = Field(description="end of validity (ISO 8601, the earlier of the certificate's and the root's)")
    days_left: int = Field(description="whole days from checked_at to not_after (negative once expired)")
    expired: bool
    message_zh: str = Field(description="the warning in words for the auditor (Chinese)")


class TrustExpiryResponse(BaseModel):
    checked_at: str
    warn_days: int = Field(description="window of the warning: ONEWINDOW_CERT_WARN_DAYS (default 60)")
    certificates: list[ExpiringCertificate] = Field(
        description="current signing certificates expired or expiring within warn_days, soonest first; "
                    "empty when none is due")
