"""Vectorised population generator for the 公安 registry (GB 11643 identity numbers)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exchange.departments import timeline as tl
from exchange.departments.pools import ETHNICITIES, Pools, division_places, hangzhou_counties

PERSON_COLUMNS = ("id_number", "name", "sex", "birth_date", "ethnicity", "division_code", "address",
                  "hukou_number", "hukou_issue_date", "id_card_issue_date", "id_card_valid_until", "id_card_authority",
                  "status", "updated_at")
_RIC_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_RIC_CHECK = np.array(list("10X98765432"))
_MAX_AGE_DAYS = 90 * 365


class RowView(Sequence):
    """The rows of an Arrow table as tuples, made on demand (a whole 10M-person list would be ~16 GB).

    Iterating converts one slice of ``chunk`` rows at a time; indexing converts one row.
    """

    def __init__(self, table: pa.Table, chunk: int = 65_536) -> None:
        self.table, self.chunk = table, chunk

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return list(RowView(self.table.take(np.arange(len(self))[i])))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return tuple(self.table.slice(i, 1).to_pylist()[0].values())

    def __iter__(self) -> Iterator[tuple]:
        for start in range(0, len(self), self.chunk):
            part = self.table.slice(start, self.chunk)
            yield from zip(*(c.to_pylist() for c in part.columns))


@dataclass
class PersonBatch:
    """Persons as Arrow columns in ``PERSON_COLUMNS`` order, plus the arrays the linkers need."""

    table: pa.Table
    birth: np.ndarray  # datetime64[D]
    male: np.ndarray  # bool

    @property
    def rows(self) -> RowView:
        return RowView(self.table)

    def ids(self) -> np.ndarray:
        return self.table.column("id_number").to_numpy().astype(str)

    def names(self) -> np.ndarray:
        return self.table.column("name").to_numpy().astype(str)


def ric_check_chars(first17: np.ndarray) -> np.ndarray:
    """Vectorised GB 11643 check characters for int64 17-digit bodies.

    Same arithmetic as ``quality.standards.ric_check_char`` (the tests compare them).
    """
    total = np.zeros(len(first17), dtype=np.int64)
    rest = first17.copy()
    for w in _RIC_WEIGHTS[::-1]:
        total += (rest % 10) * w
        rest //= 10
    return _RIC_CHECK[total % 11]


def _choose_divisions(rng: np.random.Generator, n: int) -> np.ndarray:
    codes = np.array(list(division_places()))
    hz = np.array(hangzhou_counties())
    zj = np.array([c for c in codes if c.startswith("33") and not c.startswith("3301")])
    pick = rng.random(n)
    out = codes[rng.integers(0, len(codes), n)]
    zj_mask = pick < 0.20
    out[zj_mask] = zj[rng.integers(0, len(zj), int(zj_mask.sum()))]
    hz_mask = pick < 0.80
    out[hz_mask] = hz[rng.integers(0, len(hz), int(hz_mask.sum()))]
    return out


def _unique_bodies(rng: np.random.Generator, div: np.ndarray, birth: np.ndarray, male: np.ndarray,
                   taken: np.ndarray | None) -> np.ndarray:
    """17-digit bodies (division, birth date, sequence) unique in the batch and vs ``taken``."""
    ymd = _ymd_int(birth)
    prefix = np.array([int(d) for d in div.tolist()], dtype=np.int64) * 10**11 + ymd * 1000
    seq = rng.integers(0, 500, len(div)) * 2 + male.astype(np.int64)  # odd = male
    body = prefix + seq
    for _ in range(100):
        _, first = np.unique(body, return_index=True)
        bad = np.ones(len(body), dtype=bool)
        bad[first] = False
        if taken is not None and len(taken):
            bad |= np.isin(body, taken)
        if not bad.any():
            return body
        seq[bad] = rng.integers(0, 500, int(bad.sum())) * 2 + male[bad].astype(np.int64)
        body = prefix + seq
    raise RuntimeError("could not draw unique identity numbers; division/birth space exhausted")


def _ymd_int(d: np.ndarray) -> np.ndarray:
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    return year * 10000 + month * 100 + dom


def _band_term(birthdays: tuple[np.ndarray, np.ndarray, np.ndarray], issue: np.ndarray) -> np.ndarray:
    """ID card validity in years by age at issue; 0 = long-term (46 and over)."""
    at16, at26, at46 = birthdays
    term = np.full(len(issue), 5, dtype=np.int64)
    term[issue >= at16] = 10
    term[issue >= at26] = 20
    term[issue >= at46] = 0
    return term


def id_card_dates(rng: np.random.Generator, birth: np.ndarray, today: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(issue, valid_until) with the card valid today; valid_until NaT = long-term."""
    n = len(birth)
    age = (today - birth).astype(np.int64)
    birthdays = (tl.add_years(birth, 16), tl.add_years(birth, 26), tl.add_years(birth, 46))
    at46 = birthdays[2]
    term_now = _band_term(birthdays, np.full(n, today))
    window = np.where(term_now == 0, 20 * 365, term_now * 365)
    window = np.where(term_now == 0, np.minimum(window, (today - at46).astype(np.int64)), window)
    window = np.minimum(window, age)
    offset = (rng.random(n) * (window + 1)).astype(np.int64)
    issue = today - offset.astype("timedelta64[D]")
    term = _band_term(birthdays, issue)
    until = tl.add_years(issue, term)
    expired = (term > 0) & (until <= today)
    if expired.any():  # re-issue inside the current term; a later issue never shortens the term
        offset[expired] %= term[expired] * 365
        issue = today - offset.astype("timedelta64[D]")
        term = _band_term(birthdays, issue)
        until = tl.add_years(issue, term)
    until = np.where(term == 0, np.datetime64("NaT"), until)
    return issue, until


def _join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings (vectorised)."""
    return pc.binary_join_element_wise(*parts, "")


def _digits(values: np.ndarray, width: int = 0) -> pa.Array:
    text = pc.cast(pa.array(values, type=pa.int64()), pa.string())
    return pc.utf8_lpad(text, width, "0") if width else text


def _dates(values: np.ndarray, unit: str = "D") -> pa.Array:
    """ISO dates (or seconds) as strings; NaT becomes ''."""
    text = np.datetime_as_string(values.astype(f"datetime64[{unit}]"), unit=unit)
    return pa.array(np.where(text == "NaT", "", text))


def generate_persons(rng: np.random.Generator, pools: Pools, n: int, day: int,
                     taken: np.ndarray | None = None, newborn: bool = False) -> PersonBatch:
    """``n`` clean persons as of ``day``; newborns are born in the 30 days before the day.

    Columns first: every value is drawn as a numpy array from ``rng`` and the strings are
    assembled as Arrow columns (ID numbers from real division codes with their GB 11643 check
    characters, names and streets sampled from the Faker pools); no per-row Python.
    """
    today = tl.np_day(day)
    div = _choose_divisions(rng, n)
    span = 30 if newborn else _MAX_AGE_DAYS
    birth = today - rng.integers(0, span + 1, n).astype("timedelta64[D]")
    male = rng.random(n) < 0.51
    body = _unique_bodies(rng, div, birth, male, taken)
    ids = _join(_digits(body, 17), pa.array(ric_check_chars(body)))

    sur = rng.integers(0, len(pools.surnames), n)
    gm_i = rng.integers(0, len(pools.given_male), n)
    gf_i = rng.integers(0, len(pools.given_female), n)
    given = pc.if_else(pa.array(male), pa.array(pools.given_male).take(gm_i),
                       pa.array(pools.given_female).take(gf_i))
    names = _join(pa.array(pools.surnames).take(sur), given)

    eth_names = [e for e, _ in ETHNICITIES]
    eth_w = np.array([w for _, w in ETHNICITIES], dtype=float)
    eth = pa.array(eth_names).take(rng.choice(len(eth_names), n, p=eth_w / eth_w.sum()))

    places = division_places()
    codes = sorted(set(div.tolist()))
    div_i = np.searchsorted(np.array(codes), div)
    prefix = pa.array([places[c][0] for c in codes]).take(div_i)
    authority = pa.array([places[c][1] + "公安局" for c in codes]).take(div_i)
    divs = pa.array(div)
    streets = pa.array(pools.streets).take(rng.integers(0, len(pools.streets), n))
    numbers = rng.integers(1, 400, n)
    bld = rng.integers(1, 30, n)
    unit = rng.integers(1, 6, n)
    room = rng.integers(1, 33, n) * 100 + rng.integers(1, 5, n)
    addresses = _join(prefix, streets, _digits(numbers), "号", _digits(bld), "幢", _digits(unit), "单元",
                      _digits(room), "室")
    hukou = _join(divs, _digits(rng.integers(0, 10**7, n), 7))

    if newborn:
        issue = np.full(n, today)
        until = tl.add_years(issue, 5)
    else:
        issue, until = id_card_dates(rng, birth, today)
    # 户口簿 签发日期: registration at the current address, between birth and the ID card's issue
    span_days = np.maximum((issue - birth).astype(np.int64), 0)
    hukou_issue = birth + (rng.random(n) * span_days).astype(np.int64).astype("timedelta64[D]")
    updated = (tl.timestamps_in_day(rng, day, n) if newborn
               else tl.timestamps_after(rng, issue, day))
    sex = pc.if_else(pa.array(male), "男", "女")
    table = pa.table([ids, names, sex, _dates(birth), eth, divs, addresses, hukou, _dates(hukou_issue),
                      _dates(issue), _dates(until), authority, pa.array(np.full(n, "01")), pa.array(updated)],
                     names=list(PERSON_COLUMNS))
    return PersonBatch(table=table, birth=birth, male=male)


def body_of(id_number: str) -> int:
    return int(id_number[:17])


@dataclass
class Linkable:
    """Clean registered persons others may reference (legal reps, spouses, owners), by id."""

    ids: np.ndarray  # str
    names: np.ndarray  # str
    male: np.ndarray  # bool
    birth: np.ndarray  # datetime64[D]

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> "Linkable":
        """From (id_number, name, sex, birth_date) rows, sorted by id for determinism."""
        rows = sorted(rows)
        return cls(ids=np.array([r[0] for r in rows], dtype=str),
                   names=np.array([r[1] for r in rows], dtype=str),
                   male=np.array([r[2] == "男" for r in rows], dtype=bool),
                   birth=np.array([r[3] for r in rows], dtype="datetime64[D]"))

    def adults(self, day: int, min_age: int = 18, male: bool | None = None) -> np.ndarray:
        """Indices of persons at least ``min_age`` on ``day`` (optionally one sex)."""
        cutoff = tl.add_years(np.array([tl.np_day(day)]), -min_age)[0]
        mask = self.birth <= cutoff
        if male is not None:
            mask &= self.male == male
        return np.flatnonzero(mask)
