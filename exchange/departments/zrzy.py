"""自然资源 real-property certificates (不动产权证书), exported as daily XLSX drops."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np

from exchange.departments import defects as d
from exchange.departments import timeline as tl
from exchange.departments.people import Linkable
from exchange.departments.pools import Pools, division_places, hangzhou_counties
from exchange.departments.store import Schema
from exchange.departments.xlsx import write_xlsx

PROPERTIES = Schema("properties", ("cert_no", "owner_code", "owner_code_type", "owner_name", "parcel_no",
                                   "address", "area_m2", "land_use", "term_start", "term_end", "issue_date",
                                   "status", "updated_at"), "cert_no", frozenset({"area_m2"}))
LAND_USE = {"城镇住宅用地": 70, "商服用地": 40, "工业用地": 50}
PERSON_CODE, USCC_CODE = "111", "001"
_REGISTRATION_SINCE = dt.date(2015, 3, 1)  # unified real-property registration began
_GRANTS_SINCE = dt.date(1992, 1, 1)


def drop_path(departments: Path, day: int) -> Path:
    return departments / "zrzy" / "drops" / f"property_{tl.day_stamp(day)}.xlsx"


def write_drop(path: Path, rows: list[tuple]) -> None:
    write_xlsx(path, "不动产权证书", PROPERTIES.columns, rows)


def _cert_no(rng: random.Random, division: str, year: int, taken: set[str]) -> str:
    county = division_places()[division][1]
    city = "杭州市" if county.endswith("区") else county
    while True:
        no = f"浙({year}){city}不动产权第{rng.randint(1, 9999999):07d}号"
        if no not in taken:
            taken.add(no)
            return no


def _parcel(rng: random.Random, division: str) -> str:
    return (f"{division}{rng.randint(1, 30):03d}{rng.randint(1, 60):03d}GB{rng.randint(1, 99999):05d}"
            f"F{rng.randint(1, 60):04d}{rng.randint(1, 3000):04d}")


def _place(rng: random.Random, pools: Pools, division: str, use: str) -> str:
    base = f"{division_places()[division][0]}{rng.choice(pools.streets)}{rng.randint(1, 600)}号"
    if use == "城镇住宅用地":
        return f"{base}{rng.randint(1, 30)}幢{rng.randint(1, 5)}单元{rng.randint(1, 33)}{rng.randint(1, 4):02d}室"
    if use == "商服用地":
        return f"{base}{rng.randint(1, 20)}层"
    return base


def generate_properties(nrng: np.random.Generator, rng: random.Random, pools: Pools, n: int, day: int,
                        people: Linkable, owners: list[tuple[str, str]], taken: set[str],
                        new: bool = False) -> list[tuple]:
    """``n`` certificates; ~85% owned by clean adults, the rest by clean companies ``owners``."""
    today = tl.day_date(day)
    adults = people.adults(day)
    counties = hangzhou_counties()
    stamps = tl.timestamps_in_day(nrng, day, n) if new else None
    rows = []
    for i in range(n):
        if owners and (rng.random() < 0.15 or len(adults) == 0):
            code, name = rng.choice(owners)
            code_type, use = USCC_CODE, rng.choice(("商服用地", "商服用地", "工业用地"))
        else:
            k = int(adults[rng.randrange(len(adults))])
            code, name, code_type, use = str(people.ids[k]), str(people.names[k]), PERSON_CODE, "城镇住宅用地"
        division = rng.choice(counties)
        if new:
            start = today - dt.timedelta(days=rng.randint(0, 3650))
            issue = today
        else:
            start = _GRANTS_SINCE + dt.timedelta(days=rng.randint(0, (today - _GRANTS_SINCE).days))
            lo = max(start, _REGISTRATION_SINCE)
            issue = lo + dt.timedelta(days=rng.randint(0, (today - lo).days))
        end = tl.add_years_date(start, LAND_USE[use]) - dt.timedelta(days=1)
        area = {"城镇住宅用地": (35, 240), "商服用地": (20, 3000), "工业用地": (500, 30000)}[use]
        rows.append((_cert_no(rng, division, issue.year, taken), code, code_type, name,
                     _parcel(rng, division), _place(rng, pools, division, use),
                     round(rng.uniform(*area), 2), use, start.isoformat(), end.isoformat(),
                     issue.isoformat(), "01"))
    if stamps is None:
        stamps = tl.timestamps_after(nrng, np.array([r[10] for r in rows], dtype="datetime64[D]"), day)
    return [r + (ts,) for r, ts in zip(rows, stamps)]


def _larger_area(row: d.Row, rng: random.Random) -> None:
    row["area_m2"] = round(float(row["area_m2"]) + rng.uniform(1, 20), 2)


def property_rules(pools: Pools) -> list[d.Rule]:
    person = lambda row: row["owner_code_type"] == PERSON_CODE  # noqa: E731
    company = lambda row: row["owner_code_type"] == USCC_CODE  # noqa: E731
    return [
        d.Rule("id_check_char", "owner_code", d.wrong_ric_check("owner_code"), person),
        d.Rule("uscc_check_char", "owner_code", d.wrong_uscc_check("owner_code"), company),
        d.Rule("impossible_date", "issue_date", d.impossible_date("issue_date")),
        d.Rule("validity_end_before_start", "term_end", d.end_before_start("term_start", "term_end")),
        d.Rule("missing_required", "owner_name", d.blank("owner_name")),
        d.Rule("duplicate_key", "cert_no", d.duplicate_marker("cert_no", _larger_area)),
        d.Rule("mis_encoded_text", "address", d.latin1_mojibake("address")),
        d.Rule("name_mismatch", "owner_name", d.one_char_off("owner_name", pools.given_chars), person),
    ]
