"""Usage log (用证记录) sealing status: what is sealed, what is pending, which seals failed."""

from __future__ import annotations

from fastapi import APIRouter, Request

from exchange.api.schemas.usagelog import SealFailureOut, UsageLogStatus

router = APIRouter(prefix="/api/v1/usage-log", tags=["audit"])


@router.get("/status", response_model=UsageLogStatus)
def usage_log_status(request: Request) -> UsageLogStatus:
    """Sealing status of the usage log (counts and days only; no personal data)."""
    store = request.app.state.service_store
    seals = store.seals()
    sealed = {s.day for s in seals}
    records = store.log_records(first_seq=seals[-1].last_seq + 1) if seals else store.log_records()
    last_seq = records[-1].seq if records else (seals[-1].last_seq if seals else 0)
    return UsageLogStatus(
        records=last_seq, last_sealed_day=seals[-1].day if seals else None,
        last_seal_digest=seals[-1].digest if seals else None,
        unsealed_days=[d for d in store.log_days() if d not in sealed],
        failed_attempts=[SealFailureOut(day=d, attempted_at=a, error=e) for d, a, e in store.seal_failures()])
