"""Service items (事项) and their material lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from exchange.api.deps import CatalogueDep
from exchange.api.exceptions import ItemNotFound
from exchange.api.schemas.common import error_responses
from exchange.api.schemas.items import (Agency, ItemDetail, ItemList, ItemSummary, LicenceTypeRef,
                                        MaterialOut)
from exchange.onceonly.catalogue import Catalogue, Item, expr_canonical, expr_keys, expr_text
from exchange.onceonly.exceptions import UnknownItemError

router = APIRouter(prefix="/api/v1/items", tags=["items"])


def _agency(item: Item) -> Agency:
    return Agency(key=item.agency.key, name=item.agency.name, code=item.agency.code)


def summary(item: Item) -> ItemSummary:
    return ItemSummary(code=item.code, impl_code=item.impl_code, name=item.name,
                       agency=_agency(item), material_count=len(item.materials))


def detail(item: Item, catalogue: Catalogue) -> ItemDetail:
    reg = catalogue.registry
    mats = []
    for m in item.materials:
        keys = expr_keys(m.satisfied_by) if m.satisfied_by else []
        mats.append(MaterialOut(
            key=m.key, name=m.name, necessity=m.necessity, condition=m.condition, form=m.form,
            original_or_copy=m.original_or_copy, copies=m.copies, source_channel=m.source_channel,
            legal_basis=m.legal_basis, acceptance_standard=m.acceptance_standard, holder=m.holder,
            satisfied_by=expr_text(m.satisfied_by, reg) if m.satisfied_by else None,
            satisfied_by_expr=expr_canonical(m.satisfied_by) if m.satisfied_by else None,
            licence_types=[LicenceTypeRef(key=k, code=reg.licence_type(k).code,
                                          name=reg.licence_type(k).name,
                                          issuer=reg.licence_type(k).issuer.name) for k in keys]))
    return ItemDetail(**summary(item).model_dump(), applicant_type=item.applicant_type,
                      description=item.description, materials=mats)


@router.get("", response_model=ItemList)
def list_items(
    catalogue: CatalogueDep,
    q: Annotated[str | None, Query(max_length=100, description="search name, code, material")] = None,
) -> ItemList:
    """Service items in the catalogue, optionally filtered by a search text."""
    found = catalogue.search(q)
    return ItemList(total=len(found), items=[summary(i) for i in found])


@router.get("/{code}", response_model=ItemDetail, responses=error_responses(404))
def get_item(
    catalogue: CatalogueDep,
    code: Annotated[str, Path(description="基本编码 or 实施编码")],
) -> ItemDetail:
    """One service item with its GB/T 39554 material list."""
    try:
        item = catalogue.get(code)
    except UnknownItemError as exc:
        raise ItemNotFound(f"没有编码为 {code} 的政务服务事项。{exc}") from exc
    return detail(item, catalogue)
