"""The service store on PostgreSQL (production shape): several replicas write one store.

Selected by ``ONEWINDOW_STORE_URL=postgresql://user:password@host:5432/onewindow_store``
(:func:`exchange.store.open_store`); everything but the connection and the dialect
pieces is the shared SQL of :mod:`exchange.store.sql` (psycopg 3; ``?`` parameters become
``%s`` here). The schema is created and migrated on open under an advisory lock, so
replicas starting together do not race.

Concurrency across replicas, where SQLite had its one write lock:

- Every write transaction starts by bumping ``store_generation`` (the row lock
  serialises read-then-writes): a 用证码 redeemed by two replicas at once is used by
  exactly one; the other waits for the row, then reads ``used_at`` and is refused
  (``authorisation_code_used``).
- Each usage-log batch takes ``pg_advisory_xact_lock(CHAIN_LOCK)`` before it reads the
  last record, so the batches of every replica extend one linear chain; the lock goes
  with the transaction (commit, rollback, or a connection the server drops).
- Caches: the same generation counter, re-read at most every 50 ms, so a revoked key
  or grant stops working on every replica within 50 ms of the commit.

Durability is PostgreSQL's commit: a caller gets its :class:`LogRecord` only after
``COMMIT`` returned, i.e. (with the default ``synchronous_commit=on``) once the record is
in the server's flushed WAL. The event loop's records are committed by
:class:`~exchange.store.pgwriter.AsyncLogWriter` on an ``AsyncConnection`` (the loop never
blocks on the server); callers in threads by the thread writer of
:mod:`exchange.store.logwriter`.

Every connection sets ``idle_in_transaction_session_timeout`` (``IDLE_TX_TIMEOUT``): a
replica that stops in the middle of a batch (stopped process, lost network) cannot hold
the chain lock for longer than that; the server ends its session and rolls it back.
A connection the server dropped is opened again on the next use.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.pq import TransactionStatus

from exchange.store.base import LogRecord, StoreError
from exchange.store.pgwriter import AsyncLogWriter
from exchange.store.sql import SqlStore

CHAIN_LOCK = 0x6F77_0001  # advisory lock key: the usage-log chain ("ow", 1)
SCHEMA_LOCK = 0x6F77_0002  # advisory lock key: migrations
IDLE_TX_TIMEOUT = "10s"
SCHEMES = ("postgresql", "postgres")


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


@functools.lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """Portable ``?`` parameters as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


_PORTABLE_TYPES = ((re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'), (re.compile(r"\bINTEGER\b"), "BIGINT"),
                   (re.compile(r"\bBLOB\b"), "BYTEA"))


@functools.lru_cache(maxsize=64)
def _row_class(names: tuple[str, ...]) -> type:
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)  # the first of equal names, as sqlite3.Row

    class Row(tuple):
        """A result row read by position or by column name, like ``sqlite3.Row`` (``dict(row)`` works)."""

        __slots__ = ()

        def __getitem__(self, key: Any) -> Any:
            return tuple.__getitem__(self, index[key] if isinstance(key, str) else key)

        def keys(self) -> list[str]:
            return list(index)

    return Row


def _row_factory(cursor: Any) -> Any:
    """psycopg row factory: :func:`_row_class` rows."""
    desc = cursor.description
    return _row_class(tuple(c.name for c in desc)) if desc else tuple


def unavailable(location: str, exc: Exception) -> StoreError:
    """The store's error for a server that cannot be reached or dropped the connection (retry later)."""
    return StoreError(f"service store at {location} (ONEWINDOW_STORE_URL) unavailable: {str(exc).strip()}",
                      code="store_unavailable")


def connect(url: str, location: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(url, autocommit=True, row_factory=_row_factory, application_name="onewindow-store")
    except psycopg.OperationalError as exc:
        raise unavailable(location, exc) from None
    conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_TX_TIMEOUT}'")
    return conn


async def connect_async(url: str, location: str) -> psycopg.AsyncConnection:
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, application_name="onewindow-store")
    except psycopg.OperationalError as exc:
        raise unavailable(location, exc) from None
    await conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_TX_TIMEOUT}'")
    return conn


class PgConnection:
    """A psycopg connection used like ``sqlite3.Connection`` by the shared SQL.

    ``execute`` takes ``?`` parameters and returns the cursor. A connection the server
    dropped is opened again: a ``BEGIN`` or a read outside a transaction that finds it
    dropped runs again on the new one; a statement inside a transaction fails (the ``ROLLBACK``
    after it has nothing left to roll back), and the next one reconnects.
    """

    def __init__(self, url: str, location: str) -> None:
        self.url, self.location = url, location
        self._conn = connect(url, location)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        if self._conn.closed:
            if sql == "ROLLBACK":
                return None
            self._conn = connect(self.url, self.location)
        idle = self._conn.info.transaction_status == TransactionStatus.IDLE
        try:
            return self._run(sql, args)
        except psycopg.OperationalError as exc:
            if not (idle and self._conn.closed and (sql == "BEGIN" or sql.startswith("SELECT"))):
                raise unavailable(self.location, exc) from exc
        # The server dropped the connection before this statement, which starts a transaction or
        # only reads: nothing of it happened, so it is safe to run again on a new connection.
        self._conn = connect(self.url, self.location)
        try:
            return self._run(sql, args)
        except psycopg.OperationalError as exc:
            raise unavailable(self.location, exc) from exc

    def _run(self, sql: str, args: Sequence[Any]) -> Any:
        return self._conn.execute(pg_sql(sql), args) if args else self._conn.execute(sql)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            with self._conn.cursor() as cur:
                cur.executemany(pg_sql(sql), rows)
        except psycopg.OperationalError as exc:
            raise unavailable(self.location, exc) from exc

    @property
    def in_transaction(self) -> bool:
        return not self._conn.closed and self._conn.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self._conn.close()


class PostgresStore(SqlStore):
    """:class:`~exchange.store.base.ServiceStore` on one PostgreSQL database."""

    _LOCK_CHAIN = f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})"
    _LOCK_SCHEMA = f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})"
    _INSTR = "strpos"
    _INTEGRITY = psycopg.IntegrityError

    def __init__(self, url: str) -> None:
        if urlsplit(url).scheme not in SCHEMES:
            raise StoreError(f"ONEWINDOW_STORE_URL must be a postgresql:// URL, not {redact(url)!r}",
                             code="store_url_invalid")
        self.url, self.location = url, redact(url)
        self._db = PgConnection(url, self.location)
        super().__init__()
        self._async_writer = AsyncLogWriter(self)

    @staticmethod
    def _ddl(portable: str) -> str:
        for pattern, pg_type in _PORTABLE_TYPES:
            portable = pattern.sub(pg_type, portable)
        return portable

    @staticmethod
    def _json_text(*path: str) -> str:
        return f"(record::jsonb #>> '{{{','.join(path)}}}')"

    def _connect_writer(self) -> PgConnection:
        return PgConnection(self.url, self.location)

    async def _connect_async(self) -> psycopg.AsyncConnection:
        return await connect_async(self.url, self.location)

    def submit_log_async(self, record: dict[str, Any], *, at: dt.datetime) -> "asyncio.Future[LogRecord]":
        """:meth:`submit_log` from the event loop: committed on that loop's own connection
        (:class:`~exchange.store.pgwriter.AsyncLogWriter`)."""
        return self._async_writer.submit(record, at, asyncio.get_running_loop())

    def _close_writers(self) -> None:
        self._async_writer.stop()  # both commit what is queued first
        super()._close_writers()
