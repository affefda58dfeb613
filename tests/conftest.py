"""Shared fixtures: a real PostgreSQL server per test session, data layouts."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("ONEWINDOW_ENV", "development")

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator["object"]:
    """A real PostgreSQL server on loopback, started for this test session."""
    from tests.pgserver import start_postgres

    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def pg_dsn(pg_server) -> str:
    """DSN of a fresh, empty database on the session's PostgreSQL server."""
    return pg_server.create_database(f"t{os.getpid()}_{next(_db_counter)}")


@pytest.fixture()
def layout(tmp_path):
    """An empty data directory laid out like ./var."""
    from warehouse.datadir import Layout

    return Layout(tmp_path / "var").ensure()
