"""Simulated department systems: determinism, standards, cross-links, drops, API, manifest, day k."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import sqlite3
from pathlib import Path

import httpx
import numpy as np
import openpyxl
import pytest

from exchange.departments import BASE_DATE, SimulationError, simulate
from exchange.departments.defects import is_possible_date, looks_mis_encoded
from exchange.departments.gongan import sqlite_path
from exchange.departments.minzheng import drop_path as marriage_drop, read_drop
from exchange.departments.people import ric_check_chars
from exchange.departments.scjg import registry_path
from exchange.departments.scjg_api import serve_in_background
from exchange.departments.zrzy import drop_path as property_drop
from quality.standards import division_codes, ric_check_char, ric_findings, ric_sex, uscc_findings
from warehouse.datadir import Layout

PERSONS, SEED, RATE = 2000, 11, 0.1


def run(tmp: Path, seed: int = SEED, day_max: int = 0, **kw) -> Layout:
    layout = Layout(tmp)
    for day in range(day_max + 1):
        simulate(layout, PERSONS, seed, day=day, defect_rate=RATE, **kw)
    return layout


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Layout:
    return run(tmp_path_factory.mktemp("sim"), day_max=1)


def rows(db: Path, table: str) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def xlsx_rows(path: Path) -> list[dict]:
    ws = openpyxl.load_workbook(path, read_only=True).active
    it = ws.iter_rows(values_only=True)
    header = next(it)
    return [dict(zip(header, r)) for r in it]


def datasets(layout: Layout) -> dict[str, list[dict]]:
    """Every row each system currently gives out (file drops: all days)."""
    dep = layout.departments
    days = json.loads(layout.defect_manifest.read_text(encoding="utf-8"))["days"]
    return {
        "persons": rows(sqlite_path(dep), "persons"),
        "enterprises": rows(registry_path(dep), "enterprises"),
        "food_licences": rows(registry_path(dep), "food_licences"),
        "marriages": [r for d in days for r in read_drop(marriage_drop(dep, d))],
        "properties": [r for d in days for r in xlsx_rows(property_drop(dep, d))],
    }


def manifest(layout: Layout) -> dict:
    return json.loads(layout.defect_manifest.read_text(encoding="utf-8"))


def tree_hashes(layout: Layout) -> dict[str, str]:
    return {str(p.relative_to(layout.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(layout.departments.rglob("*")) if p.is_file()}


KEYS = {"persons": "id_number", "enterprises": "uscc", "food_licences": "licence_no",
        "marriages": "cert_no", "properties": "cert_no"}
ID_COLS = {"persons": ["id_number"], "enterprises": ["legal_rep_id"], "marriages": ["spouse1_id", "spouse2_id"]}
USCC_COLS = {"enterprises": ["uscc"], "food_licences": ["holder_uscc"]}
DATE_PAIRS = {"persons": [("id_card_issue_date", "id_card_valid_until")],
              "food_licences": [("valid_from", "valid_until")], "properties": [("term_start", "term_end")]}
REQUIRED = {"persons": ["id_number", "name", "sex", "birth_date", "address", "id_card_issue_date"],
            "enterprises": ["uscc", "name", "legal_rep_id", "legal_rep_name", "issue_date"],
            "food_licences": ["licence_no", "holder_uscc", "holder_name", "valid_from", "valid_until"],
            "marriages": ["cert_no", "spouse1_id", "spouse1_name", "spouse2_id", "spouse2_name",
                          "registration_date"],
            "properties": ["cert_no", "owner_code", "owner_name", "term_start", "term_end", "issue_date"]}


def problems(dataset: str, row: dict, names: dict[str, str]) -> set[str]:
    """Every defect code a row shows on its own (and name_mismatch against the registry)."""
    found = set()
    ids = list(ID_COLS.get(dataset, []))
    usccs = list(USCC_COLS.get(dataset, []))
    if dataset == "properties":
        (ids if row["owner_code_type"] == "111" else usccs).append("owner_code")
    for col in ids:
        if any(f.code == "id_check_char" for f in ric_findings(row[col])):
            found.add("id_check_char")
    for col in usccs:
        if any(f.code == "uscc_check_char" for f in uscc_findings(row[col])):
            found.add("uscc_check_char")
    for col, value in row.items():
        if col.endswith(("_date", "_from", "_until", "term_start", "term_end")) and value:
            if not is_possible_date(str(value)):
                found.add("impossible_date")
    for start, end in DATE_PAIRS.get(dataset, []):
        if row[end] and is_possible_date(row[start]) and is_possible_date(row[end]) and row[end] < row[start]:
            found.add("validity_end_before_start")
    if any(row[c] in ("", None) for c in REQUIRED[dataset]):
        found.add("missing_required")
    if any(isinstance(v, str) and looks_mis_encoded(v) for v in row.values()):
        found.add("mis_encoded_text")
    links = {"enterprises": [("legal_rep_id", "legal_rep_name")],
             "marriages": [("spouse1_id", "spouse1_name"), ("spouse2_id", "spouse2_name")],
             "properties": [("owner_code", "owner_name")] if row.get("owner_code_type") == "111" else []}
    for id_col, name_col in links.get(dataset, []):
        if row[id_col] in names and row[name_col] and not looks_mis_encoded(row[name_col]) \
                and names[row[id_col]] != row[name_col]:
            found.add("name_mismatch")
    return found


def test_vectorised_check_chars_match_the_standard() -> None:
    bodies = np.array([11010519491231002, 34052419800101001, 33010620000229123], dtype=np.int64)
    assert ric_check_chars(bodies).tolist() == [ric_check_char(str(b)) for b in bodies]


def test_column_built_persons_are_valid_and_defects_patch_them_without_a_row_list() -> None:
    """The Arrow-column generator: real division codes, GB 11643 check characters, rows on demand;
    defects injected into its row view equal those injected into the same rows as a list."""
    import random

    from exchange.departments import defects as d, gongan
    from exchange.departments.defects import PatchedRows
    from exchange.departments.people import PERSON_COLUMNS, generate_persons
    from exchange.departments.pools import make_pools
    from exchange.departments.rand import np_rng

    batch = generate_persons(np_rng(5, 0, "persons"), make_pools(5), 5000, 0)
    assert batch.table.column_names == list(PERSON_COLUMNS) and batch.table.num_rows == 5000
    rows = list(batch.rows)
    assert len(rows) == 5000 and batch.rows[17] == rows[17] and batch.rows[-1] == rows[-1]
    real = division_codes()
    for r in rows:
        ident, sex, birth, div = r[0], r[2], r[3], r[5]
        assert ric_check_char(ident[:17]) == ident[17] and not ric_findings(ident)
        assert ident[:6] == div and div in real and ident[6:14] == birth.replace("-", "")
        assert ric_sex(ident) == sex
        assert r[7].startswith(div) and len(r[7]) == 13 and r[11].endswith("公安局")
    assert len({r[0] for r in rows}) == 5000 and len({r[1] for r in rows}) > 1000
    assert batch.ids().tolist() == [r[0] for r in rows] and batch.names().tolist() == [r[1] for r in rows]

    def inj(seq):
        return d.inject(seq, PERSON_COLUMNS, "id_number", gongan.person_rules(), rate=0.1,
                        rng=random.Random(9), dataset="persons", source_id="gongan_population", day=0)
    as_list, as_view = inj(rows), inj(batch.rows)
    assert isinstance(as_view.rows, PatchedRows) and isinstance(as_list.rows, list)
    assert as_view.defects == as_list.defects and len(as_view.rows) == len(as_list.rows) > 5000
    assert list(as_view.rows) == as_list.rows
    assert [as_view.rows[i] for i in range(len(as_list.rows))] == as_list.rows
    assert as_view.rows[-1] == as_list.rows[-1] and as_view.rows[10:20] == as_list.rows[10:20]


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = tree_hashes(run(tmp_path / "a", day_max=1))
    b = tree_hashes(run(tmp_path / "b", day_max=1))
    c = tree_hashes(run(tmp_path / "c", seed=SEED + 1))
    assert a == b
    assert len(a) >= 8
    common = set(a) & set(c)
    assert common and all(a[k] != c[k] for k in common)


def test_bad_arguments_raise_clear_errors(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    with pytest.raises(SimulationError) as e:
        simulate(layout, 0, 1)
    assert e.value.persons == 0
    with pytest.raises(SimulationError) as e:
        simulate(layout, 10, 1, defect_rate=0.6)
    assert e.value.defect_rate == 0.6
    with pytest.raises(SimulationError, match="day 0"):
        simulate(layout, 10, 1, day=1)


def test_clean_rows_are_clean_and_defects_are_real(sim: Layout) -> None:
    data = datasets(sim)
    m = manifest(sim)
    bad = {(d["dataset"], d["record_key"]) for d in m["defects"]}
    names = {p["id_number"]: p["name"] for p in data["persons"] if ("persons", p["id_number"]) not in bad}
    for dataset, items in data.items():
        clean = [r for r in items if (dataset, str(r[KEYS[dataset]])) not in bad]
        assert len(clean) > 0.8 * len(items)
        for r in clean:
            assert problems(dataset, r, names) == set(), (dataset, r)
        keys = [(str(r[KEYS[dataset]]), r["updated_at"][:10]) for r in clean]
        assert len(keys) == len(set(keys)), dataset  # one row per key in each day's batch
    by_key = {ds: {} for ds in data}
    for ds, items in data.items():
        for r in items:
            by_key[ds].setdefault(str(r[KEYS[ds]]), []).append(r)
    codes = set()
    for d in m["defects"]:
        found = by_key[d["dataset"]].get(d["record_key"])
        assert found, d
        if d["defect"] == "duplicate_key":
            assert len(found) == 2 and found[0] != found[1]
        else:
            assert d["defect"] in problems(d["dataset"], found[-1], names), (d, found)
        codes.add(d["defect"])
        assert set(d) == {"dataset", "source_id", "record_key", "defect", "field", "severity", "day", "detail"}
    assert codes == {"id_check_char", "uscc_check_char", "impossible_date", "validity_end_before_start",
                     "missing_required", "duplicate_key", "mis_encoded_text", "name_mismatch"}
    assert m["days"] == [0, 1] and m["seed"] == SEED and m["persons"] == PERSONS


def test_identity_numbers_follow_gb11643_and_real_divisions(sim: Layout) -> None:
    bad = {d["record_key"] for d in manifest(sim)["defects"] if d["dataset"] == "persons"}
    people = [p for p in rows(sqlite_path(sim.departments), "persons") if p["id_number"] not in bad]
    divisions = division_codes()
    for p in people:
        assert ric_findings(p["id_number"]) == []
        assert p["id_number"][:6] == p["division_code"] and p["division_code"] in divisions
        assert ric_sex(p["id_number"]) == p["sex"]
        assert p["birth_date"].replace("-", "") == p["id_number"][6:14]
        assert p["id_card_authority"].endswith("公安局") and p["status"] == "01"
        birth, issue = dt.date.fromisoformat(p["birth_date"]), dt.date.fromisoformat(p["id_card_issue_date"])
        assert birth <= issue <= BASE_DATE + dt.timedelta(days=1)
        age = (issue.year - birth.year) - ((issue.month, issue.day) < (birth.month, birth.day))
        term = 5 if age < 16 else 10 if age < 26 else 20 if age < 46 else None
        if term is None:
            assert p["id_card_valid_until"] == ""
        else:
            assert p["id_card_valid_until"][:4] == str(issue.year + term)
    ages = [(BASE_DATE - dt.date.fromisoformat(p["birth_date"])).days / 365.25 for p in people]
    assert min(ages) >= 0 and max(ages) <= 90.1


def test_cross_links_point_at_clean_registered_people(sim: Layout) -> None:
    data = datasets(sim)
    m = manifest(sim)
    bad = {(d["dataset"], d["record_key"]) for d in m["defects"]}
    people = {p["id_number"]: p for p in data["persons"] if ("persons", p["id_number"]) not in bad}
    ents = {e["uscc"]: e for e in data["enterprises"] if ("enterprises", e["uscc"]) not in bad}
    for e in ents.values():
        rep = people[e["legal_rep_id"]]
        assert rep["name"] == e["legal_rep_name"] and rep["birth_date"] <= "2008-11-01"
        assert uscc_findings(e["uscc"]) == [] and e["uscc"][2:4] == "33"
        assert e["uscc"][:2] == ("91" if e["entity_type"] == "企业" else "92")
    for lic in data["food_licences"]:
        if ("food_licences", lic["licence_no"]) not in bad:
            assert ents[lic["holder_uscc"]]["name"] == lic["holder_name"]
            start, until = dt.date.fromisoformat(lic["valid_from"]), dt.date.fromisoformat(lic["valid_until"])
            assert until.year - start.year == 5
    for mar in data["marriages"]:
        if ("marriages", mar["cert_no"]) not in bad:
            a, b = people[mar["spouse1_id"]], people[mar["spouse2_id"]]
            assert (a["name"], b["name"]) == (mar["spouse1_name"], mar["spouse2_name"])
            assert {a["sex"], b["sex"]} == {"男", "女"}
    owners = 0
    for p in data["properties"]:
        if ("properties", p["cert_no"]) not in bad:
            owner = people if p["owner_code_type"] == "111" else ents
            assert owner[p["owner_code"]]["name"] == p["owner_name"]
            assert isinstance(p["area_m2"], float)
            years = {"城镇住宅用地": 70, "商服用地": 40, "工业用地": 50}[p["land_use"]]
            assert int(p["term_end"][:4]) - int(p["term_start"][:4]) in (years, years - 1)
            owners += p["owner_code_type"] == "001"
    assert owners > 0


def test_marriage_drop_is_gbk(sim: Layout) -> None:
    raw = marriage_drop(sim.departments, 0).read_bytes()
    text = raw.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    header = next(csv.reader(io.StringIO(text)))
    assert header == ["cert_no", "spouse1_id", "spouse1_name", "spouse2_id", "spouse2_name",
                      "registration_date", "office", "status", "updated_at"]
    assert "民政局婚姻登记处" in text


def test_property_drop_reads_with_openpyxl(sim: Layout) -> None:
    items = xlsx_rows(property_drop(sim.departments, 0))
    assert len(items) >= PERSONS // 10
    assert list(items[0]) == ["cert_no", "owner_code", "owner_code_type", "owner_name", "parcel_no", "address",
                              "area_m2", "land_use", "term_start", "term_end", "issue_date", "status",
                              "updated_at"]
    assert items[0]["cert_no"].startswith("浙(") and items[0]["cert_no"].endswith("号")


def test_day_one_changes_are_inside_day_one(sim: Layout) -> None:
    lo, hi = "2026-11-02T00:00:00", "2026-11-03T00:00:00"
    data = datasets(sim)
    for dataset in ("persons", "enterprises", "food_licences"):
        changed = [r for r in data[dataset] if r["updated_at"] >= lo]
        assert changed and all(r["updated_at"] < hi for r in changed), dataset
        assert all(r["updated_at"] < lo for r in data[dataset] if r not in changed)
    day1 = read_drop(marriage_drop(sim.departments, 1))
    props = xlsx_rows(property_drop(sim.departments, 1))
    assert day1 and props
    assert all(lo <= r["updated_at"] < hi for r in day1 + props)
    assert {p["status"] for p in props} >= {"01"} and {p["status"] for p in props} & {"02", "03"}
    assert any(lic["status"] in ("02", "03") for lic in data["food_licences"])


def test_rerunning_a_day_is_idempotent(tmp_path: Path) -> None:
    layout = run(tmp_path, day_max=1)
    before = {ds: sorted(map(str, items)) for ds, items in datasets(layout).items()}
    files = {k: v for k, v in tree_hashes(layout).items() if "drops" in k or "manifest" in k}
    simulate(layout, PERSONS, SEED, day=1, defect_rate=RATE)
    assert {ds: sorted(map(str, items)) for ds, items in datasets(layout).items()} == before
    assert {k: v for k, v in tree_hashes(layout).items() if "drops" in k or "manifest" in k} == files
    with pytest.raises(SimulationError, match="before day 3"):
        simulate(layout, PERSONS, SEED, day=3, defect_rate=RATE)


@pytest.mark.service
def test_rest_api_pages_and_filters_through_uvicorn(sim: Layout) -> None:
    all_rows = rows(registry_path(sim.departments), "enterprises")
    with serve_in_background(registry_path(sim.departments)) as handle:
        assert handle.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=handle.url, timeout=10) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            seen, page = [], 1
            while page is not None:
                body = client.get("/api/v1/enterprises", params={"page": page, "page_size": 37}).json()
                assert body["total"] == len(all_rows) and body["page_size"] == 37
                seen += body["items"]
                page = body["next_page"]
            assert sorted(r["uscc"] for r in seen) == sorted(r["uscc"] for r in all_rows)
            assert seen == sorted(seen, key=lambda r: r["updated_at"])
            assert isinstance(seen[0]["registered_capital"], float)
            day1 = client.get("/api/v1/food-licences", params={"updated_since": "2026-11-02T00:00:00",
                                                                "updated_before": "2026-11-03T00:00:00"}).json()
            assert day1["total"] > 0 and day1["next_page"] is None
            assert all("2026-11-02" <= r["updated_at"] < "2026-11-03" for r in day1["items"])
            tz = client.get("/api/v1/food-licences", params={"updated_since": "2026-11-01T16:00:00+00:00"}).json()
            assert tz["total"] == day1["total"]
            assert client.get("/api/v1/enterprises", params={"updated_since": "yesterday"}).status_code == 422


@pytest.mark.postgres
def test_population_in_postgres(tmp_path: Path, pg_dsn: str) -> None:
    import psycopg

    layout = Layout(tmp_path)
    simulate(layout, 500, SEED, defect_rate=RATE, pg_dsn=pg_dsn)
    simulate(layout, 500, SEED, day=1, defect_rate=RATE, pg_dsn=pg_dsn)
    with pytest.raises(SimulationError, match="pg-dsn"):
        simulate(layout, 500, SEED, day=2, defect_rate=RATE)
    bad = {d["record_key"] for d in manifest(layout)["defects"] if d["dataset"] == "persons"}
    with psycopg.connect(pg_dsn) as conn:
        people = conn.execute("SELECT id_number, updated_at FROM persons").fetchall()
    assert len(people) > 500
    assert all(ric_findings(i) == [] for i, _ in people if i not in bad)
    assert any(u.startswith("2026-11-02") for _, u in people)
    assert not sqlite_path(layout.departments).exists()
