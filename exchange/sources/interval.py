"""Data intervals in China Standard Time, as department systems keep their timestamps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

CST = dt.timezone(dt.timedelta(hours=8), "CST")


@dataclass(frozen=True)
class Interval:
    """A half-open interval ``[start, end)`` of naive China Standard Time."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo or self.end.tzinfo:
            raise ValueError("Interval takes naive CST datetimes; use Interval.from_aware()")
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end} is not after start {self.start}")

    @classmethod
    def from_aware(cls, start: dt.datetime, end: dt.datetime) -> "Interval":
        """From timezone-aware datetimes (Airflow's data interval)."""
        return cls(start.astimezone(CST).replace(tzinfo=None), end.astimezone(CST).replace(tzinfo=None))

    @classmethod
    def for_day(cls, day: dt.date) -> "Interval":
        start = dt.datetime.combine(day, dt.time())
        return cls(start, start + dt.timedelta(days=1))

    @classmethod
    def parse_key(cls, key: str) -> "Interval":
        a, b = key.split("_")
        return cls(dt.datetime.strptime(a, "%Y%m%dT%H%M%S"), dt.datetime.strptime(b, "%Y%m%dT%H%M%S"))

    @property
    def key(self) -> str:
        return f"{self.start:%Y%m%dT%H%M%S}_{self.end:%Y%m%dT%H%M%S}"

    def aware(self) -> tuple[dt.datetime, dt.datetime]:
        return self.start.replace(tzinfo=CST), self.end.replace(tzinfo=CST)


def iso(ts: dt.datetime) -> str:
    """The cursor format department systems use: ``YYYY-MM-DD HH:MM:SS``."""
    return ts.strftime("%Y-%m-%d %H:%M:%S")
