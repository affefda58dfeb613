"""Health response."""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    status: str  # "ok"
    snapshot_id: str
    built_at: str
    snapshot_file: str
    counts: dict[str, int]
