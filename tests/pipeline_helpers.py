"""Helpers for pipeline tests: run the steps directly (no Airflow), read the library."""

from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager

from warehouse.datadir import ENV_VAR, Layout


@contextmanager
def data_dir(layout: Layout):
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(layout.root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


def run_steps(layout: Layout, source_id: str, day: dt.date) -> dict:
    """extract → validate → load for one source and day, as the DAG tasks would."""
    from exchange.pipeline import extract_step, load_step, validate_step
    from exchange.sources.interval import Interval

    interval = Interval.for_day(day)
    with data_dir(layout):
        extracted = extract_step(source_id, interval.key)
        checked = validate_step(extracted, run_id=f"test_{source_id}_{interval.key}")
        loaded = load_step(checked, run_id=f"test_{source_id}_{interval.key}", finished_at=interval.end.isoformat())
    return {"extracted": extracted, "checked": checked, "loaded": loaded}


def library_hash(layout: Layout) -> str:
    from warehouse.duck import connect
    from warehouse.schema import content_hash

    con = connect(layout.library, read_only=True)
    try:
        return content_hash(con)
    finally:
        con.close()


def query(path, sql: str, params=None) -> list[tuple]:
    from warehouse.duck import connect

    con = connect(path, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
