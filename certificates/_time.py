"""Moments: the hub passes time in; naive values are China Standard Time (UTC+8)."""

from __future__ import annotations

import datetime as dt

CST = dt.timezone(dt.timedelta(hours=8), "CST")


def aware(at: dt.datetime) -> dt.datetime:
    """``at`` as an aware datetime; a naive value is read as CST (docs/architecture.md)."""
    if not isinstance(at, dt.datetime):
        raise TypeError(f"need a datetime, got {type(at).__name__}")
    return at if at.tzinfo is not None else at.replace(tzinfo=CST)


def local_date(at: dt.datetime) -> dt.date:
    """The CST calendar date of a moment (licence validity dates are CST dates)."""
    return aware(at).astimezone(CST).date()


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
