"""Shared fixtures: a real PostgreSQL server and a real S3-compatible server per test session, data layouts."""

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


@pytest.fixture(scope="session")
def s3_server() -> Iterator["object"]:
    """An S3-compatible server (moto) on loopback, started for this test session."""
    from tests.s3server import start_s3

    server = start_s3()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def s3_lake_env(s3_server, monkeypatch) -> dict[str, str]:
    """Point the lake at a fresh bucket on the session's S3 server (created with `onewindow lake init`'s code)."""
    from warehouse.datadir import Layout
    from warehouse.lake import Lake

    env = s3_server.lake_env(f"s3://lake-{os.getpid()}-{next(_db_counter)}/hub")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    Lake.from_env(Layout.from_env()).init()
    return env


@pytest.fixture()
def layout(tmp_path):
    """An empty data directory laid out like ./var."""
    from warehouse.datadir import Layout

    return Layout(tmp_path / "var").ensure()
