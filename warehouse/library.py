"""Where the library lives: one embedded DuckDB file (the default), or a shared DuckLake.

Selected by ``ONEWINDOW_LIBRARY_CATALOG_URL``:

* unset — the embedded default, ``<data-dir>/warehouse/library.duckdb``. DuckDB allows one
  writing process per file, so every writer holds :func:`warehouse.lock.writer_lock` (an
  ``flock`` beside the file) for its whole session, and readers take it too.
* ``postgresql://user:password@host:port/dbname`` — a DuckLake whose catalog is that
  PostgreSQL database, with its data files under ``ONEWINDOW_LIBRARY_DATA_URL``:
  ``s3://bucket/prefix`` (signed with the lake's settings: ``ONEWINDOW_S3_ENDPOINT``,
  ``ONEWINDOW_S3_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) or a directory
  every machine sees the same (a shared mount). DuckDB's ``ducklake``, ``postgres_scanner``
  and ``httpfs`` extensions are loaded from their PyPI packages (:mod:`warehouse.duck`),
  never downloaded.

Under DuckLake several processes, on any machines, read and write at once and no file lock
is taken: each write is one DuckLake transaction (snapshot isolation, optimistic) run by
:meth:`Library.write`. Two write transactions that overlap in time conflict at ``COMMIT``
when they touch the same thing — DuckLake refuses the second commit — and the loser is
rolled back and run again from the start on a fresh connection, after a randomised
exponential backoff, so it reads what the winner committed. To make "touch the same thing"
mean "the same kind of writer", every write transaction also bumps its *lane* (a one-row
table per lane, ``library_lane_<lane>``): all merges, quarantine records and cross-checks
share the ``merge`` lane and so run as if one at a time, whatever rows they touch; the
licence build's chunks use the ``issue`` lane, so a build and a merge proceed side by side
(they write disjoint tables; a merge committed during a build is issued by the next one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import duckdb

from warehouse.datadir import Layout
from warehouse.duck import connect, extension_path, literal
from warehouse.exceptions import LibraryConfigError, LibraryConflict

CATALOG_URL_ENV = "ONEWINDOW_LIBRARY_CATALOG_URL"
DATA_URL_ENV = "ONEWINDOW_LIBRARY_DATA_URL"
LANES = ("merge", "issue")
ALIAS = "lib"
#: attempts of one write transaction before :class:`LibraryConflict` (the task's own retry takes over)
ATTEMPTS = 40
BACKOFF_S = (0.02, 2.0)  # first wait, longest wait
#: how many times this process started a library transaction (or an attach) again after a conflict
RETRIED = 0

T = TypeVar("T")
log = logging.getLogger(__name__)


class StaleRead(Exception):
    """A writer's earlier reads are out of date: another writer of its lane committed since (:class:`LaneGuard`)."""


def is_conflict(exc: BaseException) -> bool:
    """A DuckLake commit refused because another transaction committed a conflicting change
    (or a :class:`StaleRead`: the same, found before the commit)."""
    return isinstance(exc, StaleRead) or (isinstance(exc, duckdb.TransactionException)
                                          and "conflict" in str(exc).lower())


def _conninfo(url: str) -> str:
    """A libpq ``key=value`` string (what DuckLake's postgres catalog takes) from a postgresql:// URL."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres") or not parsed.hostname or not parsed.path.strip("/"):
        raise LibraryConfigError(CATALOG_URL_ENV, url, "must be postgresql://user[:password]@host[:port]/dbname")
    parts = {"host": parsed.hostname, "port": str(parsed.port or 5432), "dbname": unquote(parsed.path.strip("/")),
             "user": unquote(parsed.username or ""), "password": unquote(parsed.password or "")}
    for item in filter(None, parsed.query.split("&")):  # e.g. sslmode=require
        key, _, value = item.partition("=")
        parts[unquote(key)] = unquote(value)

    def quoted(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{k}={quoted(v)}" for k, v in parts.items() if v)


@dataclass(frozen=True)
class Library:
    """The library of one data directory, embedded or on DuckLake."""

    layout: Layout
    catalog: str | None = None  # libpq conninfo of the DuckLake catalog; None: the embedded file
    data_url: str | None = None  # DuckLake data path (ends with '/')
    s3: Any = None  # warehouse.lake.S3Settings for an s3:// data path

    @classmethod
    def from_env(cls, layout: Layout, environ: Mapping[str, str] | None = None) -> "Library":
        from warehouse.lake import S3Settings

        env = os.environ if environ is None else environ
        url = env.get(CATALOG_URL_ENV, "").strip()
        if not url:
            return cls(layout)
        data = env.get(DATA_URL_ENV, "").strip()
        if not data:
            raise LibraryConfigError(DATA_URL_ENV, data, f"a DuckLake library ({CATALOG_URL_ENV} set) needs the "
                                     "place of its data files: s3://bucket/prefix or a directory every writer sees")
        if data.startswith("s3://"):
            bucket = data[len("s3://"):].partition("/")[0]
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
                raise LibraryConfigError(DATA_URL_ENV, data, f"bucket name {bucket!r} is not a valid S3 bucket name")
            return cls(layout, _conninfo(url), data.rstrip("/") + "/", S3Settings.from_env(env))
        if "://" in data:
            raise LibraryConfigError(DATA_URL_ENV, data, "use s3://bucket/prefix or a directory")
        return cls(layout, _conninfo(url), str(Path(data).expanduser().resolve()) + "/")

    @property
    def shared(self) -> bool:
        """True on DuckLake: many writers, no file lock."""
        return self.catalog is not None

    def describe(self) -> str:
        if not self.shared:
            return f"embedded {self.layout.library}"
        catalog = re.sub(r"password='(?:[^'\\]|\\.)*'", "password=***", self.catalog)
        return f"DuckLake (catalog {catalog}, data {self.data_url})"

    # ------------------------------------------------------------------ connections
    def _attach(self, con: duckdb.DuckDBPyConnection, *, read_only: bool) -> None:
        if not self.shared:
            con.execute(f"ATTACH {literal(self.layout.library)} AS {ALIAS}" + (" (READ_ONLY)" if read_only else ""))
            con.execute(f"USE {ALIAS}")
            return
        for name in ("ducklake", "postgres_scanner", "httpfs"):
            con.execute(f"LOAD {literal(extension_path(name))}")
        if self.s3 is not None:
            s3 = self.s3
            bucket = self.data_url[len("s3://"):].partition("/")[0]
            options = [f"KEY_ID {literal(s3.key_id)}", f"SECRET {literal(s3.secret)}", f"REGION {literal(s3.region)}",
                       f"USE_SSL {'true' if s3.use_ssl else 'false'}", f"SCOPE {literal('s3://' + bucket)}"]
            if s3.host:
                options += [f"ENDPOINT {literal(s3.host)}", "URL_STYLE 'path'"]
            con.execute(f"CREATE OR REPLACE TEMPORARY SECRET onewindow_library (TYPE s3, {', '.join(options)})")
        else:
            Path(self.data_url).mkdir(parents=True, exist_ok=True)
        options = [f"DATA_PATH {literal(self.data_url)}"] + (["READ_ONLY"] if read_only else [])
        # a catalog being initialised by another process at this moment: attach again
        retrying(lambda: con.execute(f"ATTACH {literal('ducklake:postgres:' + self.catalog)} AS {ALIAS} "
                                     f"({', '.join(options)})"), what="attach the DuckLake catalog",
                 also=lambda exc: isinstance(exc, duckdb.Error)
                 and any(w in str(exc).lower() for w in ("duplicate key", "already exists")))
        con.execute(f"USE {ALIAS}")

    def connect(self, *, reads: Any = None, migrate: bool = True) -> duckdb.DuckDBPyConnection:
        """A connection whose default database is the library, migrated (the embedded caller holds
        the writer lock). With ``reads`` (a :class:`quality.results.CheckResult`), it can also read
        that checked batch's outputs where they live."""
        from warehouse.schema import migrate as apply_migrations

        if not self.shared:
            con = connect(self.layout.library)
        else:
            con = connect()
        try:
            if self.shared:
                self._attach(con, read_only=False)
            if migrate:
                if self.shared:
                    retrying(lambda: apply_migrations(con, ducklake=True), what="migrate the library")
                else:
                    apply_migrations(con)
            if reads is not None:
                _attach_lake(con, self.layout, reads)
        except BaseException:
            con.close()
            raise
        return con

    @contextlib.contextmanager
    def session(self, *, reads: Any = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing connection for a caller that runs its own transactions (the licence build):
        embedded, under the writer lock for the whole session; on DuckLake, no lock."""
        from warehouse.lock import writer_lock

        lock = contextlib.nullcontext() if self.shared else writer_lock(self.layout.library)
        with lock:
            con = self.connect(reads=reads)
            try:
                yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection that reads the library as ``lib`` (its default database) — embedded: attached
        read-only under the writer lock (DuckDB refuses a read-only open while another process writes
        the file); DuckLake: one snapshot per transaction, no lock."""
        from warehouse.lock import writer_lock

        if self.shared:
            con = self.connect()
            try:
                yield con
            finally:
                con.close()
            return
        with writer_lock(self.layout.library):
            con = connect()
            try:
                self._attach(con, read_only=True)
                yield con
            finally:
                con.close()

    def exists(self) -> bool:
        """False only for an embedded library never written (a DuckLake catalog is created on first use)."""
        return self.shared or self.layout.library.exists()

    # ------------------------------------------------------------------ writing
    def write(self, work: Callable[[duckdb.DuckDBPyConnection], T], *, lane: str, reads: Any = None) -> T:
        """Run ``work(con)`` in one library transaction and commit it; return what it returned.

        Embedded: under the writer lock, once. DuckLake: the transaction also bumps ``lane``
        (:data:`LANES`); a commit refused for a conflict is run again from the start on a fresh
        connection (``work`` must only read and write the library, or be safe to repeat), up to
        :data:`ATTEMPTS` times, then :class:`LibraryConflict` (retryable)."""
        if lane not in LANES:
            raise ValueError(f"unknown library write lane {lane!r}; known: {LANES}")
        if not self.shared:
            with self.session(reads=reads) as con:
                return in_transaction(con, work)

        def attempt() -> T:
            con = self.connect(reads=reads)
            try:
                return in_transaction(con, work, lane=lane)
            finally:
                con.close()

        return retrying(attempt, what=f"a library write ({lane})")


def bump(con: duckdb.DuckDBPyConnection, lane: str) -> int:
    """Make the current DuckLake transaction conflict with every other one of ``lane``; returns
    the lane's generation as this transaction leaves it."""
    con.execute(f"UPDATE library_lane_{lane} SET generation = generation + 1")
    return con.execute(f"SELECT generation FROM library_lane_{lane}").fetchone()[0]


class LaneGuard:
    """For a writer that reads first and writes in later transactions (the licence build: the
    pending certificates, the status-list fill and the stored identifiers are read once, then
    each chunk is its own transaction): the lane's generation when it read, so that a write
    transaction fails with :class:`StaleRead` when another writer of the lane committed after
    those reads (a commit during the transaction is DuckLake's conflict at ``COMMIT``). Create
    it *before* the reads it guards."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lane: str) -> None:
        self.lane = lane
        self.seen = con.execute(f"SELECT generation FROM library_lane_{lane}").fetchone()[0]
        self._next: int | None = None

    def bump(self, con: duckdb.DuckDBPyConnection) -> None:
        now = bump(con, self.lane)
        if now != self.seen + 1:
            raise StaleRead(f"another {self.lane} writer committed since this one read the library "
                            f"(generation {self.seen} then, {now - 1} now)")
        self._next = now

    def committed(self) -> None:
        if self._next is not None:
            self.seen, self._next = self._next, None


def in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], T], *,
                   lane: str | None = None, guard: LaneGuard | None = None) -> T:
    """``BEGIN``, (bump ``lane``, or check and bump ``guard``'s), ``work(con)``, ``COMMIT``;
    ``ROLLBACK`` on any failure."""
    con.execute("BEGIN")
    try:
        if guard is not None:
            guard.bump(con)
        elif lane is not None:
            bump(con, lane)
        result = work(con)
        con.execute("COMMIT")
        if guard is not None:
            guard.committed()
        return result
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a refused COMMIT has ended the transaction already
            con.execute("ROLLBACK")
        raise


def retrying(fn: Callable[[], T], *, what: str, attempts: int = ATTEMPTS,
             also: Callable[[BaseException], bool] = lambda exc: False) -> T:
    """``fn()``, again after a randomised exponential backoff while it fails with a DuckLake
    conflict (or ``also``); :class:`LibraryConflict` once ``attempts`` have failed."""
    first, longest = BACKOFF_S
    for n in range(1, attempts + 1):
        try:
            return fn()
        except (duckdb.Error, StaleRead) as exc:
            if not (is_conflict(exc) or also(exc)):
                raise
            if n == attempts:
                raise LibraryConflict(what, attempts, exc) from exc
            global RETRIED
            RETRIED += 1
            log.info("%s conflicted with another writer (attempt %d of %d), running it again: %s", what, n,
                     attempts, exc)
            time.sleep(random.uniform(0.5, 1.0) * min(longest, first * 2 ** (n - 1)))
    raise AssertionError("unreachable")


def _attach_lake(con: duckdb.DuckDBPyConnection, layout: Layout, batch: Any) -> None:
    """Let ``con`` read the batch's outputs when they live in a lake on object storage."""
    from warehouse.lake import Lake, is_remote

    if is_remote(batch.passed_path) or is_remote(batch.quarantine_path):
        Lake.from_env(layout).attach(con)
