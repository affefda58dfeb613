"""Cross-department checks (比对): findings name both departments' values; recomputed, never duplicated."""

from __future__ import annotations

import json

from certificates.registry import load_registry
from warehouse.crosscheck import refresh, refresh_on
from warehouse.duck import connect
from warehouse.schema import migrate

LT = load_registry().licence_type
PERSON_A, PERSON_B, PERSON_C = "11010519491231002X", "110105198506150013", "110105199001010014"
ORG = "91110000600037341L"


def _cert(con, key: str, number: str, holder: str, code_type: str, name: str, ext: dict,
          source: str = "x") -> None:
    lt = LT(key)
    con.execute("""INSERT INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?, 'i', 'c', NULL, NULL, NULL, '01',
                   CAST(? AS JSON), [], ?, NULL, 'h', 'h', 1, 'I1')""",
                [f"{lt.code}:{number}:{holder}", lt.code, lt.name, number, holder, code_type, name,
                 json.dumps(ext, ensure_ascii=False), source])


def _library(con) -> None:
    migrate(con)
    for code, name, kind, src in ((PERSON_A, "王芳", "person", "gongan_population"),
                                  (PERSON_B, "李强", "person", "gongan_population"),
                                  (ORG, "北京某某科技有限公司", "organisation", "scjg_enterprises")):
        con.execute("INSERT INTO subjects VALUES (?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?, NULL, 'h')",
                    [code, "111" if kind == "person" else "001", name, kind, src])
    # enterprise: legal rep exists with the same name (no finding), another with a different name, one unknown
    _cert(con, "business_licence", ORG, ORG, "001", "北京某某科技有限公司",
          {"legal_rep_id": PERSON_A, "legal_rep_name": "王芳 "}, "scjg_enterprises")
    _cert(con, "business_licence", "E2", "E2", "001", "某公司",
          {"legal_rep_id": PERSON_B, "legal_rep_name": "李刚"}, "scjg_enterprises")
    _cert(con, "business_licence", "E3", "E3", "001", "某公司三",
          {"legal_rep_id": PERSON_C, "legal_rep_name": "赵六"}, "scjg_enterprises")
    _cert(con, "business_licence", "E4", "E4", "001", "个体户", {"legal_rep_id": "", "legal_rep_name": "某"},
          "scjg_enterprises")
    # marriage: spouse1 name differs, spouse2 unknown to the registry
    ext = {"spouse1_id": PERSON_B, "spouse1_name": "李钢", "spouse2_id": PERSON_C, "spouse2_name": "赵六"}
    _cert(con, "marriage", "M1", PERSON_B, "111", "李钢", ext, "minzheng_marriages")
    _cert(con, "marriage", "M1", PERSON_C, "111", "赵六", ext, "minzheng_marriages")
    # property: person owner fine, organisation owner with another name, unknown organisation
    _cert(con, "property", "P1", PERSON_A, "111", "王芳", {}, "zrzy_property")
    _cert(con, "property", "P2", ORG, "001", "北京某某科技公司", {}, "zrzy_property")
    _cert(con, "property", "P3", "91110000600037341M", "001", "别家公司", {}, "zrzy_property")


def _findings(con) -> set[tuple]:
    rows = con.execute('SELECT source_id, dataset, record_key, "check", field, subject_code, "values", interval '
                       "FROM crosscheck_findings").fetchall()
    return {(*r[:6], json.dumps(json.loads(r[6]), ensure_ascii=False, sort_keys=True), r[7]) for r in rows}


def _v(**kw) -> str:
    return json.dumps(kw, ensure_ascii=False, sort_keys=True)


def test_findings_per_check():
    con = connect()
    _library(con)
    result = refresh_on(con)
    expected = {
        ("scjg_enterprises", "enterprises", "E2", "name_mismatch", "legal_rep_name", PERSON_B,
         _v(scjg_enterprises="李刚", gongan_population="李强"), "I1"),
        ("scjg_enterprises", "enterprises", "E3", "legal_rep_missing", "legal_rep_id", PERSON_C,
         _v(scjg_enterprises="赵六", gongan_population=None), "I1"),
        ("minzheng_marriages", "marriages", "M1", "name_mismatch", "spouse1_name", PERSON_B,
         _v(minzheng_marriages="李钢", gongan_population="李强"), "I1"),
        ("minzheng_marriages", "marriages", "M1", "spouse_missing", "spouse2_id", PERSON_C,
         _v(minzheng_marriages="赵六", gongan_population=None), "I1"),
        ("zrzy_property", "properties", "P2", "name_mismatch", "owner_name", ORG,
         _v(zrzy_property="北京某某科技公司", scjg_enterprises="北京某某科技有限公司"), "I1"),
        ("zrzy_property", "properties", "P3", "owner_missing", "owner_code", "91110000600037341M",
         _v(zrzy_property="别家公司", scjg_enterprises=None), "I1"),
    }
    assert _findings(con) == expected
    assert result.findings == 6
    assert result.by_check == {"name_mismatch": 3, "legal_rep_missing": 1, "spouse_missing": 1, "owner_missing": 1}


def test_refresh_recomputes_instead_of_appending(layout):
    con = connect(layout.library)
    _library(con)
    con.close()
    first = refresh(layout)
    again = refresh(layout)
    assert first == again
    con = connect(layout.library)
    try:
        before = _findings(con)
        assert len(before) == first.findings
        # the registry is corrected: that finding disappears on the next refresh
        con.execute("UPDATE subjects SET name = '李刚' WHERE subject_code = ?", [PERSON_B])
    finally:
        con.close()
    after = refresh(layout)
    assert after.findings == first.findings - 1
    con = connect(layout.library, read_only=True)
    try:
        now = _findings(con)
    finally:
        con.close()
    assert not any(f[2] == "E2" for f in now)  # the legal rep's name now matches
    (m1,) = [f for f in now if f[2] == "M1" and f[3] == "name_mismatch"]
    assert m1[6] == _v(minzheng_marriages="李钢", gongan_population="李刚")  # still differs, with today's values
