"""check_batch on crafted batches: every reason code per dataset, outputs, GX agreement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import quality
from quality import standards
from certificates.identifiers import make_identifier
from tests.quality.factories import (
    DIVISIONS,
    ISSUER,
    LICENCE_TYPE,
    MAKERS,
    make_enterprise_row,
    make_food_licence_row,
    make_marriage_row,
    make_person_row,
    make_property_row,
    make_ric,
    make_uscc,
    write_batch,
)


def flip_last(code: str) -> str:
    return code[:-1] + ("1" if code[-1] != "1" else "2")


def bad_birth_ric() -> str:
    body = f"{DIVISIONS[0]}19870230123"
    return body + standards.ric_check_char(body)


def run(tmp_path: Path, dataset: str, rows: list[dict[str, Any]]) -> tuple[quality.CheckResult, dict, dict]:
    raw = write_batch(rows, dataset, tmp_path / "raw" / "data.parquet")
    result = quality.check_batch(raw, dataset, run_id="test-run", out_dir=tmp_path / "out")
    key = quality.DATASETS[dataset].key
    passed: dict[str, list] = {}
    for r in pq.read_table(result.passed_path).to_pylist():
        passed.setdefault(r[key], []).append(r)
    quarantined: dict[str, list] = {}
    for r in pq.read_table(result.quarantine_path).to_pylist():
        quarantined.setdefault(r[key], []).append(r)
    return result, passed, quarantined


def codes(rows: list[dict]) -> set[tuple[str, str]]:
    return {(x["code"], x["field"]) for r in rows for x in json.loads(r["_reasons"])}


def assert_gx_agrees(result: quality.CheckResult) -> None:
    report = json.loads(result.validation_path.read_text(encoding="utf-8"))
    assert report["gx"]["per_rule"] == result.per_rule_field
    assert report["gx"]["errors"] == []
    assert report["gx"]["success"] is result.gx_success
    by_rule: dict[str, int] = {}
    for e in report["gx"]["expectations"]:
        by_rule[e["rule_id"]] = by_rule.get(e["rule_id"], 0) + e["unexpected_count"]
    assert by_rule == result.per_rule_field


# (dataset, overrides, the (code, field) pairs expected, quarantined?)
CASES: list[tuple[str, dict[str, Any], set[tuple[str, str]], bool]] = [
    ("persons", {"id_number": "11010519491231002X", "birth_date": "1949-12-31", "id_card_valid_until": ""},
     set(), False),  # issued at 65: 长期
    ("persons", {"id_number": flip_last(make_ric())}, {("id_check_char", "id_number")}, True),
    ("persons", {"id_number": "12345"}, {("id_format", "id_number")}, True),
    ("persons", {"id_number": standards.make_ric("990000", __import__("datetime").date(1990, 1, 1), 7)},
     {("id_division", "id_number")}, True),
    ("persons", {"id_number": bad_birth_ric()}, {("id_birth_date", "id_number")}, True),
    ("persons", {"birth_date": "2023-02-30"}, {("impossible_date", "birth_date")}, True),
    ("persons", {"id_card_issue_date": "2015/03/01"}, {("impossible_date", "id_card_issue_date")}, True),
    # issued at 29: a 20-year card, so 长期 or any other term is flagged (kept)
    ("persons", {"id_card_valid_until": ""}, {("validity_term", "id_card_valid_until")}, False),
    ("persons", {"id_card_valid_until": None}, {("validity_term", "id_card_valid_until")}, False),
    ("persons", {"id_card_valid_until": "2025-03-01"}, {("validity_term", "id_card_valid_until")}, False),
    ("persons", {"birth_date": "2000-02-29", "id_card_issue_date": "2015-06-01",
                 "id_card_valid_until": "2020-06-01"}, set(), False),  # issued at 15: 5 years
    ("persons", {"birth_date": "2000-02-29", "id_card_issue_date": "2016-02-29",
                 "id_card_valid_until": "2026-02-28"}, set(), False),  # 16th birthday: 10 years, 29 Feb → 28 Feb
    ("persons", {"birth_date": "1970-01-01", "id_card_issue_date": "2016-01-01",
                 "id_card_valid_until": "2036-01-01"}, {("validity_term", "id_card_valid_until")}, False),
    ("persons", {"id_card_valid_until": "2010-01-01"},
     {("validity_end_before_start", "id_card_valid_until")}, True),
    ("persons", {"name": ""}, {("missing_required", "name")}, True),
    ("persons", {"name": "   "}, {("missing_required", "name")}, True),
    ("persons", {"status": None}, {("missing_required", "status")}, True),
    ("persons", {"name": "å¼ ä¼\x9f"}, {("mis_encoded_text", "name")}, True),
    ("persons", {"address": "北京市\ufffd\ufffd区"}, {("mis_encoded_text", "address")}, True),
    ("persons", {"name": "阿卜杜·热合曼"}, set(), False),  # middle dot is legitimate
    ("persons", {"id_number": flip_last(make_ric()), "birth_date": "2023-02-30", "name": "Ã¥"},
     {("id_check_char", "id_number"), ("impossible_date", "birth_date"),
      ("mis_encoded_text", "name")}, True),
    ("enterprises", {"uscc": "91110000600037341L"}, set(), False),
    ("enterprises", {"uscc": "11100000000013338W"}, set(), False),
    ("enterprises", {"uscc": "91110000600037341M"}, {("uscc_check_char", "uscc")}, False),
    ("enterprises", {"uscc": "9111000060003734IL"}, {("uscc_format", "uscc")}, True),
    ("enterprises", {"legal_rep_id": flip_last(make_ric())}, {("id_check_char", "legal_rep_id")}, True),
    ("enterprises", {"legal_rep_id": ""}, set(), False),
    ("enterprises", {"registered_capital": None}, set(), False),
    ("enterprises", {"issue_date": "2019-02-29"}, {("impossible_date", "issue_date")}, True),
    ("enterprises", {"legal_rep_name": None}, {("missing_required", "legal_rep_name")}, True),
    ("enterprises", {"uscc": flip_last(make_uscc()), "name": "\ufffd"},
     {("uscc_check_char", "uscc"), ("mis_encoded_text", "name")}, True),
    ("food_licences", {"valid_until": "2021-01-09"},
     {("validity_end_before_start", "valid_until")}, True),
    ("food_licences", {"valid_until": ""}, {("missing_required", "valid_until")}, True),
    ("food_licences", {"valid_until": "2027-01-10"}, {("validity_term", "valid_until")}, False),
    ("food_licences", {"valid_from": "2024-02-29", "valid_until": "2029-02-27"}, set(), False),
    ("food_licences", {"holder_uscc": flip_last(make_uscc())}, {("uscc_check_char", "holder_uscc")}, False),
    ("food_licences", {"holder_uscc": "123"}, {("uscc_format", "holder_uscc")}, True),
    ("food_licences", {"holder_name": "æ\x9d\x8e"}, {("mis_encoded_text", "holder_name")}, True),
    ("marriages", {"spouse2_id": flip_last(make_ric())}, {("id_check_char", "spouse2_id")}, True),
    ("marriages", {"registration_date": "2020-04-31"}, {("impossible_date", "registration_date")}, True),
    ("marriages", {"spouse1_name": "Ã\x8e"}, {("mis_encoded_text", "spouse1_name")}, True),
    ("marriages", {"spouse2_name": "王锟斤拷"}, {("mis_encoded_text", "spouse2_name")}, True),
    ("marriages", {"spouse1_id": None}, {("missing_required", "spouse1_id")}, True),
    ("properties", {"owner_code": flip_last(make_ric())}, {("id_check_char", "owner_code")}, True),
    ("properties", {"owner_code_type": "001", "owner_code": make_uscc()}, set(), False),
    ("properties", {"owner_code_type": "001", "owner_code": flip_last(make_uscc())},
     {("uscc_check_char", "owner_code")}, False),
    ("properties", {"owner_code_type": "001", "owner_code": "91110000600037341O"},
     {("uscc_format", "owner_code")}, True),
    ("properties", {"term_end": "1999-12-31"}, {("validity_end_before_start", "term_end")}, True),
    ("properties", {"term_start": "", "term_end": ""}, set(), False),
    ("properties", {"area_m2": None}, set(), False),
    ("properties", {"owner_code_type": "411", "owner_code": "E12345678"}, set(), False),  # passport
    ("properties", {"owner_code_type": "112"}, {("holder_code_type", "owner_code_type")}, True),
    # GB/T 36904 identifiers (STANDARDS.md examples), checked by certificates.check_identifier
    ("licences", {"licence_id": "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
                  "version": "1"}, set(), False),
    ("licences", {"licence_id": "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S",
                  "version": "2"}, set(), False),
    ("licences", {"licence_id": "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.T",
                  "version": "1"}, {("licence_id_variant", "licence_id")}, False),  # off-by-one variant: kept
    ("licences", {"licence_id": "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.7",
                  "version": "1"}, {("licence_id_check_char", "licence_id")}, True),
    ("licences", {"licence_id": "1.2.156.3005.2.11100000000013338W011"}, {("licence_id_format", "licence_id")},
     True),
    ("licences", {"licence_id": make_identifier(LICENCE_TYPE, ISSUER, "20230000404", 1), "version": "3"},
     {("licence_id_parts", "licence_id")}, True),  # a valid identifier, but of another version
    ("licences", {"holder_code": flip_last(make_ric())}, {("id_check_char", "holder_code")}, True),
    ("licences", {"holder_code_type": "001", "holder_code": flip_last(make_uscc())},
     {("uscc_check_char", "holder_code")}, False),
    ("licences", {"holder_code_type": "001", "holder_code": "9111000060003734IL"}, {("uscc_format", "holder_code")},
     True),
    ("licences", {"holder_code_type": "111", "holder_code": make_uscc()}, {("id_format", "holder_code")}, True),
    ("properties", {"issue_date": "2021-06-31"}, {("impossible_date", "issue_date")}, True),
    # generic licence records (back-office results, construction approvals): one column of mixed codes
    ("licence_records", {"licence_type_code": "11100000000013768N999"},
     {("unknown_licence_type", "licence_type_code")}, True),
    ("licence_records", {"holder_code_type": "111", "holder_code": make_ric()},
     {("holder_kind_mismatch", "holder_code_type")}, True),  # an enterprise licence held by a person
    ("licence_records", {"licence_type_code": "11100000000013848A001", "holder_code_type": "111",
                         "holder_code": flip_last(make_ric()), "holder_name": "陈静"},
     {("id_check_char", "holder_code")}, True),  # 社会保障卡 of a person with a wrong check character
    ("licence_records", {"licence_type_code": "11100000000013848A001", "holder_code_type": "111",
                         "holder_code": make_ric(), "holder_name": "陈静"}, set(), False),
    ("licence_records", {"holder_code": "91330106MA2AB2CD1X"}, {("uscc_check_char", "holder_code")}, False),
    ("licence_records", {"holder_code": "9133010"}, {("uscc_format", "holder_code")}, True),
    ("licence_records", {"valid_from": "2025-06-01", "valid_until": "2025-05-31"},
     {("validity_end_before_start", "valid_until")}, True),
    ("licence_records", {"issue_date": "2025-02-29"}, {("impossible_date", "issue_date")}, True),
    ("licence_records", {"details": "[1, 2]"}, {("invalid_json", "details")}, True),
    ("licence_records", {"details": "{not json"}, {("invalid_json", "details")}, True),
    ("licence_records", {"details": ""}, set(), False),
    ("licence_records", {"holder_name": ""}, {("missing_required", "holder_name")}, True),
]


@pytest.mark.parametrize("dataset", sorted(quality.DATASETS))
def test_crafted_batch(tmp_path: Path, dataset: str) -> None:
    cases = [c for c in CASES if c[0] == dataset]
    rows = [MAKERS[dataset](**overrides) for _, overrides, _, _ in cases]
    rows.append(MAKERS[dataset]())
    result, passed, quarantined = run(tmp_path, dataset, rows)
    key = quality.DATASETS[dataset].key
    for row, (_, overrides, expected, is_quarantined) in zip(rows, cases):
        k = row[key]
        if is_quarantined:
            assert k in quarantined and k not in passed, overrides
            assert codes(quarantined[k]) == expected, overrides
        else:
            assert k in passed and k not in quarantined, overrides
            assert {(c, f) for c, f in expected} == {
                (c, f) for c, f in expected if c in passed[k][0]["_flags"]}, overrides
            assert set(passed[k][0]["_flags"]) == {c for c, _ in expected}, overrides
    assert rows[-1][key] in passed  # the untouched valid row
    assert result.quarantined == sum(1 for c in cases if c[3])
    assert result.passed == len(rows) - result.quarantined
    assert result.flagged == sum(1 for c in cases if c[2] and not c[3])
    assert_gx_agrees(result)
    assert result.gx_success is False


def test_reasons_are_complete_records(tmp_path: Path) -> None:
    bad = make_person_row(id_number=flip_last(make_ric()), name="Ã¥")
    _, _, quarantined = run(tmp_path, "persons", [bad])
    (row,) = quarantined[bad["id_number"]]
    reasons = json.loads(row["_reasons"])
    assert {r["code"] for r in reasons} == {"id_check_char", "mis_encoded_text"}
    for r in reasons:
        assert set(r) == {"code", "field", "value", "severity", "message"}
        assert r["severity"] == "error" and r["value"] == bad[r["field"]] and r["message"]
    # raw and pipeline columns survive
    for col in quality.DATASETS["persons"].raw_columns:
        assert row[col] == bad[col]


def test_duplicate_key_quarantines_every_differing_row(tmp_path: Path) -> None:
    first = make_person_row()
    second = make_person_row(id_number=first["id_number"], name="李四")
    third = make_person_row(id_number=first["id_number"], address="上海市")
    other = make_person_row()
    result, passed, quarantined = run(tmp_path, "persons", [first, second, third, other])
    assert len(quarantined[first["id_number"]]) == 3
    assert codes(quarantined[first["id_number"]]) == {("duplicate_key", "id_number")}
    assert first["id_number"] not in passed and other["id_number"] in passed
    assert result.per_rule["duplicate_key"] == 3
    assert_gx_agrees(result)


def test_exact_duplicates_collapse(tmp_path: Path) -> None:
    row = make_enterprise_row()
    other = make_enterprise_row()
    result, passed, quarantined = run(tmp_path, "enterprises", [row, dict(row), other, dict(row)])
    assert len(passed[row["uscc"]]) == 1 and not quarantined
    assert (result.rows, result.passed, result.duplicates_collapsed) == (4, 2, 2)
    assert_gx_agrees(result)
    assert result.gx_success is True


def test_outputs_and_result(tmp_path: Path) -> None:
    rows = [make_food_licence_row(), make_food_licence_row(holder_uscc=flip_last(make_uscc())),
            make_food_licence_row(valid_from="2022-13-01")]
    result, passed, _ = run(tmp_path, "food_licences", rows)
    passed_schema = pq.read_schema(result.passed_path)
    quarantine_schema = pq.read_schema(result.quarantine_path)
    assert str(passed_schema.field("_flags").type) == "list<element: string>"
    assert str(quarantine_schema.field("_reasons").type) == "string"
    for col in quality.DATASETS["food_licences"].raw_columns:
        assert col in passed_schema.names and col in quarantine_schema.names
    assert [n for n in passed_schema.names if n.startswith(("ow_", "_key"))] == []
    assert passed[rows[0]["licence_no"]][0]["_flags"] == []
    assert (result.rows, result.passed, result.quarantined, result.flagged) == (3, 2, 1, 1)
    assert result.per_rule["uscc_check_char"] == 1 and result.per_rule["impossible_date"] == 1
    report = json.loads(result.validation_path.read_text(encoding="utf-8"))
    assert report["gx"]["suite"] == "onewindow.food_licences" and report["run_id"] == "test-run"
    assert sorted(p.name for p in result.passed_path.parent.iterdir()) == [
        "passed.parquet", "quarantine.parquet", "validation.json"]  # no temp files left
    with pytest.raises(Exception):
        result.passed = 0  # type: ignore[misc]  # frozen


def test_empty_batch(tmp_path: Path) -> None:
    result, passed, quarantined = run(tmp_path, "marriages", [])
    assert (result.rows, result.passed, result.quarantined) == (0, 0, 0)
    assert result.gx_success is True


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(quality.UnknownDatasetError) as info:
        quality.check_batch(tmp_path / "x.parquet", "cars", run_id="r", out_dir=tmp_path)
    assert info.value.dataset == "cars" and "persons" in str(info.value)
    assert isinstance(info.value, quality.QualityError)


def test_missing_columns(tmp_path: Path) -> None:
    import pyarrow as pa

    path = tmp_path / "raw.parquet"
    pq.write_table(pa.table({"id_number": ["1"], "name": ["张三"]}), path)
    with pytest.raises(quality.RawBatchError) as info:
        quality.check_batch(path, "persons", run_id="r", out_dir=tmp_path / "out")
    assert "birth_date" in info.value.missing and "_record_key" in info.value.missing
    assert info.value.path == path and "extract" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(quality.RawBatchError, match="does not exist"):
        quality.check_batch(tmp_path / "nope.parquet", "persons", run_id="r", out_dir=tmp_path)


def test_datasets_describe_keys_and_rules() -> None:
    assert {n: s.key for n, s in quality.DATASETS.items()} == {
        "persons": "id_number", "enterprises": "uscc", "food_licences": "licence_no",
        "marriages": "cert_no", "properties": "cert_no", "licences": "licence_id",
        "licence_records": "cert_no"}
    contract = {"id_check_char", "uscc_check_char", "impossible_date", "validity_end_before_start",
                "missing_required", "duplicate_key", "mis_encoded_text"}
    used = {r.code for s in quality.DATASETS.values() for r in s.rules}
    assert contract <= used <= contract | {"id_format", "id_division", "id_birth_date", "uscc_format",
                                           "holder_code_type", "validity_term", "licence_id_format",
                                           "licence_id_check_char", "licence_id_variant", "licence_id_parts",
                                           "unknown_licence_type", "holder_kind_mismatch", "invalid_json"}
    for spec in quality.DATASETS.values():
        ids = [r.rule_id for r in spec.rules]
        assert len(ids) == len(set(ids))
        assert spec.key in spec.required
        assert {r.severity for r in spec.rules if r.code == "uscc_check_char"} <= {"warning"}


def test_the_suite_database_is_bounded_like_the_library(tmp_path: Path, monkeypatch) -> None:
    """The batch is staged in an in-memory DuckDB database behind SQLAlchemy (not opened by
    warehouse.duck.connect): ONEWINDOW_DUCKDB_MEMORY_LIMIT / _TEMP_DIR bound it as well, so a
    province-sized batch (every issued licence, in check_issued) spills instead of taking 80% of RAM."""
    import quality.check as check_mod
    from warehouse.duck import MEMORY_LIMIT_ENV, TEMP_DIR_ENV

    spill = tmp_path / "spill"
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "300MB")
    monkeypatch.setenv(TEMP_DIR_ENV, str(spill))
    seen = []
    original = check_mod.apply_bounds

    def spy(con):
        original(con)
        seen.append(con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone())

    monkeypatch.setattr(check_mod, "apply_bounds", spy)
    good, bad = make_person_row(), make_person_row(id_number=flip_last(make_ric()))
    result, passed, quarantined = run(tmp_path, "persons", [good, bad])
    assert seen == [("286.1 MiB", str(spill))] and spill.is_dir()
    assert set(passed) == {good["id_number"]} and set(quarantined) == {bad["id_number"]}
    assert_gx_agrees(result)
