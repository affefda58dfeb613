"""Materials of the material library (材料库)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class MaterialOut(BaseModel):
    material_id: str
    material_type: str
    digest: str = Field(description="sha256 of the file (content address)")
    size: int
    media_type: str
    holder_code_masked: str
    filename: str | None
    case_number: str | None
    submitted_by: str
    submitted_at: str
    verified_by: str | None
    verified_at: str | None
    reuse_until: str | None = Field(description="last day it may be reused (None: not verified)")


class SubmitOut(BaseModel):
    material: MaterialOut
    stored_new_file: bool = Field(description="False when the same file was in the library already")


class MaterialList(BaseModel):
    holder_code_masked: str
    materials: list[MaterialOut]


class VerifyMaterialIn(BaseModel):
    verified_by: str = Field(min_length=1, max_length=64, description="clerk id of the verifier")
    reuse_until: dt.date | None = Field(default=None, description="default: today + the type's reuse period")
