"""市场监管 registry: enterprises (GB 32100 credit codes) and food business licences."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np

from exchange.departments import defects as d
from exchange.departments import timeline as tl
from exchange.departments.people import Linkable
from exchange.departments.pools import (FOOD_SHOP_TYPES, FORMS, INDUSTRIES, SHOP_TYPES, Pools,
                                        division_places, hangzhou_counties)
from exchange.departments.store import Schema, SqliteTable, open_sqlite
from quality.standards import USCC_ALPHABET, make_uscc

ENTERPRISES = Schema("enterprises", ("uscc", "name", "entity_type", "legal_rep_id", "legal_rep_name",
                                     "address", "division_code", "registered_capital", "issue_date",
                                     "status", "updated_at"), "uscc", frozenset({"registered_capital"}))
FOOD_LICENCES = Schema("food_licences", ("licence_no", "holder_uscc", "holder_name", "business_scope",
                                         "address", "issue_date", "valid_from", "valid_until", "status",
                                         "updated_at"), "licence_no")
COMPANY, INDIVIDUAL = "企业", "个体工商户"
FOOD_INDUSTRIES = ("餐饮管理", "食品")
SCOPES = {
    "1": ("预包装食品销售（含冷藏冷冻食品）", "预包装食品销售（不含冷藏冷冻食品）；散装食品销售（不含冷藏冷冻食品）",
          "预包装食品销售（含冷藏冷冻食品）；保健食品销售"),
    "2": ("热食类食品制售", "热食类食品制售；冷食类食品制售", "热食类食品制售；自制饮品制售", "糕点类食品制售（含裱花蛋糕）"),
}
_ORG_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_MA_SINCE = dt.date(2015, 10, 1)  # credit codes with an "MA" body after the 2015 reform
_EARLIEST = np.datetime64("1995-01-01")


def registry_path(departments: Path) -> Path:
    return departments / "scjg" / "registry.sqlite"


def open_registry(departments: Path, fresh: bool = False) -> tuple[SqliteTable, SqliteTable]:
    conn = open_sqlite(registry_path(departments), fresh=fresh)
    return SqliteTable(conn, ENTERPRISES), SqliteTable(conn, FOOD_LICENCES)


def _address(rng: random.Random, pools: Pools, division: str) -> str:
    return f"{division_places()[division][0]}{rng.choice(pools.streets)}{rng.randint(1, 600)}号"


def enterprise_name(rng: random.Random, pools: Pools, entity_type: str, division: str,
                    taken: set[str]) -> str:
    county = division_places()[division][1]
    for attempt in range(1000):
        if entity_type == COMPANY:
            # 行政区划 + 字号 + 行业 + 组织形式; once the 杭州 names are crowded (a large registry),
            # the province or the city and district as the region, as registrations also do
            region = "杭州" if attempt < 20 else rng.choice(("浙江", "杭州" + county))
            name = f"{region}{rng.choice(pools.zihao)}{rng.choice(INDUSTRIES)}{rng.choice(FORMS)}"
        elif rng.random() < 0.5:
            name = f"{county}{rng.choice(pools.surnames)}记{rng.choice(SHOP_TYPES)}"
        else:
            name = f"{county}{rng.choice(pools.zihao)}{rng.choice(SHOP_TYPES)}"
        if name not in taken:
            taken.add(name)
            return name
    raise RuntimeError("enterprise name space exhausted")


def _uscc(rng: random.Random, entity_type: str, division: str, issue: dt.date, taken: set[str]) -> str:
    while True:
        if issue >= _MA_SINCE:
            org8 = "MA" + "".join(rng.choice(_ORG_CHARS) for _ in range(6))
        else:
            org8 = "".join(rng.choice("0123456789") for _ in range(8))
        code = make_uscc("9", "1" if entity_type == COMPANY else "2", division, org8)
        if code not in taken and all(c in USCC_ALPHABET for c in code):
            taken.add(code)
            return code


def generate_enterprises(nrng: np.random.Generator, rng: random.Random, pools: Pools, n: int, day: int,
                         reps: Linkable, taken_uscc: set[str], taken_names: set[str],
                         new: bool = False) -> list[tuple]:
    """``n`` clean enterprises; legal representatives are clean adults from ``reps``."""
    today = tl.np_day(day)
    counties = hangzhou_counties()
    adults = reps.adults(day)
    pick = nrng.choice(adults, n, replace=len(adults) < n)
    if new:
        issue = np.full(n, today)
        updated = tl.timestamps_in_day(nrng, day, n)
    else:
        issue = today - nrng.integers(0, int((today - _EARLIEST).astype(int)) + 1, n).astype("timedelta64[D]")
        updated = tl.timestamps_after(nrng, issue, day)
    rows = []
    for i, (rep, issued, ts) in enumerate(zip(pick.tolist(), tl.iso_dates(issue), updated)):
        etype = COMPANY if rng.random() < 0.6 else INDIVIDUAL
        division = rng.choice(counties)
        uscc = _uscc(rng, etype, division, dt.date.fromisoformat(issued), taken_uscc)
        capital = (float(rng.choice((10, 30, 50, 100, 200, 500, 1000, 3000, 5000))) if etype == COMPANY
                   else round(rng.uniform(0.5, 50), 1))
        status = "01" if new or rng.random() < 0.92 else rng.choice(("04", "07"))
        rows.append((uscc, enterprise_name(rng, pools, etype, division, taken_names), etype,
                     str(reps.ids[rep]), str(reps.names[rep]), _address(rng, pools, division), division,
                     capital, issued, status, ts))
    return rows


def _licence_check(digits: str) -> str:
    return str(sum(int(c) * (i % 3 + 1) for i, c in enumerate(digits)) % 10)


def licence_no(rng: random.Random, kind: str, division: str, taken: set[str]) -> str:
    while True:
        body = f"{kind}{division}{rng.randint(0, 999999):06d}"
        no = f"JY{body}{_licence_check(body)}"
        if no not in taken:
            taken.add(no)
            return no


def is_food_business(name: str) -> bool:
    return any(w in name for w in FOOD_INDUSTRIES + FOOD_SHOP_TYPES)


def generate_food_licences(nrng: np.random.Generator, rng: random.Random, holders: list[tuple], day: int,
                           taken: set[str], new: bool = False) -> list[tuple]:
    """One licence per holder (clean enterprises in ``ENTERPRISES`` column order), valid 5 years."""
    today = tl.np_day(day).astype(object)
    rows = []
    stamps = tl.timestamps_in_day(nrng, day, len(holders)) if new else None
    for i, ent in enumerate(holders):
        uscc, name, address, division, issued = ent[0], ent[1], ent[5], ent[6], ent[8]
        kind = "2" if any(w in name for w in ("餐饮", "小吃", "面馆", "早餐", "烧烤", "馄饨", "快餐", "奶茶")) else "1"
        earliest = max(dt.date.fromisoformat(issued), today - dt.timedelta(days=5 * 365 - 1))
        start = today if new else earliest + dt.timedelta(days=rng.randint(0, (today - earliest).days))
        until = tl.add_years_date(start, 5) - dt.timedelta(days=1)
        rows.append((licence_no(rng, kind, division, taken), uscc, name, rng.choice(SCOPES[kind]), address,
                     start.isoformat(), start.isoformat(), until.isoformat(), "01"))
    if stamps is None:
        stamps = tl.timestamps_after(nrng, np.array([r[6] for r in rows], dtype="datetime64[D]"), day)
    return [r + (ts,) for r, ts in zip(rows, stamps)]


def _change_capital(row: d.Row, rng: random.Random) -> None:
    row["registered_capital"] = float(row["registered_capital"]) + rng.choice((10.0, 50.0, 100.0))


def _change_scope(row: d.Row, rng: random.Random) -> None:
    row["business_scope"] = str(row["business_scope"]) + "；食品经营（仅销售预包装食品）"


def enterprise_rules(pools: Pools) -> list[d.Rule]:
    return [
        d.Rule("uscc_check_char", "uscc", d.wrong_uscc_check("uscc")),
        d.Rule("id_check_char", "legal_rep_id", d.wrong_ric_check("legal_rep_id")),
        d.Rule("impossible_date", "issue_date", d.impossible_date("issue_date")),
        d.Rule("missing_required", "name", d.blank("name")),
        d.Rule("duplicate_key", "uscc", d.duplicate_marker("uscc", _change_capital)),
        d.Rule("mis_encoded_text", "address", d.latin1_mojibake("address")),
        d.Rule("name_mismatch", "legal_rep_name", d.one_char_off("legal_rep_name", pools.given_chars)),
    ]


LICENCE_RULES = [
    d.Rule("uscc_check_char", "holder_uscc", d.wrong_uscc_check("holder_uscc")),
    d.Rule("impossible_date", "issue_date", d.impossible_date("issue_date")),
    d.Rule("validity_end_before_start", "valid_until", d.end_before_start("valid_from", "valid_until")),
    d.Rule("missing_required", "holder_name", d.blank("holder_name")),
    d.Rule("duplicate_key", "licence_no", d.duplicate_marker("licence_no", _change_scope)),
    d.Rule("mis_encoded_text", "address", d.latin1_mojibake("address")),
]
