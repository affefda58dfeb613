"""Health response."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str  # "ok"
    snapshot_id: str
    built_at: str
    snapshot_file: str
    counts: dict[str, int]
    worker: int = Field(description="process id of the service worker that answered")
