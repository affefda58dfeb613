"""Once-only resolution against a real snapshot index built by the factories."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from exchange.api.core.snapshot import Snapshot
from exchange.onceonly import Applicant, CatalogueError, UnknownItemError, load_catalogue, resolve
from exchange.onceonly.catalogue import AllOf, AnyOf, parse_catalogue
from tests.exchange.factories import (fake_licence, make_certificate, make_company, make_person,
                                      make_snapshot)

AT = dt.datetime(2026, 11, 20, 10, 0)
RESTAURANT, PROPERTY, NEWBORN, ID_RENEWAL = "000120003000", "000173010000", "000141020000", "000104010000"


_opened: list[Snapshot] = []


@pytest.fixture()
def catalogue():
    yield load_catalogue()
    while _opened:
        _opened.pop().retire()


def open_index(layout, subjects, certs, *, unsigned=()):
    """Snapshot of the rows (each certificate gets a licence unless listed in ``unsigned``)."""
    signed = [c for c in certs if c["cert_key"] not in unsigned]
    lic = [fake_licence(c) for c in signed]
    path = make_snapshot(layout, subjects=subjects, certificates=certs, licences=lic)
    snap = Snapshot.open(path)
    _opened.append(snap)
    return snap, {c["cert_key"]: l["licence_id"] for c, l in zip(signed, lic)}


def by_title(res, title):
    return next(r for r in res.requirements if title in r.title)


def by_material(res, material_key):
    return [r for r in res.requirements if any(s.material_key == material_key for s in r.serves)]


# ----------------------------------------------------------------------------- catalogue
def test_catalogue_items_follow_gbt39554(catalogue):
    codes = {i.code for i in catalogue.items}
    assert {RESTAURANT, PROPERTY, NEWBORN, ID_RENEWAL} <= codes
    for item in catalogue.items:
        assert item.impl_code.startswith(item.agency.code)
        assert catalogue.get(item.impl_code) is item
        for m in item.materials:
            assert m.necessity in ("必要", "非必要", "容缺后补")
            assert m.source_channel in ("申请人自备", "政府部门核发", "调取电子证照库")
            assert m.legal_basis and m.acceptance_standard
    restaurant = catalogue.get(RESTAURANT)
    assert restaurant.materials[0].satisfied_by == AllOf(("business_licence", "food_licence"))
    identity = next(m for m in catalogue.get(PROPERTY).materials if m.key == "identity")
    assert identity.satisfied_by == AnyOf(("id_card", "hukou"))
    assert catalogue.search("户口簿") and not catalogue.search("不存在的事项")


@pytest.mark.parametrize("bad, problem", [
    ('satisfied_by = { any = ["no_such_type"] }', "unknown licence type"),
    ('satisfied_by = { some = ["id_card"] }', "satisfied_by must be"),
    ('necessity = "随便"', "necessity"),
])
def test_catalogue_rejects_bad_material(bad, problem, tmp_path):
    field = bad.split(" = ")[0]
    lines = [f'{k} = "{v}"' for k, v in {
        "key": "m", "name": "材料", "necessity": "必要", "form": "纸质", "original_or_copy": "原件",
        "source_channel": "申请人自备", "legal_basis": "法", "acceptance_standard": "标准"}.items()
        if k != field]
    text = ('[[items]]\ncode = "1"\nimpl_code = "11330100002496126K1"\nname = "事项"\n'
            'agency = "gongan"\n[[items.materials]]\n' + "\n".join(lines) + "\n" + bad + "\n")
    with pytest.raises(CatalogueError, match=problem):
        parse_catalogue(text, Path("test.toml"))


def test_catalogue_rejects_impl_code_of_another_agency():
    text = ('[[items]]\ncode = "1"\nimpl_code = "113301000024962067X"\nname = "事项"\nagency = "gongan"\n'
            '[[items.materials]]\nkey = "m"\nname = "材料"\nnecessity = "必要"\nform = "纸质"\n'
            'original_or_copy = "原件"\nsource_channel = "申请人自备"\nlegal_basis = "法"\n'
            'acceptance_standard = "标准"\n')
    with pytest.raises(CatalogueError, match="must start with the implementing agency"):
        parse_catalogue(text, Path("test.toml"))


# ----------------------------------------------------------------------------- resolution
def test_on_file_and_must_submit(layout, catalogue):
    p = make_person()
    hukou = make_certificate("hukou", p)
    snap, lic = open_index(layout, [p], [hukou])
    res = resolve(catalogue, snap.index, Applicant(p["subject_code"], "111"), [ID_RENEWAL], at=AT)
    [line] = by_material(res, "hukou")
    assert line.status == "on_file"
    [used] = line.on_file
    assert used.licence_id == lic[hukou["cert_key"]]
    assert used.issuer_name == "杭州市公安局" and used.valid_until is None and used.status == "01"
    assert by_material(res, "photo")[0].status == "must_submit"
    assert by_material(res, "old_id_card")[0].status == "must_submit"  # physical card is surrendered
    assert res.on_file_count == 1 and res.must_submit_count == 2
    assert res.findings == []


def test_requirements_deduplicated_across_items(layout, catalogue):
    p = make_person()
    idc = make_certificate("id_card", p, valid_until=dt.date(2040, 3, 1))
    marriage = make_certificate("marriage", p)
    snap, lic = open_index(layout, [p], [idc, marriage])
    res = resolve(catalogue, snap.index, Applicant(p["subject_code"], "111"), [PROPERTY, NEWBORN], at=AT)
    id_lines = [r for r in res.requirements if lic[idc["cert_key"]] in {u.licence_id for u in r.on_file}]
    assert len(id_lines) == 1, "the same ID card is listed once"
    served = {(s.item_code, s.material_key) for s in id_lines[0].serves}
    assert served == {(PROPERTY, "identity"), (NEWBORN, "parent_identity")}
    [m] = [r for r in res.requirements if r.licence_types == ["marriage"]]
    assert m.status == "on_file" and {s.item_code for s in m.serves} == {PROPERTY, NEWBORN}
    # Missing ones merge too: no birth certificate, no hukou for the newborn item.
    [birth] = by_material(res, "birth_cert")
    assert birth.status == "must_submit" and birth.missing == ["出生医学证明"]
    # Item-specific forms are never merged.
    assert len(by_material(res, "application")) == 1


def test_or_requirement_met_by_either(layout, catalogue):
    p = make_person()
    hukou = make_certificate("hukou", p)
    snap, lic = open_index(layout, [p], [hukou])
    res = resolve(catalogue, snap.index, Applicant(p["subject_code"], "111"), [PROPERTY], at=AT)
    [identity] = by_material(res, "identity")
    assert identity.status == "on_file"
    assert [u.licence_type_key for u in identity.on_file] == ["hukou"]
    assert identity.satisfied_by == "居民身份证 或 居民户口簿"


def test_and_requirement_needs_all(layout, catalogue):
    co = make_company()
    bl = make_certificate("business_licence", co)
    food = make_certificate("food_licence", co, issue_date=dt.date(2024, 1, 10),
                            valid_until=dt.date(2029, 1, 9))
    snap, lic = open_index(layout, [co], [bl])
    res = resolve(catalogue, snap.index, Applicant(co["subject_code"], "001"), [RESTAURANT], at=AT)
    [line] = by_material(res, "licences")
    assert line.status == "must_submit"
    assert [u.licence_type_name for u in line.on_file] == ["营业执照"]
    assert line.missing == ["食品经营许可证"]

    snap2, lic2 = open_index(layout, [co], [bl, food])
    res = resolve(catalogue, snap2.index, Applicant(co["subject_code"], "001"), [RESTAURANT], at=AT)
    [line] = by_material(res, "licences")
    assert line.status == "on_file"
    assert {u.licence_id for u in line.on_file} == {lic2[bl["cert_key"]], lic2[food["cert_key"]]}
    assert line.title == "营业执照 且 食品经营许可证"
    assert by_material(res, "premises")[0].status == "must_submit"


@pytest.mark.parametrize("status, valid_until, at, reason", [
    ("01", dt.date(2026, 10, 31), AT, "expired"),
    ("03", dt.date(2029, 1, 9), AT, "status_not_valid"),
    ("02", dt.date(2029, 1, 9), AT, "status_not_valid"),
    ("01", dt.date(2029, 1, 9), dt.datetime(2023, 12, 1, 9, 0), "not_yet_valid"),
])
def test_licence_that_does_not_count(layout, catalogue, status, valid_until, at, reason):
    co = make_company()
    bl = make_certificate("business_licence", co)
    food = make_certificate("food_licence", co, status=status, issue_date=dt.date(2024, 1, 10),
                            valid_until=valid_until)
    snap, _ = open_index(layout, [co], [bl, food])
    res = resolve(catalogue, snap.index, Applicant(co["subject_code"], "001"), [RESTAURANT], at=at)
    [line] = by_material(res, "licences")
    assert line.status == "must_submit"
    assert "食品经营许可证" in line.missing
    assert [r.reason_code for r in line.rejected if r.licence_type_name == "食品经营许可证"] == [reason]


def test_time_is_a_parameter(layout, catalogue):
    co = make_company()
    bl = make_certificate("business_licence", co)
    food = make_certificate("food_licence", co, issue_date=dt.date(2021, 5, 1),
                            valid_until=dt.date(2026, 4, 30))
    snap, _ = open_index(layout, [co], [bl, food])
    app = Applicant(co["subject_code"], "001")
    before = resolve(catalogue, snap.index, app, [RESTAURANT], at=dt.datetime(2026, 4, 30, 23, 59))
    after = resolve(catalogue, snap.index, app, [RESTAURANT], at=dt.datetime(2026, 5, 1, 0, 0))
    assert by_material(before, "licences")[0].status == "on_file"  # valid_until is inclusive
    assert by_material(after, "licences")[0].status == "must_submit"


def test_certificate_without_signed_licence_does_not_count(layout, catalogue):
    p = make_person()
    hukou = make_certificate("hukou", p)
    snap, _ = open_index(layout, [p], [hukou], unsigned={hukou["cert_key"]})
    res = resolve(catalogue, snap.index, Applicant(p["subject_code"], "111"), [ID_RENEWAL], at=AT)
    [line] = by_material(res, "hukou")
    assert line.status == "must_submit" and line.rejected[0].reason_code == "not_signed"


def test_agent_licences_count_for_agent_materials(layout, catalogue):
    agent = make_person(name="李四")
    co = make_company(legal_rep_code=agent["subject_code"])
    idc = make_certificate("id_card", agent, valid_until=dt.date(2035, 1, 1))
    snap, lic = open_index(layout, [agent, co], [idc])
    with_agent = resolve(catalogue, snap.index,
                         Applicant(co["subject_code"], "001", agent_code=agent["subject_code"]),
                         [RESTAURANT], at=AT)
    [line] = by_material(with_agent, "agent_id")
    assert line.status == "on_file" and line.on_file[0].licence_id == lic[idc["cert_key"]]
    without = resolve(catalogue, snap.index, Applicant(co["subject_code"], "001"), [RESTAURANT], at=AT)
    [line] = by_material(without, "agent_id")
    assert line.status == "must_submit" and "经办人" in (line.note or "")


def test_cross_check_reports_name_mismatch(layout, catalogue):
    p = make_person(name="王晓明")
    idc = make_certificate("id_card", p, valid_until=dt.date(2040, 1, 1))
    marriage = make_certificate("marriage", p, holder_name="王小明")
    snap, _ = open_index(layout, [p], [idc, marriage])
    res = resolve(catalogue, snap.index, Applicant(p["subject_code"], "111"), [PROPERTY], at=AT)
    [finding] = res.findings
    assert finding.field == "name" and finding.holder_code == p["subject_code"]
    values = {(o.department, o.value) for o in finding.values}
    assert ("杭州市公安局", "王晓明") in values and ("杭州市民政局", "王小明") in values
    assert "王小明" in finding.message_zh and "王晓明" in finding.message_zh


def test_unknown_item(layout, catalogue):
    p = make_person()
    snap, _ = open_index(layout, [p], [])
    with pytest.raises(UnknownItemError, match="no service item"):
        resolve(catalogue, snap.index, Applicant(p["subject_code"], "111"), ["nope"], at=AT)
