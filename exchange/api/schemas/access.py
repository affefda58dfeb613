"""Accepted applications (受理办件): the basis on which a case may read a holder's certificates."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ApplicationIn(BaseModel):
    case_number: str = Field(min_length=1, max_length=64, description="办件编号")
    item_code: str = Field(min_length=1, max_length=64, description="service item code (基本编码 or 实施编码)")
    holder_code: str = Field(min_length=1, max_length=32, description="citizen ID number or credit code")
    holder_code_type: Literal["111", "001"] | None = None
    clerk_id: str = Field(min_length=1, max_length=64, description="受理人 clerk id")


class ApplicationOut(BaseModel):
    case_number: str
    item_code: str
    holder_code_masked: str
    clerk_id: str
    client_id: str
    accepted_at: str = Field(description="naive ISO timestamp, China Standard Time")
    basis: Literal["counter", "code"]
