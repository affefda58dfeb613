"""The embedded service store: one SQLite file, ``layout.service / "service.sqlite"``.

WAL journal, one connection per process guarded by a lock (requests run in a thread
pool), ``BEGIN IMMEDIATE`` around every read-then-write so the usage-log chain stays
linear even when a sealing job in another process writes too. Everything but the
connection and the dialect pieces is the shared SQL of :mod:`exchange.store.sql`.

Usage-log appends are group-committed (:mod:`exchange.store.logwriter`): callers queue a
record and wait for the commit of the batch that holds it — on the event loop that
submitted it for ``async`` routes, in one writer thread for callers in threads. The writer
assigns ``seq`` and the chain hashes in order and commits each batch in one transaction.
A caller returns only after its record is committed, so an answer is never sent for a
read whose record could still be lost to a crash of the service (``synchronous=NORMAL``
in WAL mode: a committed transaction survives a crash of the process; only a power loss
before the next checkpoint can drop the most recent ones).

Each writer has a connection of its own, so reads on the main connection never wait for
a log commit (WAL: readers do not block on the writer).

Caches and their invalidation (the ``store_generation`` row, 50 ms across processes; accepted
applications kept once found): see :mod:`exchange.store.sql`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from exchange.store.base import CST, GENESIS, LogRecord, chain_hash
from exchange.store.base import stored_time as _iso
from exchange.store.logwriter import LogWriter, LoopLogWriter, log_template
from exchange.store.sql import SqlStore

# Importable from here as before the backends shared their SQL.
__all__ = ["CST", "GENESIS", "LogWriter", "SqliteStore", "_iso", "chain_hash", "log_template"]


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class SqliteStore(SqlStore):
    """:class:`~exchange.store.base.ServiceStore` on one SQLite file."""

    _BEGIN = "BEGIN IMMEDIATE"  # the write lock at once: the chain and every read-then-write stay serial
    _INTEGRITY = sqlite3.IntegrityError
    _NEWEST_APPLICATIONS = "rowid DESC"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(self.path)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys=ON")
        super().__init__()
        self._loop_writer = LoopLogWriter(self)

    @staticmethod
    def _json_text(*path: str) -> str:
        return f"json_extract(record, '$.{'.'.join(path)}')"

    def _connect_writer(self) -> sqlite3.Connection:
        """The log writer's own connection (same pragmas)."""
        return _connect(self.path)

    def submit_log_async(self, record: dict[str, Any], *, at: dt.datetime) -> "asyncio.Future[LogRecord]":
        """:meth:`submit_log` from the event loop: committed on that loop (``exchange.store.logwriter``)."""
        return self._loop_writer.submit(record, at, asyncio.get_running_loop())

    def _close_writers(self) -> None:
        self._loop_writer.stop()  # both commit what is queued first
        super()._close_writers()
