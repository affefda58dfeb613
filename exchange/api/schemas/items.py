"""Service items (事项) and their material lists (GB/T 39554)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Agency(BaseModel):
    key: str
    name: str
    code: str


class LicenceTypeRef(BaseModel):
    key: str
    code: str
    name: str
    issuer: str


class MaterialOut(BaseModel):
    key: str
    name: str
    necessity: str = Field(description="必要 / 非必要 / 容缺后补")
    condition: str | None
    form: str
    original_or_copy: str
    copies: int
    source_channel: str = Field(description="申请人自备 / 政府部门核发 / 调取电子证照库")
    legal_basis: str
    acceptance_standard: str
    holder: str = Field(description="whose licence counts: applicant or agent (经办人)")
    satisfied_by: str | None = Field(description="licence types that exempt it, AND/OR in Chinese")
    satisfied_by_expr: str | None = Field(description="machine form, e.g. any(id_card,hukou)")
    licence_types: list[LicenceTypeRef]


class ItemSummary(BaseModel):
    code: str = Field(description="基本编码")
    impl_code: str = Field(description="实施编码 (starts with the agency's credit code)")
    name: str
    agency: Agency
    material_count: int


class ItemDetail(ItemSummary):
    applicant_type: str
    description: str
    materials: list[MaterialOut]


class ItemList(BaseModel):
    total: int
    items: list[ItemSummary]
