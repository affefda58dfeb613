"""Great Expectations over DuckDB: a datasource type that returns real results.

Root cause of the "GX over duckdb_engine returns nothing" bug
-------------------------------------------------------------
``SqlAlchemyExecutionEngine.execute_query`` (great_expectations 1.x,
``execution_engine/sqlalchemy_execution_engine.py``) runs a statement inside
``with self.get_connection() as connection`` and returns the ``CursorResult``; the
caller fetches rows *after* the block.  ``get_connection`` keeps one persisted
connection only for the dialects in the module tuple
``_PERSISTED_CONNECTION_DIALECTS`` (sqlite, mssql, bigquery, databricks); for every
other dialect it checks a fresh connection out of the pool and returns it at the
end of the block.  Returning it makes the pool "reset" the DBAPI connection
(``rollback()``).  A DuckDB cursor is the connection itself (duckdb_engine's
``CursorWrapper`` executes on the ``DuckDBPyConnection``), and DuckDB holds one open
result per connection, so that rollback discards the pending result: GX then
fetches ``[]`` (``table.row_count`` fails with ``IndexError``, query metrics with
``TypeError``) and every expectation "fails" with an exception.

Fix (no edit to site-packages, no global monkeypatch)
------------------------------------------------------
* :class:`DuckDBExecutionEngine` subclasses the GX engine and keeps one persisted
  connection for the engine's lifetime, exactly what GX does for the dialects in
  ``_PERSISTED_CONNECTION_DIALECTS``.
* :class:`DuckDBDatasource` is a fluent ``SQLDatasource`` of type ``"duckdb"``
  (``context.data_sources.add_duckdb(...)``) whose ``execution_engine_type`` is that
  engine.  GX's ``MetaDatasource`` registers it when this module is imported.
* Regex expectations: GX picks the regex operator from ``execution_engine.
  dialect_module.dialect`` (``expectations/metrics/util.get_dialect_regex_expression``)
  and has no entry for duckdb (``dialect_module`` is None), so by default it raises
  "Regex is not supported for dialect duckdb".  duckdb_engine's dialect *is* a
  PostgreSQL dialect subclass, so the engine reports ``sqlalchemy.dialects.postgresql``
  as its dialect module, as GX does for PostgreSQL; GX then emits ``~`` / ``!~``.  In DuckDB
  ``~`` is a *full* match (``regexp_full_match``) while in PostgreSQL it is a search,
  so the dialect's compiler renders those two operators as ``regexp_matches`` (a
  search, PostgreSQL semantics).  The dialect is registered with SQLAlchemy as
  ``duckdb+onewindow`` and is used only by engines created with that URL, so other
  users of duckdb_engine in the process are not affected.
"""

from __future__ import annotations

import contextlib
from typing import Any, Generator, Literal, Type

import duckdb_engine
import sqlalchemy as sa
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource
from great_expectations.execution_engine.sqlalchemy_execution_engine import (
    SqlAlchemyExecutionEngine,
)
from sqlalchemy.dialects import postgresql, registry

DRIVERNAME = "duckdb+onewindow"

_REGEX_SEARCH_OPS = {"~": "", "!~": "NOT "}


class _DuckDBCompiler(duckdb_engine.Dialect.statement_compiler):  # type: ignore[misc,name-defined]
    """Render PostgreSQL's regex-search operators with DuckDB's search function."""

    def visit_custom_op_binary(self, element: Any, operator: Any, **kw: Any) -> str:
        prefix = _REGEX_SEARCH_OPS.get(getattr(operator, "opstring", None))
        if prefix is None:
            return super().visit_custom_op_binary(element, operator, **kw)
        left = self.process(element.left, **kw)
        right = self.process(element.right, **kw)
        return f"{prefix}regexp_matches({left}, {right})"


class OneWindowDuckDBDialect(duckdb_engine.Dialect):
    """duckdb_engine's dialect with PostgreSQL regex-search semantics for ``~``/``!~``."""

    statement_compiler = _DuckDBCompiler
    supports_statement_cache = False


registry.register(DRIVERNAME.replace("+", "."), __name__, "OneWindowDuckDBDialect")

class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """GX SQL engine that keeps one DuckDB connection so fetched results survive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # GX's POSTGRESQL branch does the same; duckdb_engine's dialect is a PG subclass.
        self.dialect_module = postgresql

    @contextlib.contextmanager
    def get_connection(self) -> Generator[sa.Connection, None, None]:
        # Same behaviour GX gives the dialects in _PERSISTED_CONNECTION_DIALECTS:
        # never hand the connection back to the pool while a result is pending.
        if self._connection is None or self._connection.closed:
            self._connection = self.engine.connect()
        yield self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


class DuckDBDatasource(SQLDatasource):
    """Fluent GX datasource for a DuckDB database (``duckdb+onewindow:///path``)."""

    type: Literal["duckdb"] = "duckdb"  # type: ignore[assignment]

    @property
    def execution_engine_type(self) -> Type[SqlAlchemyExecutionEngine]:
        return DuckDBExecutionEngine


def connection_string(database: str) -> str:
    """SQLAlchemy URL for a DuckDB database file (or ``:memory:name``) using the fixed dialect."""
    return f"{DRIVERNAME}:///{database}"
