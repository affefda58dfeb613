"""The service's own store: what the front desk and the API write (never the library or a snapshot).

One interface, :class:`~exchange.store.base.ServiceStore`; the embedded backend is a
single SQLite file under ``layout.service`` (:class:`~exchange.store.sqlite.SqliteStore`).
SQLite rather than DuckDB because the service appends one small row per request from
many threads and a sealing job may run in another process: SQLite's WAL mode gives
cross-process locking and cheap single-row commits, DuckDB allows one writing process.
"""

from __future__ import annotations

from exchange.store.base import (Application, AuthCode, Client, LogRecord, Seal, ServiceStore,
                                 StoreError)
from exchange.store.sqlite import SqliteStore, open_store

__all__ = ["Application", "AuthCode", "Client", "LogRecord", "Seal", "ServiceStore", "SqliteStore",
           "StoreError", "open_store"]
