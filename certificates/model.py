"""GB/T 36903 licence payloads built from library ``certificates`` rows.

The payload uses stable English JSON keys; :data:`CHINESE_NAMES` maps each to its
GB/T 36903 element name (dotted paths for nested members)::

    format                      载荷格式 (hub addition: "onewindow.licence/1")
    licence_id                  证照标识 (GB/T 36904)
    name                        证照名称
    type_code                   证照类型代码
    number                      证照编号 (printed on the licence; not the identifier)
    version                     版本号 (integer, 1..999)
    issuer.name / issuer.code   颁发机构 / 颁发机构代码
    issue_date                  颁发日期 (YYYY-MM-DD)
    definer.name / definer.code 定义机构 / 定义机构代码
    holder.name / .code / .code_type   持证主体 / 持证主体代码 / 持证主体代码类型
    valid_from / valid_until    有效期起始 / 有效期截止 (null = 长期)
    division_code               所属管辖属地编码 (GB/T 2260; from the issuer's credit code)
    extension                   证照扩展信息 (licence-specific fields)
    status                      证照状态 (01 valid … 07 withdrawn)
    supersedes                  被替代证照标识 (previous version, or null)
    issued_at                   签发时间 (ISO 8601 with offset)
    credential_status           证照状态列表条目 (hub addition, optional: {list, index, purpose})
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from certificates._time import CST, aware
from certificates.exceptions import IdentifierError, LicenceDataError
from certificates.identifiers import make_identifier, parse_identifier
from certificates.pki import IssuerKey
from certificates.registry import load_registry
from certificates.signing import sign_licence

FORMAT = "onewindow.licence/1"
STATUS_CODES = {"01": "有效", "02": "暂扣", "03": "撤销", "04": "注销", "05": "失效", "07": "吊销"}

CHINESE_NAMES: dict[str, str] = {
    "format": "载荷格式",
    "licence_id": "证照标识",
    "name": "证照名称",
    "type_code": "证照类型代码",
    "number": "证照编号",
    "version": "版本号",
    "issuer.name": "颁发机构",
    "issuer.code": "颁发机构代码",
    "issue_date": "颁发日期",
    "definer.name": "定义机构",
    "definer.code": "定义机构代码",
    "holder.name": "持证主体",
    "holder.code": "持证主体代码",
    "holder.code_type": "持证主体代码类型",
    "valid_from": "有效期起始",
    "valid_until": "有效期截止",
    "division_code": "所属管辖属地编码",
    "extension": "证照扩展信息",
    "status": "证照状态",
    "supersedes": "被替代证照标识",
    "issued_at": "签发时间",
}

_SERIAL_DIGITS = 16


def _date(row: Mapping[str, Any], field: str, *, optional: bool = False) -> dt.date | None:
    value = row.get(field)
    if value is None or value == "":
        if optional:
            return None
        raise LicenceDataError(row.get("cert_key"), field, "required date is empty")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise LicenceDataError(row.get("cert_key"), field, f"not a date: {value!r}") from None


def serial_for(cert_key: str, issue_date: dt.date | str) -> str:
    """Deterministic GB/T 36904 serial: issue year + 16 digits derived from ``cert_key``.

    Used for a licence's first version; later versions keep the serial of the
    identifier they supersede.

    The 16 digits are SHA-256(cert_key) reduced mod 10^16, so the same certificate
    always gets the same serial; two certificates of one type, issuer and year
    collide with probability ~n²/2·10⁻¹⁶ (5·10⁻⁵ for a million).
    """
    year = (issue_date if isinstance(issue_date, dt.date)
            else dt.date.fromisoformat(str(issue_date))).year
    n = int.from_bytes(hashlib.sha256(cert_key.encode("utf-8")).digest()[:8], "big")
    return f"{year:04d}{n % 10**_SERIAL_DIGITS:0{_SERIAL_DIGITS}d}"


def _required(row: Mapping[str, Any], field: str) -> str:
    value = row.get(field)
    if value is None or str(value).strip() == "":
        raise LicenceDataError(row.get("cert_key"), field, "required field is empty")
    return str(value).strip()


def _extension(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row.get("extension")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        raise LicenceDataError(row.get("cert_key"), "extension", "not a JSON object") from None
    if not isinstance(value, dict):
        raise LicenceDataError(row.get("cert_key"), "extension", "not a JSON object")
    return value


def build_payload(row: Mapping[str, Any], *, version: int = 1, supersedes: str | None = None,
                  at: dt.datetime, credential_status: tuple[str, int] | None = None) -> dict[str, Any]:
    """The GB/T 36903 payload of a library certificate row (see the module docstring).

    ``credential_status`` ``(list id, index)`` adds the licence's status list entry
    (:mod:`certificates.statuslist`) as ``credential_status``.
    """
    cert_key = _required(row, "cert_key")
    type_code = _required(row, "licence_type_code")
    issuer_code = _required(row, "issuer_code")
    issue_date = _date(row, "issue_date")
    valid_from = _date(row, "valid_from", optional=True) or issue_date
    valid_until = _date(row, "valid_until", optional=True)
    if valid_until is not None and valid_from is not None and valid_until < valid_from:
        raise LicenceDataError(cert_key, "valid_until", "ends before it starts")
    status = str(row.get("status") or "01")
    if status not in STATUS_CODES:
        raise LicenceDataError(cert_key, "status", f"unknown status code {status!r}")
    try:
        licence_type = load_registry().by_code(type_code)
        definer = {"name": licence_type.definer_name, "code": licence_type.definer_code}
    except KeyError:
        definer = {"name": None, "code": type_code[:18]}
    assert issue_date is not None
    serial = serial_for(cert_key, issue_date)
    if supersedes is not None:
        # A new version keeps the identifier (GB/T 36904): reuse the previous serial,
        # even when a renewal moved the issue date into another year.
        try:
            previous = parse_identifier(supersedes)
        except IdentifierError as exc:
            raise LicenceDataError(cert_key, "supersedes", exc.reason) from exc
        if (previous.type_code, previous.issuer_code) != (type_code, issuer_code) \
                or previous.version >= version:
            raise LicenceDataError(cert_key, "supersedes",
                                   f"{supersedes} is not an earlier version of this licence "
                                   f"(type {type_code}, issuer {issuer_code}, version {version})")
        serial = previous.serial
    try:
        licence_id = make_identifier(type_code, issuer_code, serial, version)
    except IdentifierError as exc:
        raise LicenceDataError(cert_key, "licence_type_code/issuer_code", exc.reason) from exc
    payload: dict[str, Any] = {} if credential_status is None else {
        "credential_status": {"list": credential_status[0], "index": credential_status[1],
                              "purpose": "message"}}
    return payload | {
        "format": FORMAT,
        "licence_id": licence_id,
        "name": _required(row, "licence_type_name"),
        "type_code": type_code,
        "number": _required(row, "cert_number"),
        "version": version,
        "issuer": {"name": _required(row, "issuer_name"), "code": issuer_code},
        "issue_date": issue_date.isoformat(),
        "definer": definer,
        "holder": {"name": _required(row, "holder_name"), "code": _required(row, "holder_code"),
                   "code_type": _required(row, "holder_code_type")},
        "valid_from": valid_from.isoformat() if valid_from else None,
        "valid_until": valid_until.isoformat() if valid_until else None,
        "division_code": issuer_code[2:8],
        "extension": _extension(row),
        "status": status,
        "supersedes": supersedes,
        "issued_at": aware(at).astimezone(CST).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class IssuedLicence:
    licence_id: str
    base_id: str
    version: int
    token: str
    supersedes: str | None


def issue_licence(row: Mapping[str, Any], issuer: IssuerKey, *, version: int = 1,
                  supersedes: str | None = None, at: dt.datetime) -> IssuedLicence:
    """Build the payload of ``row`` and sign it with the department's key.

    ``supersedes`` is the identifier of the previous version: the new one keeps its
    base (type, issuer, serial) and must have a higher version.
    """
    if str(row.get("issuer_code")) != issuer.code:
        raise LicenceDataError(row.get("cert_key"), "issuer_code",
                               f"row names issuer {row.get('issuer_code')!r} but the key is "
                               f"{issuer.department.name} ({issuer.code})")
    payload = build_payload(row, version=version, supersedes=supersedes, at=at)
    ident = parse_identifier(payload["licence_id"])
    return IssuedLicence(payload["licence_id"], ident.base_id, version,
                         sign_licence(payload, issuer), supersedes)
