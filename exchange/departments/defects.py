"""Inject known defects into simulated rows and describe each one for the manifest.

Codes and severities are the quality reason codes of docs/architecture.md. A row gets
at most one defect; every other row stays clean. ``looks_mis_encoded`` is the detector
the injected mojibake is meant to trip (Latin-1 range characters, U+FFFD, 锟斤拷).
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Callable

SEVERITY = {
    "id_check_char": "error",
    "uscc_check_char": "warning",
    "impossible_date": "error",
    "validity_end_before_start": "error",
    "missing_required": "error",
    "duplicate_key": "error",
    "mis_encoded_text": "error",
    "name_mismatch": "warning",
}
GBK_MOJIBAKE = "锟斤拷"  # UTF-8 bytes of U+FFFD U+FFFD read back as GBK
_RIC_CHARS = "0123456789X"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_IMPOSSIBLE_MD = ("02-30", "02-31", "04-31", "06-31", "09-31", "11-31")

Row = dict[str, object]
Mutator = Callable[[Row, random.Random], str]


@dataclass(frozen=True)
class Rule:
    """One defect code applied to one field, for rows where ``applies`` is true."""

    code: str
    field: str
    mutate: Mutator
    applies: Callable[[Row], bool] = lambda row: True


@dataclass
class Injected:
    rows: Sequence[tuple]  # a list when the input was a list
    defects: list[dict]
    defect_keys: set[str] = field(default_factory=set)
    touched: set[int] = field(default_factory=set)  # indices into the input rows


def looks_mis_encoded(text: str) -> bool:
    """True for mojibake: Latin-1 range characters, U+FFFD or the GBK 锟斤拷 pattern."""
    return ("\ufffd" in text or GBK_MOJIBAKE in text
            or any("\u0080" <= ch <= "\u00ff" for ch in text))


def is_possible_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------ mutators
def wrong_ric_check(field_: str) -> Mutator:
    def mutate(row: Row, rng: random.Random) -> str:
        value = str(row[field_])
        row[field_] = value[:17] + rng.choice([c for c in _RIC_CHARS if c != value[17]])
        return f"check character {value[17]} replaced by {row[field_][17]}"  # type: ignore[index]
    return mutate


def wrong_uscc_check(field_: str) -> Mutator:
    def mutate(row: Row, rng: random.Random) -> str:
        value = str(row[field_])
        row[field_] = value[:17] + rng.choice([c for c in _USCC_CHARS if c != value[17]])
        return f"check character {value[17]} replaced by {row[field_][17]}"  # type: ignore[index]
    return mutate


def impossible_date(field_: str) -> Mutator:
    def mutate(row: Row, rng: random.Random) -> str:
        year = str(row[field_])[:4]
        md = rng.choice(_IMPOSSIBLE_MD)
        row[field_] = f"{year}-{md}"
        return f"{row[field_]} does not exist"
    return mutate


def end_before_start(start: str, end: str) -> Mutator:
    def mutate(row: Row, rng: random.Random) -> str:
        begin = dt.date.fromisoformat(str(row[start]))
        row[end] = (begin - dt.timedelta(days=rng.randint(1, 3650))).isoformat()
        return f"{end} {row[end]} before {start} {row[start]}"
    return mutate


def blank(field_: str) -> Mutator:
    def mutate(row: Row, rng: random.Random) -> str:
        row[field_] = ""
        return f"{field_} is empty"
    return mutate


def latin1_mojibake(field_: str) -> Mutator:
    """GBK bytes decoded as Latin-1 (a system that assumed ISO-8859-1)."""
    def mutate(row: Row, rng: random.Random) -> str:
        row[field_] = str(row[field_]).encode("gbk").decode("latin-1")
        return "GBK bytes decoded as Latin-1"
    return mutate


def gbk_replacement_mojibake(field_: str) -> Mutator:
    """Characters lost to U+FFFD and written back through GBK: ``王锟斤拷``; still GBK-encodable."""
    def mutate(row: Row, rng: random.Random) -> str:
        value = str(row[field_])
        row[field_] = value[:1] + GBK_MOJIBAKE
        return "characters replaced by U+FFFD, re-read as GBK (锟斤拷)"
    return mutate


def one_char_off(field_: str, chars: tuple[str, ...]) -> Mutator:
    def mutate(row: Row, rng: random.Random) -> str:
        value = str(row[field_])
        pos = len(value) - 1
        row[field_] = value[:pos] + rng.choice([c for c in chars if c != value[pos]])
        return f"registry name {value}, source says {row[field_]}"
    return mutate


def duplicate_marker(field_: str, alter: Callable[[Row, random.Random], None]) -> Mutator:
    """Marks the rule as duplicate_key; ``alter`` changes the copy (the second row)."""
    def mutate(row: Row, rng: random.Random) -> str:
        alter(row, rng)
        return f"second row with the same {field_}"
    mutate.alter = alter  # type: ignore[attr-defined]
    return mutate


# ------------------------------------------------------------------ injection
def inject(rows: list[tuple], columns: tuple[str, ...], key: str, rules: list[Rule], *,
           rate: float, rng: random.Random, dataset: str, source_id: str, day: int,
           eligible: list[int] | None = None) -> Injected:
    """Put one defect into ``round(rate * len(rows))`` rows, cycling over ``rules``.

    Duplicate-key rules append a changed copy right after the original row.
    """
    n_def = min(round(rate * len(rows)), len(rows) if eligible is None else len(eligible))
    if n_def == 0 or not rules:
        return Injected(rows=rows, defects=[])
    pool = list(range(len(rows))) if eligible is None else list(eligible)
    rng.shuffle(pool)
    order = list(rules)
    rng.shuffle(order)
    used: set[int] = set()
    plan: list[tuple[int, Rule]] = []
    start = 0
    for i in range(n_def):
        rule = order[i % len(order)]
        for j in range(len(pool)):
            idx = pool[(start + j) % len(pool)]
            if idx in used:
                continue
            if rule.applies(dict(zip(columns, rows[idx]))):
                used.add(idx)
                plan.append((idx, rule))
                start = (start + j + 1) % len(pool)
                break
    plan.sort(key=lambda p: p[0])
    key_pos = columns.index(key)
    replaced: dict[int, tuple] = {}
    extra: dict[int, tuple] = {}
    defects = []
    for idx, rule in plan:
        row = dict(zip(columns, rows[idx]))
        if rule.code == "duplicate_key":
            copy = dict(row)
            detail = rule.mutate(copy, rng)
            extra[idx] = tuple(copy[c] for c in columns)
        else:
            detail = rule.mutate(row, rng)
            replaced[idx] = tuple(row[c] for c in columns)
        defects.append({"dataset": dataset, "source_id": source_id,
                        "record_key": str(replaced.get(idx, rows[idx])[key_pos]), "defect": rule.code,
                        "field": rule.field, "severity": SEVERITY[rule.code], "day": day,
                        "detail": detail})
    out: Sequence[tuple] = PatchedRows(rows, replaced, extra)
    if isinstance(rows, list):
        out = list(out)
    return Injected(rows=out, defects=defects, defect_keys={d["record_key"] for d in defects},
                    touched={idx for idx, _ in plan})


class PatchedRows(Sequence):
    """``base`` with the rows in ``replaced`` swapped and each ``extra`` row right after its original.

    Lets a column-built batch (``people.RowView``) take its defects without a list of every row.
    """

    def __init__(self, base: Sequence[tuple], replaced: dict[int, tuple], extra: dict[int, tuple]) -> None:
        self.base, self.replaced, self.extra = base, replaced, extra
        self._after = sorted(extra)  # base indices followed by a copy

    def __len__(self) -> int:
        return len(self.base) + len(self.extra)

    def __iter__(self) -> Iterator[tuple]:
        replaced, extra = self.replaced, self.extra
        for i, row in enumerate(self.base):
            yield replaced.get(i, row)
            if i in extra:
                yield extra[i]

    def __getitem__(self, pos):  # type: ignore[override]
        if isinstance(pos, slice):
            return [self[i] for i in range(*pos.indices(len(self)))]
        if pos < 0:
            pos += len(self)
        if not 0 <= pos < len(self):
            raise IndexError(pos)
        # base index i sits at i + (copies before i); a copy of i sits right after it
        lo, hi = 0, len(self.base) - 1
        while lo < hi:  # the largest base index whose position is <= pos
            mid = (lo + hi + 1) // 2
            if mid + bisect.bisect_left(self._after, mid) <= pos:
                lo = mid
            else:
                hi = mid - 1
        at = lo + bisect.bisect_left(self._after, lo)
        if pos == at:
            return self.replaced.get(lo, self.base[lo])
        return self.extra[lo]
