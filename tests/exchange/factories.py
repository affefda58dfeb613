"""Factories for service tests: library rows and a snapshot DuckDB file as the pipeline publishes it.

The DDL follows docs/architecture.md ("Library schema … also the snapshot schema the
service reads") so the service is tested against the contract, not against whatever
the warehouse happens to write today.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from certificates.registry import load_registry
from quality.standards import make_ric, make_uscc
from warehouse.datadir import Layout

SNAPSHOT_DDL = """
CREATE TABLE subjects (
    subject_code VARCHAR PRIMARY KEY, code_type VARCHAR NOT NULL, name VARCHAR, kind VARCHAR NOT NULL,
    sex VARCHAR, birth_date DATE, address VARCHAR, division_code VARCHAR, legal_rep_code VARCHAR,
    source_id VARCHAR NOT NULL, updated_at TIMESTAMP);
CREATE TABLE certificates (
    cert_key VARCHAR PRIMARY KEY, licence_type_code VARCHAR NOT NULL, licence_type_name VARCHAR NOT NULL,
    cert_number VARCHAR NOT NULL, holder_code VARCHAR NOT NULL, holder_code_type VARCHAR NOT NULL,
    holder_name VARCHAR, issuer_name VARCHAR NOT NULL, issuer_code VARCHAR NOT NULL, issue_date DATE,
    valid_from DATE, valid_until DATE, status VARCHAR NOT NULL, extension JSON, flags VARCHAR[],
    source_id VARCHAR NOT NULL, row_hash VARCHAR NOT NULL, version INTEGER NOT NULL,
    changed_interval VARCHAR NOT NULL);
CREATE TABLE certificate_history AS SELECT *, NULL::VARCHAR AS superseded_interval FROM certificates;
CREATE TABLE licences (
    licence_id VARCHAR PRIMARY KEY, base_id VARCHAR NOT NULL, cert_key VARCHAR NOT NULL,
    version INTEGER NOT NULL, token VARCHAR NOT NULL, issued_at TIMESTAMP NOT NULL, supersedes VARCHAR,
    issuer_code VARCHAR NOT NULL, licence_type_code VARCHAR NOT NULL, holder_code VARCHAR NOT NULL);
CREATE TABLE quarantine (source_id VARCHAR, interval VARCHAR, record_key VARCHAR, reasons JSON, "row" JSON);
CREATE TABLE quality_runs (run_id VARCHAR, source_id VARCHAR, dataset VARCHAR, interval VARCHAR,
    rows BIGINT, passed BIGINT, quarantined BIGINT, flagged BIGINT, per_rule JSON, gx_success BOOLEAN,
    finished_at TIMESTAMP);
CREATE TABLE watermarks (source_id VARCHAR PRIMARY KEY, cursor VARCHAR, updated_interval VARCHAR);
CREATE TABLE snapshot_meta (snapshot_id VARCHAR, built_at TIMESTAMP, library_hash VARCHAR);
"""

SUBJECT_COLUMNS = ("subject_code", "code_type", "name", "kind", "sex", "birth_date", "address",
                   "division_code", "legal_rep_code", "source_id", "updated_at")
CERT_COLUMNS = ("cert_key", "licence_type_code", "licence_type_name", "cert_number", "holder_code",
                "holder_code_type", "holder_name", "issuer_name", "issuer_code", "issue_date",
                "valid_from", "valid_until", "status", "extension", "flags", "source_id", "row_hash",
                "version", "changed_interval")
LICENCE_COLUMNS = ("licence_id", "base_id", "cert_key", "version", "token", "issued_at", "supersedes",
                   "issuer_code", "licence_type_code", "holder_code")

SOURCE_BY_TYPE = {"id_card": "gongan_population", "hukou": "gongan_population",
                  "business_licence": "scjg_enterprises", "food_licence": "scjg_food_licences",
                  "marriage": "minzheng_marriages", "property": "zrzy_property"}
DAY0 = dt.datetime(2026, 11, 1, 12, 0, 0)  # BASE_DATE of the simulated days, noon CST

_seq = itertools.count(1)


def make_person(*, code: str | None = None, name: str = "张三", sex: str = "男",
                birth: dt.date = dt.date(1985, 6, 15), **overrides: Any) -> dict[str, Any]:
    """A ``subjects`` row of a person (公安 population register)."""
    n = next(_seq)
    code = code or make_ric("330106", birth, (2 * n + (1 if sex == "男" else 0)) % 1000)
    row = {"subject_code": code, "code_type": "111", "name": name, "kind": "person", "sex": sex,
           "birth_date": birth, "address": "浙江省杭州市西湖区文三路 90 号", "division_code": "330106",
           "legal_rep_code": None, "source_id": "gongan_population", "updated_at": DAY0}
    row.update(overrides)
    return row


def make_company(*, code: str | None = None, name: str = "杭州味道餐饮有限公司",
                 legal_rep_code: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A ``subjects`` row of an organisation (市场监管 enterprise register)."""
    n = next(_seq)
    code = code or make_uscc("9", "1", "330106", f"{n:08d}")
    row = {"subject_code": code, "code_type": "001", "name": name, "kind": "organisation", "sex": None,
           "birth_date": None, "address": "浙江省杭州市西湖区天目山路 1 号", "division_code": "330106",
           "legal_rep_code": legal_rep_code, "source_id": "scjg_enterprises", "updated_at": DAY0}
    row.update(overrides)
    return row


def make_certificate(type_key: str, holder: Mapping[str, Any], *, cert_number: str | None = None,
                     status: str = "01", issue_date: dt.date = dt.date(2020, 3, 1),
                     valid_from: dt.date | None = None, valid_until: dt.date | None = None,
                     holder_name: str | None = None, flags: Iterable[str] = (),
                     extension: Mapping[str, Any] | None = None, version: int = 1) -> dict[str, Any]:
    """A ``certificates`` row of licence type ``type_key`` (registry key) held by a subject row."""
    lt = load_registry().licence_type(type_key)
    number = cert_number or f"{type_key[:3].upper()}{next(_seq):08d}"
    holder_code = holder["subject_code"]
    row = {"cert_key": f"{lt.code}:{number}:{holder_code}", "licence_type_code": lt.code,
           "licence_type_name": lt.name, "cert_number": number, "holder_code": holder_code,
           "holder_code_type": holder["code_type"],
           "holder_name": holder_name if holder_name is not None else holder["name"],
           "issuer_name": lt.issuer.name, "issuer_code": lt.issuer.code, "issue_date": issue_date,
           "valid_from": valid_from or issue_date, "valid_until": valid_until, "status": status,
           "extension": json.dumps(dict(extension or {}), ensure_ascii=False), "flags": list(flags),
           "source_id": SOURCE_BY_TYPE.get(type_key, f"{lt.issuer.key}_demo"), "version": version,
           "changed_interval": "2026-11-01"}
    row["row_hash"] = hashlib.sha256(json.dumps(row, default=str, sort_keys=True).encode()).hexdigest()
    return row


def status_ref(cert: Mapping[str, Any]) -> tuple[str, int]:
    """A status list entry for a certificate: list ``<issuer>-0001``, index from its key."""
    from certificates.statuslist import LIST_SIZE

    digest = hashlib.sha256(str(cert["cert_key"]).encode("utf-8")).digest()
    return f"{cert['issuer_code']}-0001", int.from_bytes(digest[:4], "big") % LIST_SIZE


def publish_status_lists(layout: Layout, keyring: Any, certs: Iterable[Mapping[str, Any]], *,
                         at: dt.datetime) -> list[Path]:
    """Sign and publish under ``<data-dir>/status`` the lists of :func:`status_ref` entries
    holding each certificate's current status, as the pipeline does."""
    from certificates.statuslist import sign_status_list, write_list

    lists: dict[tuple[str, str], dict[int, str]] = {}
    for cert in certs:
        list_id, index = status_ref(cert)
        lists.setdefault((list_id, cert["issuer_code"]), {})[index] = cert["status"]
    paths = []
    for (list_id, issuer_code), statuses in lists.items():
        issuer = keyring.issuer(issuer_code)
        token = sign_status_list(list_id=list_id, issuer_code=issuer_code, kid=issuer.kid,
                                 private_key=issuer.private_key, statuses=statuses, at=at)
        paths.append(write_list(layout.root / "status", list_id, token))
    return paths


def make_licence(cert: Mapping[str, Any], keyring: Any, *, version: int = 1,
                 supersedes: str | None = None, at: dt.datetime = DAY0,
                 with_status: bool = False) -> dict[str, Any]:
    """A ``licences`` row with a real signed token (``certificates.issue_licence``); with
    ``with_status`` the payload names its :func:`status_ref` status list entry."""
    from certificates import issue_licence
    from certificates.identifiers import parse_identifier
    from certificates.model import IssuedLicence, build_payload
    from certificates.signing import sign_licence

    if with_status:
        payload = build_payload(cert, version=version, supersedes=supersedes, at=at,
                                credential_status=status_ref(cert))
        issued = IssuedLicence(payload["licence_id"], parse_identifier(payload["licence_id"]).base_id, version,
                               sign_licence(payload, keyring.issuer(cert["issuer_code"])), supersedes)
    else:
        issued = issue_licence(cert, keyring.issuer(cert["issuer_code"]), version=version,
                               supersedes=supersedes, at=at)
    return {"licence_id": issued.licence_id, "base_id": issued.base_id, "cert_key": cert["cert_key"],
            "version": issued.version, "token": issued.token, "issued_at": at,
            "supersedes": issued.supersedes, "issuer_code": cert["issuer_code"],
            "licence_type_code": cert["licence_type_code"], "holder_code": cert["holder_code"]}


def write_pointer(layout: Layout, name: str) -> None:
    """Replace ``snapshots/CURRENT`` atomically, as the pipeline does."""
    tmp = layout.snapshots / f".CURRENT.{uuid.uuid4().hex}"
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, layout.current_snapshot_pointer)


def make_snapshot(layout: Layout, *, subjects: Iterable[Mapping[str, Any]] = (),
                  certificates: Iterable[Mapping[str, Any]] = (),
                  licences: Iterable[Mapping[str, Any]] = (), snapshot_id: str | None = None,
                  built_at: dt.datetime = DAY0, point: bool = True) -> Path:
    """Write an immutable snapshot DuckDB file under ``layout.snapshots``; point CURRENT at it."""
    import duckdb
    import pyarrow as pa

    snapshot_id = snapshot_id or f"{built_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
    layout.snapshots.mkdir(parents=True, exist_ok=True)
    path = layout.snapshots / f"library-{snapshot_id}.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute(SNAPSHOT_DDL)
        for table, cols, rows in (("subjects", SUBJECT_COLUMNS, subjects),
                                  ("certificates", CERT_COLUMNS, certificates),
                                  ("licences", LICENCE_COLUMNS, licences)):
            data = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows])
            if data.num_rows:  # via Arrow: executemany is far too slow for benchmark-sized data
                con.register("_rows", data)
                con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _rows")
                con.unregister("_rows")
        con.execute("INSERT INTO snapshot_meta VALUES (?, ?, ?)",
                    [snapshot_id, built_at, hashlib.sha256(snapshot_id.encode()).hexdigest()])
    finally:
        con.close()
    if point:
        write_pointer(layout, path.name)
    return path


def fake_licence(cert: Mapping[str, Any], *, version: int = 1) -> dict[str, Any]:
    """A ``licences`` row with an unsigned placeholder token, for tests that never verify it."""
    base = f"1.2.156.3005.2.{cert['licence_type_code']}.{cert['issuer_code']}.{next(_seq):011d}"
    return {"licence_id": f"{base}.{version:03d}.T", "base_id": base, "cert_key": cert["cert_key"],
            "version": version, "token": "unsigned.placeholder.token", "issued_at": DAY0,
            "supersedes": None, "issuer_code": cert["issuer_code"],
            "licence_type_code": cert["licence_type_code"], "holder_code": cert["holder_code"]}


def make_client(store: Any, *, department: str = "11330100002496476R", department_name: str = "杭州市民政局",
                client_id: str | None = None, types: Iterable[str] | None = None,
                roles: Iterable[str] = ("counter",)) -> str:
    """A department API client in the service store with grants for ``types`` (registry keys; default all).

    Returns its API key.
    """
    reg = load_registry()
    at = dt.datetime(2026, 11, 1, 9, 0)
    store.add_department(department, department_name)
    client_id = client_id or f"client-{next(_seq)}"
    store.add_client(client_id, department, client_id, list(roles))
    for key in (reg.licence_types if types is None else types):
        store.grant(department, reg.licence_type(key).code, by="test", at=at)
    return store.issue_key(client_id, at=at)


def purpose_headers(api_key: str, *, case: str = "HZ-2026-000001", item: str = "000120003000",
                    clerk: str = "clerk-007", code: str | None = None) -> dict[str, str]:
    """Request headers of an authenticated read with a stated purpose (and a 用证码 when given)."""
    headers = {"X-API-Key": api_key, "X-Purpose-Item": item, "X-Case-Number": case, "X-Clerk-Id": clerk}
    if code:
        headers["X-Authorisation-Code"] = code
    return headers
