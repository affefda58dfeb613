"""State of the usage log's sealing (no personal data)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SealFailureOut(BaseModel):
    day: str
    attempted_at: str
    error: str


class UsageLogStatus(BaseModel):
    records: int = Field(description="records in the chain")
    last_sealed_day: str | None
    last_seal_digest: str | None = Field(description="sha256 of the last seal (the next export's name carries it)")
    unsealed_days: list[str] = Field(description="days with records not sealed yet (today included)")
    failed_attempts: list[SealFailureOut] = Field(description="failed seals of days still unsealed; retried")
