"""Factories for certificate rows and keyrings (no copied fixtures)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from certificates._time import CST
from certificates.registry import load_registry
from quality.standards import make_uscc

#: The moment keys are created in these tests (CST).
T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=CST)


def make_cert_row(**overrides: Any) -> dict[str, Any]:
    """A library ``certificates`` row (docs/architecture.md) for a 食品经营许可证."""
    lt = load_registry().licence_type("food_licence")
    holder = overrides.get("holder_code") or make_uscc("9", "1", "330106", "MA27XL0E")
    number = overrides.get("cert_number") or "JY13301060000001"
    row: dict[str, Any] = {
        "cert_key": f"{lt.code}:{number}:{holder}",
        "licence_type_code": lt.code,
        "licence_type_name": lt.name,
        "cert_number": number,
        "holder_code": holder,
        "holder_code_type": "001",
        "holder_name": "杭州味道餐饮管理有限公司",
        "issuer_name": lt.issuer.name,
        "issuer_code": lt.issuer.code,
        "issue_date": "2026-03-01",
        "valid_from": "2026-03-01",
        "valid_until": "2031-02-28",
        "status": "01",
        "extension": json.dumps({"business_scope": "热食类食品制售", "address": "杭州市西湖区文三路1号"},
                                ensure_ascii=False),
        "flags": [],
        "source_id": "scjg_food_licences",
        "row_hash": "0" * 64,
        "version": 1,
        "changed_interval": "2026-11-01",
    }
    row.update(overrides)
    return row


def make_layout(root: Path):
    from warehouse.datadir import Layout

    return Layout(root).ensure()
