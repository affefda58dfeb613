"""The service's own store: what the front desk and the API write (never the library or a snapshot).

One interface, :class:`~exchange.store.base.ServiceStore`, one implementation in portable
SQL (:mod:`exchange.store.sql`) and two backends, chosen by ``ONEWINDOW_STORE_URL``
(:func:`open_store`):

- unset (the embedded default): one SQLite file under ``layout.service``
  (:class:`~exchange.store.sqlite.SqliteStore`). SQLite rather than DuckDB because the
  service appends one small row per request from many threads and a sealing job may run
  in another process: SQLite's WAL mode gives cross-process locking and cheap single-row
  commits, DuckDB allows one writing process.
- ``postgresql://user:password@host:5432/onewindow_store`` (the production shape): one
  PostgreSQL database that several service replicas write at once
  (:class:`~exchange.store.postgres.PostgresStore`).
"""

from __future__ import annotations

import os

from exchange.store.base import (Application, AuthCode, Client, LogRecord, Seal, ServiceStore,
                                 StoreError)
from exchange.store.sql import SqlStore
from exchange.store.sqlite import SqliteStore
from warehouse.datadir import Layout

ENV_URL = "ONEWINDOW_STORE_URL"

__all__ = ["ENV_URL", "Application", "AuthCode", "Client", "LogRecord", "Seal", "ServiceStore", "SqlStore",
           "SqliteStore", "StoreError", "open_store"]


def open_store(layout: Layout, url: str | None = None) -> SqlStore:
    """The service store: ``url`` or ``ONEWINDOW_STORE_URL`` (PostgreSQL), else ``layout.service / "service.sqlite"``.

    The schema is created or migrated on open (:mod:`exchange.store.schema`).
    """
    url = (url if url is not None else os.environ.get(ENV_URL, "")).strip()
    if not url:
        return SqliteStore(layout.service / "service.sqlite")
    from exchange.store.postgres import PostgresStore

    return PostgresStore(url)
