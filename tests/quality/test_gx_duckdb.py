"""GX over DuckDB: the stock SQL datasource loses results; quality.gx_duckdb does not."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
gx = pytest.importorskip("great_expectations")

from quality import gx_duckdb  # noqa: E402

VALUES = ["a1", "b2", None, "zz", "c3"]


@pytest.fixture()
def db_file(tmp_path: Path) -> str:
    path = tmp_path / "t.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in VALUES])
    con.close()
    return str(path)


def _batch(add, db_url: str):
    context = gx.get_context(mode="ephemeral")
    datasource = add(context)(name="d", connection_string=db_url)
    batch = datasource.add_table_asset("t", table_name="t").add_batch_definition_whole_table(
        "all").get_batch()
    return datasource, batch


def _counts(batch) -> dict[str, object]:
    expectations = {
        "rows": gx.expectations.ExpectTableRowCountToEqual(value=len(VALUES)),
        "not_null": gx.expectations.ExpectColumnValuesToNotBeNull(column="x"),
        "anchored": gx.expectations.ExpectColumnValuesToMatchRegex(column="x", regex="^[a-z][0-9]$"),
        # unanchored: PostgreSQL/Python semantics is a *search* ("contains a digit")
        "search": gx.expectations.ExpectColumnValuesToMatchRegex(column="x", regex="[0-9]"),
        "not_match": gx.expectations.ExpectColumnValuesToNotMatchRegex(column="x", regex="z"),
        "rows_query": gx.expectations.UnexpectedRowsExpectation(
            unexpected_rows_query="SELECT * FROM {batch} WHERE x = 'zz'"),
    }
    out: dict[str, object] = {}
    for name, expectation in expectations.items():
        res = batch.validate(expectation, result_format="BASIC")
        out[name] = res.result.get("unexpected_count", res.result.get("observed_value", "error"))
    return out


EXPECTED = {"rows": 5, "not_null": 1, "anchored": 1, "search": 1, "not_match": 1, "rows_query": 1}


def test_stock_sql_datasource_over_duckdb_loses_results(db_file: str) -> None:
    """Pins the bug the fix exists for; if GX fixes it upstream this fails — drop the patch then."""
    datasource, batch = _batch(lambda c: c.data_sources.add_sql, f"duckdb:///{db_file}")
    counts = _counts(batch)
    datasource.get_execution_engine().close()
    assert counts != EXPECTED
    assert counts["rows"] == "error"  # table.row_count comes back as []
    assert counts["search"] == "error"  # "Regex is not supported for dialect duckdb"


def test_fixed_datasource_counts_correctly(db_file: str) -> None:
    datasource, batch = _batch(lambda c: c.data_sources.add_duckdb,
                               gx_duckdb.connection_string(db_file))
    try:
        assert _counts(batch) == EXPECTED
    finally:
        datasource.get_execution_engine().close()


def test_engine_keeps_one_connection(db_file: str) -> None:
    engine = gx_duckdb.DuckDBExecutionEngine(connection_string=gx_duckdb.connection_string(db_file))
    try:
        with engine.get_connection() as first, engine.get_connection() as second:
            assert first is second
        result = engine.execute_query(gx_duckdb.sa.text("SELECT count(*) FROM t"))
        # the result survives leaving get_connection(): this is what the stock engine loses
        assert result.fetchall() == [(5,)]
    finally:
        engine.close()


def test_regex_operators_compile_to_regexp_matches() -> None:
    import sqlalchemy as sa

    col = sa.column("x")
    dialect = gx_duckdb.OneWindowDuckDBDialect()
    positive = sa.BinaryExpression(col, sa.literal("[0-9]"), sa.custom_op("~"))
    negative = sa.BinaryExpression(col, sa.literal("[0-9]"), sa.custom_op("!~"))
    other = sa.BinaryExpression(col, sa.literal(1), sa.custom_op("@>"))
    assert str(positive.compile(dialect=dialect)).startswith("regexp_matches(x, ")
    assert str(negative.compile(dialect=dialect)).startswith("NOT regexp_matches(x, ")
    assert "@>" in str(other.compile(dialect=dialect))


def test_duckdb_tilde_is_a_full_match() -> None:
    """Why ``~`` must not reach DuckDB for GX regexes: it is regexp_full_match there."""
    con = duckdb.connect()
    assert con.execute("SELECT 'a1' ~ '[0-9]', regexp_matches('a1', '[0-9]')").fetchone() == (
        False, True)
