"""Shapes shared by every resource: the error envelope."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine code, e.g. `no_snapshot`, `licence_not_found`")
    message: str = Field(description="what went wrong and what to do (Chinese and English)")
    detail: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entry documenting the error envelope for the given status codes."""
    return {c: {"model": ErrorResponse} for c in codes}
