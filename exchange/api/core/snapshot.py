"""Serving the current library snapshot: open read-only, index in memory, swap atomically.

The pipeline publishes immutable DuckDB files under ``layout.snapshots`` and names the
current one in ``snapshots/CURRENT`` (replaced atomically). :class:`SnapshotStore`
stats that pointer on every lease (about a microsecond) and a background thread does
the same every second, so a new snapshot is picked up without a restart. A swap opens
the new file read-only, loads ``subjects``, ``certificates`` and ``licences`` into
Arrow tables with dict indexes (holder_code / licence_id / cert_key → row positions),
then replaces the current snapshot under a lock. The old one is closed when its last
lease (in-flight request) ends. A snapshot that fails to open is logged and skipped:
the last good one keeps serving.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from exchange.api.exceptions import NoSnapshot
from exchange.exceptions import ExchangeError
from warehouse.datadir import Layout

log = logging.getLogger("exchange.api.snapshot")

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "subjects": ("subject_code", "code_type", "name", "kind", "sex", "birth_date", "address",
                 "division_code", "legal_rep_code", "source_id", "updated_at"),
    "certificates": ("cert_key", "licence_type_code", "licence_type_name", "cert_number",
                     "holder_code", "holder_code_type", "holder_name", "issuer_name", "issuer_code",
                     "issue_date", "valid_from", "valid_until", "status", "extension", "flags",
                     "source_id", "row_hash", "version", "changed_interval"),
    "licences": ("licence_id", "base_id", "cert_key", "version", "token", "issued_at",
                 "supersedes", "issuer_code", "licence_type_code", "holder_code"),
    "snapshot_meta": ("snapshot_id", "built_at", "library_hash"),
}


class SnapshotError(ExchangeError):
    """A published snapshot file cannot be served (missing, not DuckDB, wrong schema)."""

    retryable = False

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot serve snapshot {path}: {reason}; the previous snapshot "
                         "(if any) keeps serving — re-publish with warehouse.snapshot.publish")


def _text_time(value: Any) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, dt.datetime) else str(value)


def _textual_dates(table: pa.Table) -> pa.Table:
    """Cast DATE/TIMESTAMP columns to ISO text once, at load, instead of per row served."""
    for i, f in enumerate(table.schema):
        col = table.column(i)
        if pa.types.is_timestamp(f.type):  # whole seconds: "2026-11-01 12:00:00"
            col = col.cast(pa.timestamp("s", f.type.tz), safe=False)
        if pa.types.is_date(f.type) or pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, col.cast(pa.string()))
    return table


def _shared(values: list[Any]) -> list[Any]:
    """The list with one object per distinct string: status codes, type names, dates and issuers
    repeat across millions of rows, and ``to_pylist`` makes a new string for every row."""
    seen: dict[str, str] = {}
    return [seen.setdefault(v, v) if type(v) is str else v for v in values]


class _Table:
    """An Arrow table and the Python row view of a position.

    With ``materialize`` the columns are also held as Python lists (repeated strings
    shared), so a row is a dict built from list items (~1 µs per field) rather than from
    Arrow scalars (~5x slower). Without ``combine`` the Arrow columns keep DuckDB's
    chunks: combining copies them, and for the licence tokens that is gigabytes at 1M
    persons.
    """

    def __init__(self, table: pa.Table, *, materialize: bool, combine: bool = True,
                 cold: tuple[str, ...] = ()) -> None:
        self.table = _textual_dates(table)
        if combine:
            self.table = self.table.combine_chunks()
        self.names = self.table.column_names
        self._lists: list[list[Any] | None] | None = None
        if materialize:  # ``cold`` columns (not read on the request path) stay in Arrow only
            self._lists = [None if n in cold else _shared(self.table.column(i).to_pylist())
                           for i, n in enumerate(self.names)]

    def __len__(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> list[Any]:
        if self._lists is not None and (values := self._lists[self.names.index(name)]) is not None:
            return values
        return self.table.column(name).to_pylist()

    def row(self, pos: int) -> dict[str, Any]:
        if self._lists is not None:
            return {n: (col[pos] if col is not None else self.table.column(i)[pos].as_py())
                    for i, (n, col) in enumerate(zip(self.names, self._lists))}
        return {n: self.table.column(i)[pos].as_py() for i, n in enumerate(self.names)}


class SnapshotIndex:
    """In-memory lookup data of one snapshot; implements ``exchange.onceonly.resolver.Records``."""

    def __init__(self, subjects: pa.Table, certificates: pa.Table, licences: pa.Table) -> None:
        self.subjects = _Table(subjects, materialize=True)
        self.certificates = _Table(certificates, materialize=True,
                                   cold=("extension", "row_hash", "changed_interval"))
        # Tokens are large and fetched one at a time: they stay in Arrow only.
        self.licences = _Table(licences, materialize=False, combine=False)
        self._subject_pos = {c: i for i, c in enumerate(self.subjects.column("subject_code"))}
        self._cert_pos: dict[str, int] = {}
        self._certs_by_holder: dict[str, list[int]] = {}
        for i, (key, holder) in enumerate(zip(self.certificates.column("cert_key"),
                                              self.certificates.column("holder_code"))):
            self._cert_pos[key] = i
            self._certs_by_holder.setdefault(holder, []).append(i)
        self._licence_pos: dict[str, int] = {}
        newest: dict[str, tuple[int, int]] = {}  # cert_key -> (version, position)
        # The few licence columns lookups need, as Python lists (tokens stay in Arrow).
        self._licence_ids = self.licences.column("licence_id")
        self._licence_versions = self.licences.column("version")
        self._licence_cert_keys = self.licences.column("cert_key")
        for i, (lid, ck, ver) in enumerate(zip(self._licence_ids, self._licence_cert_keys,
                                               self._licence_versions)):
            self._licence_pos[lid] = i
            if ck not in newest or (ver or 0) > newest[ck][0]:
                newest[ck] = (ver or 0, i)
        self._newest_licence_pos = {ck: pos for ck, (_, pos) in newest.items()}
        self._cert_status = self.certificates.column("status")
        # Short, repetitive licence columns as Python lists of shared strings (one object per
        # distinct value); the long unique ones (token, base_id) are read from Arrow per row.
        shared: dict[Any, Any] = {h: h for h in self._certs_by_holder}
        self._licence_lists = {
            name: [shared.setdefault(v, v) for v in self.licences.column(name)]
            for name in ("licence_type_code", "issuer_code", "holder_code", "issued_at", "supersedes")}
        listed = {"licence_id", "cert_key", "version", *self._licence_lists}
        # Chunked as DuckDB returned them: indexing finds the chunk (combining would copy the tokens).
        self._licence_arrow = {name: self.licences.table.column(name)
                               for name in self.licences.names if name not in listed}

    @classmethod
    def load(cls, conn: Any) -> "SnapshotIndex":
        def q(sql: str) -> pa.Table:
            return conn.execute(sql).to_arrow_table()
        return cls(q("SELECT * FROM subjects"),
                   q("SELECT * FROM certificates ORDER BY holder_code, licence_type_code, cert_key"),
                   q("SELECT * FROM licences"))

    def counts(self) -> dict[str, int]:
        return {"subjects": len(self.subjects), "certificates": len(self.certificates),
                "licences": len(self.licences)}

    def subject(self, code: str) -> dict[str, Any] | None:
        pos = self._subject_pos.get(code)
        return None if pos is None else self.subjects.row(pos)

    def certificates_of(self, holder_code: str) -> list[dict[str, Any]]:
        """The holder's certificates, each with ``licence_id``/``licence_version`` of its newest licence."""
        out = []
        for pos in self._certs_by_holder.get(holder_code, ()):
            row = self.certificates.row(pos)
            lpos = self._newest_licence_pos.get(row["cert_key"])
            row["licence_id"] = None if lpos is None else self._licence_ids[lpos]
            row["licence_version"] = None if lpos is None else self._licence_versions[lpos]
            out.append(row)
        return out

    def certificate(self, cert_key: str) -> dict[str, Any] | None:
        pos = self._cert_pos.get(cert_key)
        return None if pos is None else self.certificates.row(pos)

    def licence(self, licence_id: str) -> dict[str, Any] | None:
        pos = self._licence_pos.get(licence_id)
        if pos is None:
            return None
        row = {"licence_id": self._licence_ids[pos], "cert_key": self._licence_cert_keys[pos],
               "version": self._licence_versions[pos]}
        for name, values in self._licence_lists.items():
            row[name] = values[pos]
        for name, array in self._licence_arrow.items():
            row[name] = array[pos].as_py()
        return row

    def newest_licence_id(self, cert_key: str) -> str | None:
        pos = self._newest_licence_pos.get(cert_key)
        return None if pos is None else self._licence_ids[pos]

    def licence_status(self, licence_id: str) -> str | None:
        """Current GB/T 36903 status of the certificate behind a licence; None if unknown."""
        pos = self._licence_pos.get(licence_id)
        if pos is None:
            return None
        cpos = self._cert_pos.get(self._licence_cert_keys[pos])
        return None if cpos is None else self._cert_status[cpos]

    def example_holder(self) -> str | None:
        """A holder code with certificates (for the landing page in development)."""
        return next(iter(self._certs_by_holder), None)


class Snapshot:
    """One opened snapshot: read-only DuckDB connection + in-memory index + lease count."""

    def __init__(self, path: Path, conn: Any, index: SnapshotIndex, snapshot_id: str,
                 built_at: str, library_hash: str | None) -> None:
        self.path = path
        self.name = path.name
        self.conn = conn
        self.index = index
        self.snapshot_id = snapshot_id
        self.built_at = built_at
        self.library_hash = library_hash
        self.loaded_at = dt.datetime.now()
        self._leases = 0
        self._retired = False
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> "Snapshot":
        import duckdb

        if not path.is_file():
            raise SnapshotError(path, "file does not exist")
        try:
            conn = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise SnapshotError(path, f"DuckDB cannot open it read-only: {exc}") from exc
        try:
            cols: dict[str, set[str]] = {}
            for table, column in conn.execute(
                    "SELECT table_name, column_name FROM information_schema.columns").fetchall():
                cols.setdefault(table, set()).add(column)
            for table, required in REQUIRED_COLUMNS.items():
                missing = [c for c in required if c not in cols.get(table, set())]
                if missing:
                    raise SnapshotError(path, f"table {table} lacks columns {missing}"
                                        if table in cols else f"table {table} is missing")
            meta = conn.execute("SELECT snapshot_id, built_at, library_hash FROM snapshot_meta").fetchall()
            if len(meta) != 1:
                raise SnapshotError(path, f"snapshot_meta must hold one row, holds {len(meta)}")
            snapshot_id, built_at, library_hash = meta[0]
            index = SnapshotIndex.load(conn)
        except SnapshotError:
            conn.close()
            raise
        except duckdb.Error as exc:
            conn.close()
            raise SnapshotError(path, f"reading it failed: {exc}") from exc
        return cls(path, conn, index, str(snapshot_id), _text_time(built_at),
                   library_hash)

    def cursor(self) -> Any:
        """A DuckDB cursor of its own for this thread (the shared connection is not thread-safe)."""
        return self.conn.cursor()

    @property
    def closed(self) -> bool:
        return self._closed

    def _acquire(self) -> None:
        with self._lock:
            self._leases += 1

    def release(self) -> None:
        with self._lock:
            self._leases -= 1
            close = self._retired and self._leases == 0
        if close:
            self._close()

    def retire(self) -> None:
        """No new leases; close once the in-flight ones end."""
        with self._lock:
            self._retired = True
            close = self._leases == 0
        if close:
            self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self.conn.close()
            log.info("closed snapshot %s", self.name)


@dataclass(frozen=True)
class _Stamp:
    ino: int
    mtime_ns: int
    size: int


class SnapshotStore:
    """Holds the current :class:`Snapshot` and swaps it when ``snapshots/CURRENT`` changes."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._lock = threading.Lock()  # guards _current / _stamp
        self._load_lock = threading.Lock()  # one loader at a time
        self._current: Snapshot | None = None
        self._stamp: _Stamp | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._next_check = 0.0

    @property
    def current(self) -> Snapshot | None:
        return self._current

    def _pointer_stamp(self) -> _Stamp | None:
        try:
            st = os.stat(self.layout.current_snapshot_pointer)
        except FileNotFoundError:
            return None
        return _Stamp(st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self, *, wait: bool = False) -> None:
        """Swap to the snapshot CURRENT names if it changed. Cheap when it did not."""
        stamp = self._pointer_stamp()
        if stamp == self._stamp:
            return
        # Another thread loading? Serve what we have, unless there is nothing yet.
        if not self._load_lock.acquire(blocking=wait or self._current is None):
            return
        try:
            stamp = self._pointer_stamp()
            if stamp is None or stamp == self._stamp:
                return
            name = self.layout.current_snapshot_pointer.read_text(encoding="utf-8").strip()
            if self._current is not None and self._current.name == name:
                self._stamp = stamp
                return
            try:
                if not name or Path(name).name != name:
                    raise SnapshotError(self.layout.current_snapshot_pointer,
                                        f"CURRENT must hold a bare file name, holds {name!r}")
                new = Snapshot.open(self.layout.snapshots / name)
            except SnapshotError as exc:
                self._stamp = stamp  # do not retry a bad file on every request
                self.last_error = str(exc)
                log.error("%s", exc)
                return
            with self._lock:
                old, self._current, self._stamp = self._current, new, stamp
                self.last_error = None
            log.info("serving snapshot %s (%s) %s", new.snapshot_id, new.name, new.index.counts())
            if old is not None:
                old.retire()
            # The index is millions of long-lived objects: keep the cyclic GC from walking them on
            # every full collection (pauses of 100 ms+ in the middle of requests). Objects of a
            # retired snapshot are still freed by reference counting when it closes.
            gc.collect()
            gc.freeze()
        finally:
            self._load_lock.release()

    #: with the watcher running, requests stat CURRENT at most this often (a stat releases the
    #: GIL, and getting it back on a busy server can cost up to the switch interval)
    STALE_CHECK_S = 0.25

    def stale(self) -> bool:
        """Whether ``snapshots/CURRENT`` changed since the last swap (one ``stat``)."""
        if self._watcher is not None:
            now = time.monotonic()
            if now < self._next_check:
                return False
            self._next_check = now + self.STALE_CHECK_S
        return self._pointer_stamp() != self._stamp

    @contextmanager
    def lease(self, *, refresh: bool = True) -> Iterator[Snapshot]:
        """The current snapshot, kept open until the block ends; 503 ``no_snapshot`` if none."""
        if refresh:
            self.refresh()
        with self._lock:
            snap = self._current
            if snap is None:
                reason = self.last_error or (
                    f"{self.layout.current_snapshot_pointer} does not exist yet")
                raise NoSnapshot(reason)
            snap._acquire()
        try:
            yield snap
        finally:
            snap.release()

    def start_watching(self, interval: float = 1.0) -> None:
        """Check the pointer every ``interval`` seconds in a daemon thread, off the request path."""
        if self._watcher is not None:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh(wait=True)
                except OSError as exc:  # pointer vanished mid-read: next tick retries
                    log.warning("snapshot pointer check failed: %s", exc)

        self._watcher = threading.Thread(target=run, name="snapshot-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        with self._lock:
            snap, self._current, self._stamp = self._current, None, None
        if snap is not None:
            snap.retire()
