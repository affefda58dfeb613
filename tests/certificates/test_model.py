"""GB/T 36903 payloads from library rows; issuing versions."""

from __future__ import annotations

import datetime as dt

import pytest

from certificates import issue_licence, serial_for
from certificates.exceptions import LicenceDataError
from certificates.identifiers import check_identifier, parse_identifier
from certificates.model import CHINESE_NAMES, FORMAT, build_payload
from tests.certificates.factories import T0, make_cert_row


def _leaf_keys(payload, prefix=""):
    for key, value in payload.items():
        if isinstance(value, dict) and key != "extension":
            yield from _leaf_keys(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def test_payload_fields_and_chinese_mapping():
    row = make_cert_row()
    payload = build_payload(row, at=T0)
    assert set(_leaf_keys(payload)) == set(CHINESE_NAMES)
    assert payload["format"] == FORMAT
    assert payload["number"] == row["cert_number"] and payload["type_code"] == row["licence_type_code"]
    assert payload["definer"] == {"name": "国家市场监督管理总局", "code": "11100000000013418G"}
    assert payload["holder"] == {"name": row["holder_name"], "code": row["holder_code"], "code_type": "001"}
    assert payload["division_code"] == "330100"
    assert payload["extension"]["business_scope"] == "热食类食品制售"
    assert payload["issued_at"] == "2026-11-01T09:00:00+08:00"
    assert check_identifier(payload["licence_id"]).status == "valid"


def test_long_term_is_null():
    assert build_payload(make_cert_row(valid_until=""), at=T0)["valid_until"] is None


def test_dates_as_date_objects():
    payload = build_payload(make_cert_row(issue_date=dt.date(2026, 3, 1),
                                          valid_from=dt.date(2026, 3, 1),
                                          valid_until=dt.date(2031, 2, 28)), at=T0)
    assert (payload["valid_from"], payload["valid_until"]) == ("2026-03-01", "2031-02-28")


def test_serial_is_deterministic_and_alphanumeric():
    row = make_cert_row()
    serial = serial_for(row["cert_key"], "2026-03-01")
    assert serial == serial_for(row["cert_key"], dt.date(2026, 3, 1))
    assert serial.startswith("2026") and serial.isdigit() and len(serial) == 20
    assert serial != serial_for(row["cert_key"] + "x", "2026-03-01")
    assert parse_identifier(build_payload(row, at=T0)["licence_id"]).serial == serial


@pytest.mark.parametrize(("field", "value"), [
    ("issue_date", "2023-02-30"), ("issue_date", ""), ("holder_name", " "),
    ("valid_until", "2020-01-01"), ("status", "06"), ("extension", "[1, 2]"),
    ("licence_type_code", "NOT-A-TYPE-CODE"),
])
def test_bad_rows_raise_with_the_field(field, value):
    with pytest.raises(LicenceDataError) as info:
        build_payload(make_cert_row(**{field: value}), at=T0)
    assert info.value.cert_key == make_cert_row()["cert_key"]


def test_issue_new_version_supersedes(keyring):
    row = make_cert_row()
    first = issue_licence(row, keyring.issuer("scjg"), at=T0)
    second = issue_licence({**row, "holder_name": "杭州新味道餐饮管理有限公司"}, keyring.issuer("scjg"),
                           version=2, supersedes=first.licence_id, at=T0 + dt.timedelta(days=3))
    assert (first.version, second.version) == (1, 2)
    assert first.base_id == second.base_id and second.supersedes == first.licence_id
    assert parse_identifier(second.licence_id).version == 2


def test_issue_refuses_wrong_department_key(keyring):
    with pytest.raises(LicenceDataError, match="issuer_code"):
        issue_licence(make_cert_row(), keyring.issuer("gongan"), at=T0)


def test_renewal_in_another_year_keeps_the_identifier(keyring):
    row = make_cert_row()
    first = issue_licence(row, keyring.issuer("scjg"), at=T0)
    renewed = {**row, "issue_date": "2031-02-01", "valid_from": "2031-03-01", "valid_until": "2036-02-28"}
    second = issue_licence(renewed, keyring.issuer("scjg"), version=2, supersedes=first.licence_id,
                           at=T0 + dt.timedelta(days=1500))
    assert second.base_id == first.base_id


def test_issue_refuses_supersedes_of_another_licence_type(keyring):
    hukou = make_cert_row(licence_type_code="11100000000013338W002", licence_type_name="居民户口簿",
                          issuer_name="杭州市公安局", issuer_code="11330100002496126K",
                          holder_code_type="111", holder_code="11010519491231002X")
    other = issue_licence(hukou, keyring.issuer("gongan"), at=T0)
    with pytest.raises(LicenceDataError, match="supersedes"):
        issue_licence(make_cert_row(), keyring.issuer("scjg"), version=2,
                      supersedes=other.licence_id, at=T0)


def test_issue_refuses_supersedes_without_a_higher_version(keyring):
    first = issue_licence(make_cert_row(), keyring.issuer("scjg"), at=T0)
    with pytest.raises(LicenceDataError, match="supersedes"):
        issue_licence(make_cert_row(), keyring.issuer("scjg"), version=1,
                      supersedes=first.licence_id, at=T0)
