"""DuckDB's memory bound and spill folder come from the environment when set, and spill for real."""

from __future__ import annotations

import duckdb
import pytest

from warehouse.duck import MEMORY_LIMIT_ENV, TEMP_DIR_ENV, connect

BIG = ("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s FROM range(3000000) r(i)",
       "SELECT min(s), count(*) FROM (SELECT s FROM t ORDER BY s DESC)")  # ~300 MB through a 64 MB bound


def test_without_the_variables_duckdb_keeps_its_own_default(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    monkeypatch.delenv(TEMP_DIR_ENV, raising=False)
    setting = "SELECT current_setting('memory_limit')"
    assert connect().execute(setting).fetchone() == duckdb.connect().execute(setting).fetchone()


def test_a_bounded_connection_spills_what_does_not_fit_into_its_folder(monkeypatch, tmp_path):
    spill = tmp_path / "spill"
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "64MB")
    monkeypatch.setenv(TEMP_DIR_ENV, str(spill))
    con = connect(threads=1)  # in memory: only the spill folder lets this finish
    assert con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone() == (
        "61.0 MiB", str(spill))
    con.execute(BIG[0])
    first, count = con.execute(BIG[1]).fetchone()
    assert count == 3_000_000 and len(first) == 64
    assert con.execute("SELECT max(temporary_storage_bytes) FROM duckdb_memory()").fetchone()[0] > 64 * 2**20

    # the same bound with nowhere to spill fails, naming the limit
    nowhere = duckdb.connect(config={"memory_limit": "64MB", "threads": "1", "temp_directory": ""})
    with pytest.raises(duckdb.OutOfMemoryException, match="61.0 MiB"):
        nowhere.execute(BIG[0])
