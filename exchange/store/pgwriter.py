"""Group commit of the event loop's usage-log records on PostgreSQL, awaited on the loop.

Each event loop gets one ``psycopg.AsyncConnection`` and one drain task. The records
submitted while the loop runs a round of callbacks wait in the loop's queue; the task takes
everything queued (at most ``max_batch``) and commits it as one transaction in two round
trips, each a pipeline: ``BEGIN`` + the chain lock + the last record, then the inserts +
``COMMIT``. While it awaits the server the loop serves other requests and the next batch
fills up. A caller's future resolves only after its batch's ``COMMIT`` returned, or fails
with the batch's error (nothing of a failed batch is written).

Why not the thread writer of :mod:`exchange.store.logwriter` for the loop too: measured
in ``docs/access-and-audit.md`` (a thread that must win the GIL back from the busy loop
after every round trip).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
from typing import TYPE_CHECKING, Any

from psycopg.pq import TransactionStatus

from exchange.store.logwriter import _closed, _settle, log_template
from exchange.store.sql import INSERT_RECORD_SQL, LAST_RECORD_SQL, chain_records, record_rows

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

    from exchange.store.postgres import PostgresStore


async def append_batch(store: "PostgresStore", conn: "psycopg.AsyncConnection",
                       batch: list[tuple[str, str, str]]) -> list[Any]:
    """:meth:`SqlStore._append_batch` on an ``AsyncConnection``, in two pipelined round trips."""
    from exchange.store.postgres import pg_sql

    try:
        async with conn.pipeline() as pipeline:
            await conn.execute("BEGIN")
            await conn.execute(store._LOCK_CHAIN)  # type: ignore[arg-type]
            cur = await conn.execute(LAST_RECORD_SQL)
            await pipeline.sync()
            out = chain_records(await cur.fetchone(), batch)
            await cur.executemany(pg_sql(INSERT_RECORD_SQL), record_rows(out))
            await conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):  # a connection left in a transaction is dropped by the caller
            if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                await conn.execute("ROLLBACK")
        raise
    return out


def usable(conn: "psycopg.AsyncConnection") -> bool:
    """Open and outside any transaction: ready for the next batch."""
    return not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE


class _LoopQueue:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.conn: Any = None
        self.pending: list[tuple[tuple[str, str, str], asyncio.Future]] = []
        self.task: asyncio.Task | None = None


class AsyncLogWriter:
    """Group commit on the submitting event loop, on that loop's ``AsyncConnection`` (module doc)."""

    def __init__(self, store: "PostgresStore", *, max_batch: int = 512) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self.batches = 0  # committed batches

    def submit(self, record: dict[str, Any], at: dt.datetime,
               loop: asyncio.AbstractEventLoop) -> "asyncio.Future[Any]":
        """An asyncio future of ``loop`` (the running loop) that holds the :class:`LogRecord` once committed."""
        template = log_template(record, at)
        q = self._queues.get(loop)
        if q is None:
            with self._lock:
                if self._stopped:
                    raise _closed(self.store, "")
                q = self._queues.setdefault(loop, _LoopQueue(loop))
        fut = loop.create_future()
        q.pending.append((template, fut))
        if q.task is None:
            q.task = loop.create_task(self._drain(q))
        return fut

    async def _drain(self, q: _LoopQueue) -> None:
        try:
            while q.pending:
                batch, q.pending = q.pending[:self.max_batch], q.pending[self.max_batch:]
                written: list[Any]
                try:
                    if q.conn is None or q.conn.closed:
                        q.conn = await self.store._connect_async()
                    written = await append_batch(self.store, q.conn, [t for t, _ in batch])
                except BaseException as exc:  # noqa: BLE001 — handed to every waiting caller
                    if q.conn is not None and not usable(q.conn):
                        conn, q.conn = q.conn, None
                        with contextlib.suppress(Exception):
                            await conn.close()
                    if isinstance(exc, asyncio.CancelledError):
                        for _, fut in batch:
                            fut.cancel()
                        raise
                    written = [exc] * len(batch)
                else:
                    self.batches += 1
                _settle([(fut, outcome) for (_, fut), outcome in zip(batch, written)])
        finally:
            q.task = None
            if self._stopped and q.conn is not None:
                conn, q.conn = q.conn, None
                await conn.close()

    def stop(self) -> None:
        """Commit what is queued, then close the connections (see :meth:`_stop_queue`)."""
        with self._lock:
            self._stopped = True
            queues, self._queues = list(self._queues.values()), {}
        for q in queues:
            self._stop_queue(q)

    def _stop_queue(self, q: _LoopQueue) -> None:
        """A batch in flight finishes on its loop, with what is queued behind it, and closes the
        connection (waited for from another thread; from the loop's own thread it runs when the
        loop does). Without one, the queued records are committed here on a connection of its own."""
        running = not q.loop.is_closed() and q.loop.is_running()
        if q.task is not None:
            on_loop = running and _loop_thread_is_current(q.loop)
            if running and not on_loop:
                done = threading.Event()
                q.loop.call_soon_threadsafe(lambda: q.task.add_done_callback(lambda _: done.set())
                                            if q.task is not None else done.set())
                done.wait(60)
            return
        batch, q.pending = q.pending, []
        if batch:
            outcomes: list[Any]
            try:
                db = self.store._connect_writer()
                try:
                    outcomes = self.store._append_batch(db, [t for t, _ in batch])
                finally:
                    db.close()
            except BaseException as exc:  # noqa: BLE001
                outcomes = [exc] * len(batch)
            pairs = list(zip((f for _, f in batch), outcomes))
            if not q.loop.is_closed():
                q.loop.call_soon_threadsafe(_settle, pairs)
        if q.conn is not None and running:
            conn, q.conn = q.conn, None
            asyncio.run_coroutine_threadsafe(conn.close(), q.loop)


def _loop_thread_is_current(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
