"""民政 marriage registrations, exported as daily GBK CSV drops."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from pathlib import Path

import numpy as np

from exchange.departments import defects as d
from exchange.departments import timeline as tl
from exchange.departments.people import Linkable
from exchange.departments.pools import Pools, division_places, hangzhou_counties
from exchange.departments.store import Schema

MARRIAGES = Schema("marriages", ("cert_no", "spouse1_id", "spouse1_name", "spouse2_id", "spouse2_name",
                                 "registration_date", "office", "status", "updated_at"), "cert_no")
_EARLIEST = dt.date(1986, 1, 1)


def drop_path(departments: Path, day: int) -> Path:
    return departments / "minzheng" / "drops" / f"marriages_{tl.day_stamp(day)}.csv"


def office_name(division: str) -> str:
    county = division_places()[division][1]
    city = "杭州市" if county.endswith("区") else ""
    return f"{city}{county}民政局婚姻登记处"


def cert_no(rng: random.Random, division: str, year: int, taken: set[str]) -> str:
    while True:
        no = f"J{division}-{year}-{rng.randint(1, 999999):06d}"
        if no not in taken:
            taken.add(no)
            return no


def generate_marriages(nrng: np.random.Generator, rng: random.Random, pop: Linkable, n: int, day: int,
                       exclude: set[str], taken: set[str], new: bool = False) -> list[tuple]:
    """``n`` couples of clean, unmarried adults (men 22+, women 20+), similar in age."""
    men = np.array([i for i in pop.adults(day, 22, male=True).tolist() if pop.ids[i] not in exclude])
    women = np.array([i for i in pop.adults(day, 20, male=False).tolist() if pop.ids[i] not in exclude])
    n = min(n, len(men), len(women))
    if n == 0:
        return []
    m = np.sort(nrng.choice(men, n, replace=False))
    w = np.sort(nrng.choice(women, n, replace=False))
    # pair by age rank with a little jitter, so couples are of similar age
    m = m[np.argsort(pop.birth[m] + nrng.integers(0, 1500, n).astype("timedelta64[D]"), kind="stable")]
    w = w[np.argsort(pop.birth[w] + nrng.integers(0, 1500, n).astype("timedelta64[D]"), kind="stable")]
    today = tl.day_date(day)
    stamps = tl.timestamps_in_day(nrng, day, n) if new else None
    counties = hangzhou_counties()
    rows = []
    for i, (a, b) in enumerate(zip(m.tolist(), w.tolist())):
        man_ok = tl.add_years_date(pop.birth[a].astype(object), 22)
        woman_ok = tl.add_years_date(pop.birth[b].astype(object), 20)
        earliest = max(man_ok, woman_ok, _EARLIEST)
        if new:
            reg = today
        else:
            span = (today - earliest).days
            reg = earliest + dt.timedelta(days=min(span, int(rng.expovariate(1 / 1500))))
        own = str(pop.ids[a])[:6]
        division = own if own in counties else rng.choice(counties)
        status = "01" if new or rng.random() < 0.93 else "04"
        rows.append((cert_no(rng, division, reg.year, taken), str(pop.ids[a]), str(pop.names[a]),
                     str(pop.ids[b]), str(pop.names[b]), reg.isoformat(), office_name(division), status))
    if stamps is None:
        stamps = tl.timestamps_after(nrng, np.array([r[5] for r in rows], dtype="datetime64[D]"), day)
    return [r + (ts,) for r, ts in zip(rows, stamps)]


def write_drop(path: Path, rows: list[tuple]) -> None:
    """GBK-encoded CSV with CRLF line ends, as the office's export tool writes it."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(MARRIAGES.columns)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue().encode("gbk"))
    tmp.replace(path)


def read_drop(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="gbk", newline="") as fh:
        return list(csv.DictReader(fh))


def _later_registration(row: d.Row, rng: random.Random) -> None:
    row["registration_date"] = (dt.date.fromisoformat(str(row["registration_date"]))
                                + dt.timedelta(days=rng.randint(1, 30))).isoformat()


def marriage_rules(pools: Pools) -> list[d.Rule]:
    return [
        d.Rule("id_check_char", "spouse2_id", d.wrong_ric_check("spouse2_id")),
        d.Rule("impossible_date", "registration_date", d.impossible_date("registration_date")),
        d.Rule("missing_required", "spouse1_name", d.blank("spouse1_name")),
        d.Rule("duplicate_key", "cert_no", d.duplicate_marker("cert_no", _later_registration)),
        d.Rule("mis_encoded_text", "spouse2_name", d.gbk_replacement_mojibake("spouse2_name")),
        d.Rule("name_mismatch", "spouse1_name", d.one_char_off("spouse1_name", pools.given_chars)),
    ]
