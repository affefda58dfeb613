"""Factories for raw batch rows: valid by default, override any field to break one."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from quality import DATASETS, standards

_seq = itertools.count(1)
DIVISIONS = standards.county_division_codes()


def make_ric(n: int | None = None, birth: dt.date = dt.date(1985, 6, 15)) -> str:
    i = next(_seq) if n is None else n
    return standards.make_ric(DIVISIONS[i % len(DIVISIONS)], birth, i % 1000)


def make_uscc(n: int | None = None) -> str:
    i = next(_seq) if n is None else n
    return standards.make_uscc("9", "1", DIVISIONS[i % len(DIVISIONS)], f"{i % 10**8:08d}")


def _meta(dataset: str, key: str) -> dict[str, str]:
    return {"_record_key": key, "_source_id": DATASETS[dataset].source_id,
            "_interval": "20261101T000000-20261102T000000"}


def make_person_row(**overrides: Any) -> dict[str, Any]:
    ric = overrides.get("id_number") or make_ric()
    row = {"id_number": ric, "name": "张伟", "sex": standards.ric_sex(ric) if len(ric) == 18 else "男",
           "birth_date": "1985-06-15", "ethnicity": "汉族", "division_code": ric[:6],
           "address": "北京市朝阳区建国路1号", "hukou_number": "H0001",
           "id_card_issue_date": "2015-03-01", "id_card_valid_until": "2035-03-01",
           "id_card_authority": "北京市公安局朝阳分局", "status": "01",
           "updated_at": "2026-11-01T08:00:00"}
    row.update(overrides)
    return {**row, **_meta("persons", str(row["id_number"]))}


def make_enterprise_row(**overrides: Any) -> dict[str, Any]:
    row = {"uscc": make_uscc(), "name": "北京某某科技有限公司", "entity_type": "企业",
           "legal_rep_id": make_ric(), "legal_rep_name": "李娜", "address": "北京市海淀区中关村大街1号",
           "division_code": "110108", "registered_capital": 100.0, "issue_date": "2019-05-20",
           "status": "01", "updated_at": "2026-11-01T08:00:00"}
    row.update(overrides)
    return {**row, **_meta("enterprises", str(row["uscc"]))}


def make_food_licence_row(**overrides: Any) -> dict[str, Any]:
    row = {"licence_no": f"JY1110108{next(_seq):07d}", "holder_uscc": make_uscc(),
           "holder_name": "北京某某餐饮有限公司", "business_scope": "热食类食品制售",
           "address": "北京市海淀区中关村大街2号", "issue_date": "2022-01-10",
           "valid_from": "2022-01-10", "valid_until": "2027-01-09", "status": "01",
           "updated_at": "2026-11-01T08:00:00"}
    row.update(overrides)
    return {**row, **_meta("food_licences", str(row["licence_no"]))}


def make_marriage_row(**overrides: Any) -> dict[str, Any]:
    row = {"cert_no": f"J110105-2020-{next(_seq):06d}", "spouse1_id": make_ric(),
           "spouse1_name": "王强", "spouse2_id": make_ric(), "spouse2_name": "刘芳",
           "registration_date": "2020-05-20", "office": "北京市朝阳区民政局婚姻登记处",
           "status": "01", "updated_at": "2026-11-01T08:00:00"}
    row.update(overrides)
    return {**row, **_meta("marriages", str(row["cert_no"]))}


def make_property_row(**overrides: Any) -> dict[str, Any]:
    row = {"cert_no": f"京(2021)朝阳区不动产权第{next(_seq):07d}号", "owner_code": make_ric(),
           "owner_code_type": "111", "owner_name": "陈静", "parcel_no": "110105001001GB00001",
           "address": "北京市朝阳区某小区1号楼101", "area_m2": 89.5, "land_use": "城镇住宅用地",
           "term_start": "2001-01-01", "term_end": "2071-01-01", "issue_date": "2021-06-01",
           "status": "01", "updated_at": "2026-11-01T08:00:00"}
    row.update(overrides)
    return {**row, **_meta("properties", str(row["cert_no"]))}


LICENCE_TYPE = "11100000000013338W011"  # STANDARDS.md example type code
ISSUER = "11430000006122244L"


def make_licence_row(**overrides: Any) -> dict[str, Any]:
    from certificates.identifiers import make_identifier

    holder = overrides.get("holder_code") or make_ric()
    version = int(overrides.get("version") or 1)
    row = {"licence_id": make_identifier(LICENCE_TYPE, ISSUER, f"2026{next(_seq):07d}", version),
           "cert_key": f"{LICENCE_TYPE}:C{next(_seq)}:{holder}", "licence_type_code": LICENCE_TYPE,
           "issuer_code": ISSUER, "holder_code": holder, "holder_code_type": "111", "version": str(version),
           "issued_at": "2026-11-02T01:00:00"}
    row.update(overrides)
    return {**row, **_meta("licences", str(row["licence_id"]))}


def make_licence_record_row(**overrides: Any) -> dict[str, Any]:
    """A generic licence record (back-office result / construction approval): 建设工程规划许可证."""
    row = {"licence_type_code": "11100000000013768N004", "cert_no": f"建字第330106{next(_seq):09d}号",
           "holder_code": make_uscc(), "holder_code_type": "001", "holder_name": "杭州某建设开发有限公司",
           "issue_date": "2025-06-01", "valid_from": "2025-06-01", "valid_until": "",
           "status": "01", "details": '{"project_name": "某研发中心项目"}', "reported_by": "gcjs-system",
           "updated_at": "2026-11-01T08:00:00"}
    row.update(overrides)
    return {**row, **_meta("licence_records", str(row["cert_no"]))}


MAKERS = {"persons": make_person_row, "enterprises": make_enterprise_row,
          "food_licences": make_food_licence_row, "marriages": make_marriage_row,
          "properties": make_property_row, "licences": make_licence_row,
          "licence_records": make_licence_record_row}


def write_batch(rows: list[dict[str, Any]], dataset: str, path: Path) -> Path:
    """Write rows as a raw Parquet batch with the contract's column types."""
    spec = DATASETS[dataset]
    fields = [pa.field(c, pa.float64() if c in spec.numeric else pa.string())
              for c in spec.raw_columns]
    schema = pa.schema(fields)
    table = pa.Table.from_pylist([{c: r.get(c) for c in spec.raw_columns} for r in rows],
                                 schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
