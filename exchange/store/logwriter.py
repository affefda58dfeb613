"""Group commit of usage-log records: on the event loop that asks, or in one writer thread.

A caller serialises its record (:func:`log_template`) and waits for the commit of the
batch that holds it; the writer assigns ``seq`` and the chain hashes in order and commits
each batch in one ``BEGIN IMMEDIATE`` transaction (:meth:`SqliteStore._append_batch`).
A caller continues only after its batch's ``COMMIT`` returned, or fails with the batch's
error (nothing of a failed batch is written): no answer without its record.

Two writers share that one transaction, each with a connection of its own:

- :class:`LoopLogWriter` for ``async`` routes: the records submitted while the event loop
  runs one round of ready callbacks are committed in the next round, **on the loop's own
  thread**. No thread hand-off: a writer thread has to win the GIL back from the busy loop
  after every SQLite call, which held commits (and every GIL-releasing call of the loop,
  Ed25519 signing included) for up to the 5 ms switch interval. The loop never waits on
  SQLite's lock either: its connection does not wait (``busy_timeout`` 0); when another
  connection holds the write lock (the thread writer, an admin command, another worker
  process) the batch stays queued and is retried shortly after, while the loop serves
  other requests. The loop's connection does not checkpoint the WAL
  (``wal_autocheckpoint=0``); a checkpoint thread does, so a checkpoint's fsync never
  stalls the loop.
- :class:`LogWriter` for callers in threads (``append_log`` / ``submit_log``): one daemon
  thread takes everything queued at once.

Every batch reads the last record inside its transaction, so batches from both writers,
and from other processes, form one linear chain.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from certificates.signing import canonical_json
from exchange.store.base import StoreError, stored_time

if TYPE_CHECKING:  # pragma: no cover
    from exchange.store.sql import SqlStore
    from exchange.store.sqlite import SqliteStore

_SEQ_MARK = '"seq":-1'


def log_template(record: dict[str, Any], at: dt.datetime) -> tuple[str, str, str]:
    """The record's canonical JSON split where its ``seq`` goes: (head ending in ``"seq":``, tail, day).

    Serialising happens in the caller; the writer only joins the number in.
    ``"seq":-1`` can occur only once in canonical JSON: inside a string value every quote
    is escaped, so the bare key cannot appear there.
    """
    if "seq" in record or "at" in record:
        raise StoreError("usage-log records get seq and at from the store", code="invalid_record")
    stamp = stored_time(at)
    text = canonical_json({**record, "seq": -1, "at": stamp}).decode("utf-8")
    head, mark, tail = text.partition(_SEQ_MARK)
    if not mark or _SEQ_MARK in tail:
        raise StoreError("usage-log record does not serialise with one seq", code="invalid_record")
    return head + '"seq":', tail, stamp[:10]


def _closed(store: "SqlStore", when: str) -> StoreError:
    return StoreError(f"usage log of {store.location} closed {when}", code="store_closed")


class LogWriter:
    """Group commit for callers in threads: one writer thread, batches in queue order.

    While a batch commits, the next callers' records queue up; the thread then takes all
    of them (at most ``max_batch``) at once.
    """

    def __init__(self, store: "SqlStore", *, max_batch: int = 512) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False
        self.batches = 0  # committed batches (for tests and the benchmark)

    def submit(self, record: dict[str, Any], at: dt.datetime) -> "Future[Any]":
        """A :class:`concurrent.futures.Future` that holds the :class:`LogRecord` once committed."""
        fut: Future = Future()
        if self._thread is None:
            with self._start_lock:
                if self._stopped:
                    raise _closed(self.store, "")
                if self._thread is None:
                    db = self.store._connect_writer()  # fails here, in the caller, if it cannot
                    self._thread = threading.Thread(target=self._run, args=(db,), name="usage-log-writer",
                                                    daemon=True)
                    self._thread.start()
        self._queue.put((log_template(record, at), fut))
        return fut

    def stop(self) -> None:
        with self._start_lock:
            self._stopped = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        # Anything queued after the stop mark (a caller racing the shutdown) is refused, not left waiting.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                _settle([(item[1], _closed(self.store, "before this record was written"))])

    def _run(self, db: sqlite3.Connection) -> None:
        try:
            self._loop(db)
        finally:
            db.close()

    def _loop(self, db: sqlite3.Connection) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch = []
            while True:
                if item is None:
                    stop = True
                else:
                    batch.append(item)
                if stop or len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if not batch:
                continue
            try:
                written: list[Any] = self.store._append_batch(db, [t for t, _ in batch])
            except BaseException as exc:  # noqa: BLE001 — handed to every waiting caller
                written = [exc] * len(batch)
            else:
                self.batches += 1
            _settle([(fut, outcome) for (_, fut), outcome in zip(batch, written)])


def _busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _LoopQueue:
    """The records of one event loop waiting for their commit, and that loop's connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, db: sqlite3.Connection) -> None:
        self.loop, self.db = loop, db
        self.pending: list[tuple[tuple[str, str, str], asyncio.Future]] = []
        self.scheduled = False
        self.busy_since: float | None = None
        self.lock = threading.Lock()  # a flush on the loop vs. the store closing from another thread


class LoopLogWriter:
    """Group commit on the submitting event loop (see the module doc).

    ``retry_s`` is the first wait after the write lock was busy (doubling up to 16x);
    after ``busy_limit_s`` of a busy lock the queued records fail, like the thread writer's
    30-second busy timeout. ``checkpoint_s``: how often the checkpoint thread runs a
    passive WAL checkpoint.
    """

    def __init__(self, store: "SqliteStore", *, max_batch: int = 512, retry_s: float = 0.0005,
                 busy_limit_s: float = 30.0, checkpoint_s: float = 1.0) -> None:
        self.store = store
        self.max_batch, self.retry_s, self.busy_limit_s = max_batch, retry_s, busy_limit_s
        self.checkpoint_s = checkpoint_s
        self._queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self._stop_checkpoints = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self.batches = 0  # committed batches
        self.busy_retries = 0  # batches put back because another connection held the write lock
        self.checkpoints = 0  # passive checkpoints that left no frame behind

    def submit(self, record: dict[str, Any], at: dt.datetime,
               loop: asyncio.AbstractEventLoop) -> "asyncio.Future[Any]":
        """An asyncio future of ``loop`` (the running loop) that holds the :class:`LogRecord` once committed."""
        q = self._queues.get(loop)
        if q is None:
            q = self._open(loop)
        template = log_template(record, at)
        fut = loop.create_future()
        q.pending.append((template, fut))
        if not q.scheduled:
            q.scheduled = True
            loop.call_soon(self._flush, q)
        return fut

    def _open(self, loop: asyncio.AbstractEventLoop) -> _LoopQueue:
        with self._lock:
            if self._stopped:
                raise _closed(self.store, "")
            q = self._queues.get(loop)
            if q is None:
                db = self.store._connect_writer()
                db.execute("PRAGMA busy_timeout = 0")  # never wait on the loop: retry later instead
                db.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint thread's job
                q = self._queues[loop] = _LoopQueue(loop, db)
                if self._checkpointer is None:
                    self._checkpointer = threading.Thread(target=self._checkpoints, name="usage-log-checkpoint",
                                                          daemon=True)
                    self._checkpointer.start()
            return q

    def _flush(self, q: _LoopQueue) -> None:
        with q.lock:
            q.scheduled = False
            if not q.pending:
                return
            batch, q.pending = q.pending[:self.max_batch], q.pending[self.max_batch:]
            try:
                written: list[Any] = self.store._append_batch(q.db, [t for t, _ in batch])
            except BaseException as exc:  # noqa: BLE001 — retried when busy, else handed to every waiter
                if _busy(exc):
                    now = time.monotonic()
                    q.busy_since = q.busy_since or now
                    if now - q.busy_since < self.busy_limit_s:
                        self.busy_retries += 1
                        q.pending[:0] = batch
                        q.scheduled = True
                        waited = now - q.busy_since
                        q.loop.call_later(min(self.retry_s * 16, max(self.retry_s, waited)), self._flush, q)
                        return
                q.busy_since = None
                written = [exc] * len(batch)
            else:
                q.busy_since = None
                self.batches += 1
            if q.pending and not q.scheduled:
                q.scheduled = True
                q.loop.call_soon(self._flush, q)
        _settle([(fut, outcome) for (_, fut), outcome in zip(batch, written)])

    def _checkpoints(self) -> None:
        db = self.store._connect_writer()
        try:
            while not self._stop_checkpoints.wait(self.checkpoint_s):
                try:
                    busy, frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # busy or locked: the next round checkpoints
                    continue
                if not busy and frames == done:
                    self.checkpoints += 1
        finally:
            db.close()

    def stop(self) -> None:
        """Commit what is queued (waiting for the write lock if need be), then close the connections."""
        with self._lock:
            self._stopped = True
            queues, self._queues = list(self._queues.values()), {}
            checkpointer, self._checkpointer = self._checkpointer, None
        for q in queues:
            with q.lock:
                batch, q.pending = q.pending, []
                outcomes: list[Any]
                if batch:
                    try:
                        q.db.execute("PRAGMA busy_timeout = 30000")
                        outcomes = self.store._append_batch(q.db, [t for t, _ in batch])
                    except BaseException as exc:  # noqa: BLE001
                        outcomes = [exc] * len(batch)
                q.db.close()
            if batch:
                pairs = list(zip((f for _, f in batch), outcomes))
                try:
                    if q.loop.is_closed():
                        raise RuntimeError("closed")
                    q.loop.call_soon_threadsafe(_settle, pairs)
                except RuntimeError:  # that loop is gone: nobody waits any more
                    pass
        self._stop_checkpoints.set()
        if checkpointer is not None:
            checkpointer.join()


def _settle(pairs: list[tuple[Any, Any]]) -> None:
    """Resolve futures (concurrent or asyncio, the latter on their loop's thread) with their outcome."""
    for fut, outcome in pairs:
        if fut.done():  # an asyncio waiter that was cancelled (client went away): record kept
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
