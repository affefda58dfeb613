"""Department connectors against the simulated systems: SQLite and a real PostgreSQL, REST on loopback, GBK CSV, XLSX."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

import pyarrow.parquet as pq
import pytest

from exchange.departments import BASE_DATE, simulate
from exchange.exceptions import ExtractError
from exchange.sources.columns import META_COLUMNS, RAW_COLUMNS
from exchange.sources.extract import extract
from exchange.sources.interval import Interval
from exchange.sources.registry import get_source

DAY0 = Interval.for_day(BASE_DATE)
DAY1 = Interval.for_day(BASE_DATE + dt.timedelta(days=1))


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from warehouse.datadir import Layout

    layout = Layout(tmp_path_factory.mktemp("sources") / "var").ensure()
    simulate(layout, persons=1500, seed=11, day=0)
    simulate(layout, persons=1500, seed=11, day=1)
    return layout


def _count_sqlite(path, table, where="1=1"):
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


def test_sql_source_sqlite_full_then_incremental(sim):
    src = get_source("gongan_population")
    first = extract(src, DAY0, sim, watermark=None)
    db = sim.departments / "gongan" / "population.sqlite"
    assert first.rows == _count_sqlite(db, "persons", "updated_at < '2026-11-02'")
    table = pq.read_table(first.path)
    assert table.column_names == list(RAW_COLUMNS["persons"]) + list(META_COLUMNS)
    # day 1 with the watermark at the end of day 0: only day-1 changes
    second = extract(src, DAY1, sim, watermark="2026-11-02 00:00:00")
    assert second.rows == _count_sqlite(db, "persons", "updated_at >= '2026-11-02' AND updated_at < '2026-11-03'")
    assert 0 < second.rows < first.rows
    assert first.path != second.path  # one partition per interval


@pytest.mark.postgres
def test_sql_source_postgres_matches_sqlite(tmp_path, pg_dsn, monkeypatch):
    """The same seed written to a real PostgreSQL server extracts the same rows through postgres_scanner."""
    from warehouse.datadir import Layout

    lite = Layout(tmp_path / "lite").ensure()
    pg = Layout(tmp_path / "pg").ensure()
    simulate(lite, persons=800, seed=5, day=0)
    simulate(pg, persons=800, seed=5, day=0, pg_dsn=pg_dsn)
    src = get_source("gongan_population")
    a = pq.read_table(extract(src, DAY0, lite, watermark=None).path).drop(["_interval"])
    monkeypatch.setenv("AIRFLOW_CONN_GONGAN_POPULATION_DB", pg_dsn)
    b = pq.read_table(extract(src, DAY0, pg, watermark=None).path).drop(["_interval"])
    key = [("id_number", "ascending"), ("updated_at", "ascending"), ("name", "ascending")]
    assert a.num_rows == b.num_rows > 800
    assert a.sort_by(key).equals(b.sort_by(key))


def test_rest_source_pages_and_filters(sim, monkeypatch):
    from exchange.departments.scjg_api import serve_in_background

    db = sim.departments / "scjg" / "registry.sqlite"
    with serve_in_background(db, host="127.0.0.1", port=0) as handle:
        monkeypatch.setenv("AIRFLOW_CONN_SCJG_API", handle.url)
        src = dataclasses.replace(get_source("scjg_enterprises"),
                                  options={**get_source("scjg_enterprises").options, "page_size": "37"})
        full = extract(src, DAY0, sim, watermark=None)
        assert full.rows == _count_sqlite(db, "enterprises", "updated_at < '2026-11-02'") > 37
        inc = extract(src, DAY1, sim, watermark="2026-11-02 00:00:00")
        assert inc.rows == _count_sqlite(db, "enterprises", "updated_at >= '2026-11-02' AND updated_at < '2026-11-03'")
        food = extract(get_source("scjg_food_licences"), DAY0, sim, watermark=None)
        assert food.rows == _count_sqlite(db, "food_licences", "updated_at < '2026-11-02'") > 0


def test_rest_source_down_is_a_clear_retryable_error(sim, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SCJG_API", "http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(ExtractError) as err:
        extract(get_source("scjg_enterprises"), DAY0, sim, watermark=None)
    assert err.value.retryable and "scjg_enterprises" in str(err.value)


def test_gbk_csv_drops(sim):
    src = get_source("minzheng_marriages")
    day0 = extract(src, DAY0, sim, watermark=None)
    t = pq.read_table(day0.path)
    assert t.num_rows > 0
    names = [n for n in t.column("spouse1_name").to_pylist() if n]
    # decoded from GBK: real Chinese names, not mojibake
    assert sum(all("\u4e00" <= ch <= "\u9fff" or ch == "·" for ch in n) for n in names) > 0.9 * len(names)
    day1 = extract(src, DAY1, sim, watermark="2026-11-02 00:00:00")
    raw = (sim.departments / "minzheng" / "drops" / "marriages_20261102.csv").read_bytes()
    assert day1.rows == raw.decode("gbk", errors="replace").strip().count("\n")  # header excluded


def test_xlsx_drops(sim):
    import openpyxl

    src = get_source("zrzy_property")
    day1 = extract(src, DAY1, sim, watermark="2026-11-02 00:00:00")
    wb = openpyxl.load_workbook(sim.departments / "zrzy" / "drops" / "property_20261102.xlsx", read_only=True)
    data_rows = sum(1 for row in wb.active.iter_rows(values_only=True) if any(v is not None for v in row)) - 1
    assert day1.rows == data_rows > 0
    t = pq.read_table(day1.path)
    assert set(RAW_COLUMNS["properties"]) <= set(t.column_names)


def test_missing_drop_folder_says_what_to_do(tmp_path):
    from warehouse.datadir import Layout

    with pytest.raises(ExtractError, match="simulate the departments first"):
        extract(get_source("zrzy_property"), DAY0, Layout(tmp_path).ensure(), watermark=None)
