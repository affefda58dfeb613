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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_backend(request, monkeypatch) -> Iterator[str]:
    """Run the test on each service-store backend (``pytestmark = pytest.mark.usefixtures("store_backend")``).

    ``sqlite``: the embedded file under the layout (``ONEWINDOW_STORE_URL`` unset);
    ``postgres``: a fresh database on the session's server in ``ONEWINDOW_STORE_URL``, so
    every ``open_store`` of the test (the app, the CLI, its subprocesses) uses it. Stores the
    test left open are closed afterwards (their connections count against the server's limit).
    """
    from exchange.store import ENV_URL

    if request.param == "sqlite":
        monkeypatch.delenv(ENV_URL, raising=False)
        yield "sqlite"
        return
    from exchange.store.postgres import PostgresStore

    monkeypatch.setenv(ENV_URL, request.getfixturevalue("pg_dsn"))
    opened: list[PostgresStore] = []
    init = PostgresStore.__init__

    def tracked(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(PostgresStore, "__init__", tracked)
    yield "postgres"
    for store in opened:
        store.close()


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
