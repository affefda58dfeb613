"""Simulated calendar: day ``k`` is ``BASE_DATE + k``; timestamps are naive CST strings."""

from __future__ import annotations

import datetime as dt

import numpy as np

BASE_DATE = dt.date(2026, 11, 1)
TS_FORMAT = "%Y-%m-%dT%H:%M:%S"


def day_date(day: int) -> dt.date:
    return BASE_DATE + dt.timedelta(days=day)


def day_start(day: int) -> dt.datetime:
    return dt.datetime.combine(day_date(day), dt.time())


def day_stamp(day: int) -> str:
    """``YYYYMMDD`` of simulated day ``day`` (file-drop names)."""
    return day_date(day).strftime("%Y%m%d")


def np_day(day: int) -> np.datetime64:
    return np.datetime64(day_date(day).isoformat(), "D")


def timestamps_in_day(rng: np.random.Generator, day: int, n: int) -> list[str]:
    """``n`` sorted timestamps inside simulated day ``day`` (08:00–20:00, office hours)."""
    start = np.datetime64(day_start(day).isoformat(), "s")
    secs = np.sort(rng.integers(8 * 3600, 20 * 3600, size=n))
    return iso_seconds(start + secs.astype("timedelta64[s]"))


def timestamps_after(rng: np.random.Generator, since: np.ndarray, day: int = 0,
                     floor_days: int = 730) -> list[str]:
    """A timestamp per row between ``since`` (a date, datetime64[D]) and the end of ``day``.

    Rows whose date is older than ``floor_days`` before the day get a timestamp in that
    recent window instead (systems touch records when they migrate).
    """
    end = np.datetime64(day_start(day + 1).isoformat(), "s")
    floor = (np_day(day) - np.timedelta64(floor_days, "D")).astype("datetime64[s]")
    lo = np.maximum(since.astype("datetime64[s]"), floor)
    span = (end - lo).astype(np.int64)
    offs = (rng.random(len(lo)) * span).astype(np.int64)
    return iso_seconds(lo + offs.astype("timedelta64[s]"))


def iso_seconds(values: np.ndarray) -> list[str]:
    return np.datetime_as_string(values.astype("datetime64[s]"), unit="s").tolist()


def iso_dates(values: np.ndarray) -> list[str]:
    return np.datetime_as_string(values.astype("datetime64[D]"), unit="D").tolist()


def add_years(values: np.ndarray, years: np.ndarray | int) -> np.ndarray:
    """Add whole years to datetime64[D] dates; 29 February becomes 28 February."""
    d = values.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    month = (d.astype("datetime64[M]") - y.astype("datetime64[M]")).astype(np.int64)
    dom = (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    ny = y + np.asarray(years).astype("timedelta64[Y]")
    first = ny.astype("datetime64[M]") + month.astype("timedelta64[M]")
    out = first.astype("datetime64[D]") + dom.astype("timedelta64[D]")
    # 29 Feb into a common year overflows into March: step back to 28 Feb
    overflow = (out.astype("datetime64[M]") != first)
    out[overflow] = first[overflow].astype("datetime64[D]") + np.timedelta64(27, "D")
    return out


def add_years_date(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)
