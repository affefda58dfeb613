"""Serving the current library snapshot: open read-only, index in memory, swap atomically.

The pipeline publishes immutable DuckDB files under ``layout.snapshots`` and names the
current one in ``snapshots/CURRENT`` (replaced atomically). :class:`SnapshotStore`
stats that pointer on every lease (about a microsecond) and a background thread does
the same every second, so a new snapshot is picked up without a restart. A swap opens
the new file read-only, loads ``subjects``, ``certificates`` and ``licences`` into
Arrow key columns with dict indexes (holder_code / licence_id / cert_key → row positions)
and their rows as JSON texts in compressed blocks (rows become Python dicts only when a
request reads them),
then replaces the current snapshot under a lock. The old one is closed when its last
lease (in-flight request) ends. A snapshot that fails to open is logged and skipped:
the last good one keeps serving.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import hashlib
import io
import logging
import mmap
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


#: DuckDB memory limits of a served snapshot's connection: while the index is read (sort, joins;
#: beyond it DuckDB spills to disk), and afterwards (its cache of table blocks)
DUCKDB_LOAD_MEMORY_LIMIT = "1GB"
DUCKDB_MEMORY_LIMIT = "256MB"

#: rows per record batch when a table is streamed into its memory-mapped file
_BATCH_ROWS = 32_768

#: a holder's certificate run is packed in one int: first row << _RUN_BITS | count
_RUN_BITS = 20
_RUN_LIMIT = 1 << _RUN_BITS


def _spill(directory: Path) -> str:
    """A new empty file for index data in ``directory`` (else the system's temporary directory)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".index-", suffix=".arrow", dir=directory)
    except OSError:  # directory not writable for the service: the system's temporary directory
        fd, name = tempfile.mkstemp(prefix="onewindow-index-", suffix=".arrow")
    os.close(fd)
    return name


def _map(name: str, warm: "_Warmer | None" = None) -> mmap.mmap | bytes:
    """Memory-map the file ``name`` read-only (``b""`` when empty); the caller unlinks it: the
    mapping keeps the data until it is freed, and no file is left behind. ``warm`` may read it
    in at once (see :class:`_Warmer`)."""
    if os.path.getsize(name) == 0:
        return b""
    with open(name, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    # Requests read scattered rows: no readahead, so only the pages read become resident.
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    if warm is not None:
        warm(mapped)
    return mapped


#: whether a snapshot's memory-mapped index files are read in when it is loaded
#: (``ONEWINDOW_INDEX_WARM``): ``on``, ``off``, or ``auto``: while they fit in half the memory
#: available at that moment. Warm, a replica's first requests read memory instead of faulting
#: in each page they touch (a once-only answer touches ~20 scattered pages; at 1M persons the
#: files are ~9 GB and populate in ~1.5 s); not warm, only the pages requests read become
#: resident, for libraries larger than memory.
INDEX_WARM_ENV = "ONEWINDOW_INDEX_WARM"
INDEX_WARM_MODES = ("auto", "on", "off")
#: madvise(2) advice that populates a mapping's page tables, reading the file as needed (Linux 5.14)
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)


def index_warm_mode(value: str | None = None) -> str:
    """The configured warm-up (see ``INDEX_WARM_ENV``); a clear error when unknown."""
    mode = (value if value is not None else os.environ.get(INDEX_WARM_ENV, "auto")).strip().lower() or "auto"
    if mode not in INDEX_WARM_MODES:
        raise ValueError(f"{INDEX_WARM_ENV}={mode!r}: expected one of {', '.join(INDEX_WARM_MODES)}")
    return mode


def _available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes; None where there is none (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class _Warmer:
    """Reads in the mapped files of one index load while they fit its budget (``mode``: see
    ``INDEX_WARM_ENV``; ``auto``'s budget is half the memory available when the load starts).

    A file is populated with ``MADV_POPULATE_READ``: its pages are read into the page cache (they
    mostly are, just written) and mapped, so no request faults on them. Where the kernel lacks
    it, ``MADV_WILLNEED`` reads them ahead and the first touches still fault, cheaper."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        if mode == "auto":
            available = _available_memory()
            self.budget: int | None = available // 2 if available else 0
        else:
            self.budget = None if mode == "on" else 0
        self.warmed = self.skipped = 0  # bytes
        self.seconds = 0.0
        self.populated = True  # False once a file was only read ahead

    def __call__(self, mapped: mmap.mmap) -> None:
        size = len(mapped)
        if self.budget is not None and self.warmed + size > self.budget:
            self.skipped += size
            return
        started = time.perf_counter()
        try:
            mapped.madvise(_MADV_POPULATE_READ)
        except (OSError, AttributeError):  # older kernel (EINVAL), or no madvise
            self.populated = False
            if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_WILLNEED"):
                mapped.madvise(mmap.MADV_WILLNEED)
        self.seconds += time.perf_counter() - started
        self.warmed += size

    def report(self) -> dict[str, Any]:
        return {"mode": self.mode, "warmed_bytes": self.warmed, "skipped_bytes": self.skipped,
                "seconds": round(self.seconds, 3), "populated": self.populated and self.warmed > 0}


def _load_split(reader: pa.RecordBatchReader, directory: Path | None,
                compress: bool, warm: _Warmer | None = None) -> tuple[pa.Table, _Blocks | _Text]:
    """Stream ``reader`` (key columns, then ``row``) into an Arrow table, the ``row`` texts
    either in it (plain, read by :class:`_Text`) or, with ``compress``, in compressed blocks
    (:class:`_Blocks`). With ``directory`` both go to files there that are memory-mapped and
    unlinked at once (page cache, not the service's heap), and read in by ``warm``; without, to memory."""
    keys_schema = pa.schema([f for f in reader.schema if f.name != "row" or not compress])
    names = []
    try:
        if directory is None:
            sink, blocks_sink = pa.BufferOutputStream(), io.BytesIO()
        else:
            names = [_spill(directory), _spill(directory)]
            sink, blocks_sink = pa.OSFile(names[0], "wb"), open(names[1], "wb")
        with sink, blocks_sink, pa.ipc.new_file(sink, keys_schema) as writer:
            def rows() -> Iterator[pa.Array]:
                for batch in reader:
                    writer.write_batch(batch.select(keys_schema.names))
                    yield batch.column("row")
            if compress:
                ends = _Blocks.write(rows(), blocks_sink)
            else:
                for _ in rows():
                    pass
            if directory is None:
                data: Any = blocks_sink.getvalue()
        if directory is None:
            keys = pa.ipc.open_file(sink.getvalue()).read_all()
        else:
            # zero-copy: the table's buffers hold the mapping, which ends when they are freed
            keys = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(_map(names[0], warm)))).read_all()
            data = _map(names[1], warm)
        return keys, (_Blocks(data, *ends) if compress else _Text(keys.column("row")))
    finally:
        for name in names:
            os.unlink(name)


def index_rows_mode(value: str | None = None) -> str:
    """The configured way of keeping rows (see ``INDEX_ROWS_ENV``); a clear error when unknown."""
    mode = (value if value is not None else os.environ.get(INDEX_ROWS_ENV, "auto")).strip().lower() or "auto"
    if mode not in INDEX_ROWS_MODES:
        raise ValueError(f"{INDEX_ROWS_ENV}={mode!r}: expected one of {', '.join(INDEX_ROWS_MODES)}")
    return mode


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _row_json(conn: Any, table: str, alias: str, extra: tuple[tuple[str, str], ...] = ()) -> str:
    """SQL for one row of ``table`` as a JSON object text: every column by name, DATE and JSON as
    text, TIMESTAMP as ``YYYY-MM-DD HH:MM:SS`` (what the routes show), then ``extra`` (name, SQL)."""
    parts = []
    for name, type_, *_ in conn.execute(f'DESCRIBE "{table}"').fetchall():
        col = f'{alias}."{name}"'
        if type_ == "TIMESTAMP" or type_.startswith("TIMESTAMP_"):
            expr = f"strftime({col}, '%Y-%m-%d %H:%M:%S')"
        elif type_ in ("DATE", "JSON") or type_.startswith("TIMESTAMP"):
            expr = f"CAST({col} AS VARCHAR)"
        else:
            expr = col
        parts.append(f"'{name}', {expr}")
    parts += [f"'{name}', {expr}" for name, expr in extra]
    return f"CAST(json_object({', '.join(parts)}) AS VARCHAR)"


class _Text:
    """A string column read by position straight from its Arrow buffers: the value's bytes as a
    memoryview (no copy), found by bisecting the chunk starts. ~1 µs a value, against ~2 µs
    for ``ChunkedArray[i].as_py()``; msgspec decodes JSON from the view directly."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self._starts: list[int] = []
        self._offsets: list[memoryview] = []
        self._data: list[memoryview] = []
        start = 0
        for chunk in column.chunks:
            if pa.types.is_large_string(chunk.type):
                width = "q"
            elif pa.types.is_string(chunk.type):
                width = "i"
            else:
                raise TypeError(f"snapshot index: {chunk.type} is not a string column")
            if len(chunk) == 0:
                continue
            _, offsets, data = chunk.buffers()
            self._starts.append(start)
            self._offsets.append(memoryview(offsets).cast(width)[chunk.offset:chunk.offset + len(chunk) + 1])
            self._data.append(memoryview(data).cast("B") if data is not None else memoryview(b""))
            start += len(chunk)
        self._null = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None

    def view(self, pos: int) -> memoryview | None:
        if self._null is not None and self._null[pos]:
            return None
        c = bisect.bisect_right(self._starts, pos) - 1
        offsets, j = self._offsets[c], pos - self._starts[c]
        return self._data[c][offsets[j]:offsets[j + 1]]

    def text(self, pos: int) -> str | None:
        view = self.view(pos)
        return None if view is None else str(view, "utf-8")


#: consecutive values of a row column compressed together (LZ4): a read decompresses one block,
#: 16 licence rows with their tokens (~40 KB), in ~5 µs (zstd: ~25 µs). Rows repeat most of their
#: text from one to the next (keys, names, a token's batch header and upper audit path), so a
#: block is ~1/5 of its rows (1M persons' licence rows: 5.8 GB plain, 1.1 GB in blocks).
_BLOCK_ROWS = 16
_CODEC_NAME = "lz4_raw"

#: how the index keeps rows (``ONEWINDOW_INDEX_ROWS``): ``plain`` texts (fastest reads), LZ4
#: ``compressed`` blocks, or ``auto``: plain while a table's rows fit in half the free space of
#: the directory the index is mapped from, else compressed (10M persons' licence rows are ~58 GB
#: as plain text)
INDEX_ROWS_ENV = "ONEWINDOW_INDEX_ROWS"
INDEX_ROWS_MODES = ("auto", "plain", "compressed")


class _Blocks:
    """A string column kept as compressed blocks of ``_BLOCK_ROWS`` consecutive values, read
    by position like :class:`_Text` (``view`` gives the value's bytes; msgspec decodes them).

    Built by :meth:`write` from the column's chunks as they stream in (a record batch at a
    time): the compressed blocks go to ``sink`` (a file that is then memory-mapped, or memory),
    and only two small arrays stay on the heap — each block's place in the compressed data and
    each value's end within its block.
    """

    def __init__(self, data: Any, block_ends: np.ndarray, value_ends: np.ndarray, nulls: np.ndarray | None) -> None:
        self._data = memoryview(data)
        self._block_ends = _ints(block_ends)  # compressed end of block b (its start: the end of b - 1)
        self._value_ends = memoryview(np.ascontiguousarray(value_ends, dtype=np.int32))
        self._nulls = nulls
        self._codec = pa.Codec(_CODEC_NAME)
        self.num_values = len(value_ends)

    @classmethod
    def write(cls, chunks: Iterator[pa.Array], sink: Any) -> tuple[list[int], np.ndarray, np.ndarray | None]:
        """Compress the values of ``chunks`` (string or large_string arrays, in order) into ``sink``
        (has ``write``); returns (block ends in the sink, value ends within blocks, null mask)."""
        codec = pa.Codec(_CODEC_NAME)
        k = _BLOCK_ROWS
        block_ends: list[int] = []
        value_ends: list[np.ndarray] = []
        null_parts: list[np.ndarray] = []
        any_null = False
        written = 0
        carry = bytearray()  # bytes of the values of an unfinished block (fewer than k)
        carry_ends: list[int] = []

        def flush(payload: Any) -> None:
            nonlocal written
            packed = codec.compress(payload, asbytes=True)
            sink.write(packed)
            written += len(packed)
            block_ends.append(written)

        for chunk in chunks:
            n = len(chunk)
            if n == 0:
                continue
            if pa.types.is_large_string(chunk.type):
                width = np.int64
            elif pa.types.is_string(chunk.type):
                width = np.int32
            else:
                raise TypeError(f"snapshot index: {chunk.type} is not a string column")
            _, off_buf, data_buf = chunk.buffers()
            offsets = np.frombuffer(off_buf, dtype=width)[chunk.offset:chunk.offset + n + 1].astype(np.int64)
            data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
            if chunk.null_count:
                any_null = True
                null_parts.append(chunk.is_null().to_numpy(zero_copy_only=False))
            else:
                null_parts.append(np.zeros(n, dtype=bool))
            i = 0
            if carry_ends:  # top the unfinished block up from this chunk
                take = min(k - len(carry_ends), n)
                base = len(carry)
                carry += data[offsets[0]:offsets[take]]
                carry_ends.extend((offsets[1:take + 1] - offsets[0] + base).tolist())
                i = take
                if len(carry_ends) == k:
                    flush(carry)
                    value_ends.append(np.array(carry_ends, dtype=np.int64))
                    carry, carry_ends = bytearray(), []
            whole = (n - i) // k  # blocks that lie inside this chunk
            if whole:
                starts = offsets[i:i + whole * k:k]
                stops = offsets[i + k:i + whole * k + 1:k]
                for lo, hi in zip(starts.tolist(), stops.tolist()):
                    flush(data[lo:hi])
                rows = np.arange(i, i + whole * k)
                value_ends.append(offsets[rows + 1] - np.repeat(starts, k))
                i += whole * k
            if i < n:  # the rest starts the next block
                carry += data[offsets[i]:offsets[n]]
                carry_ends = (offsets[i + 1:n + 1] - offsets[i]).tolist()
        if carry_ends:
            flush(carry)
            value_ends.append(np.array(carry_ends, dtype=np.int64))
        ends = np.concatenate(value_ends) if value_ends else np.zeros(0, dtype=np.int64)
        if len(ends) and ends.max() >= 1 << 31:
            raise ValueError("snapshot index: a block of rows exceeds 2 GB")
        nulls = np.concatenate(null_parts) if any_null else None
        return block_ends, ends, nulls

    def view(self, pos: int) -> memoryview | None:
        if self._nulls is not None and self._nulls[pos]:
            return None
        b, first = divmod(pos, _BLOCK_ROWS)
        lo = self._block_ends[b - 1] if b else 0
        last = min(pos - first + _BLOCK_ROWS, self.num_values) - 1
        raw = self._codec.decompress(self._data[lo:self._block_ends[b]],
                                     decompressed_size=self._value_ends[last], asbytes=True)
        return memoryview(raw)[self._value_ends[pos - 1] if first else 0:self._value_ends[pos]]

    def text(self, pos: int) -> str | None:
        view = self.view(pos)
        return None if view is None else str(view, "utf-8")


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """A column of few distinct values as (numpy code per row, the values): one small list
    instead of a Python object per row."""
    values = pc.unique(column)
    listed = values.to_pylist() + [None]  # the last: a row index_in left unmatched (NULL)
    codes = pc.fill_null(pc.index_in(column, value_set=values), len(listed) - 1)
    return codes.to_numpy(zero_copy_only=False), listed


_NULL_INT = -(1 << 40)  # a NULL in an int column turned into numpy


def _ints(values: np.ndarray) -> memoryview:
    """An integer array as a memoryview of int64 (same memory when it already is one)."""
    return memoryview(np.ascontiguousarray(values, dtype=np.int64))

_decode_row = msgspec.json.decode

#: rows sampled to estimate a table's plain size
_SAMPLE_ROWS = 2_000


def _too_big(conn: Any, table: str, alias: str, row_sql: str, directory: Path | None) -> bool:
    """Whether ``table``'s rows as plain text (estimated from its first rows) would take more than
    half the free space of ``directory`` — then ``auto`` keeps them compressed. In memory: no."""
    if directory is None:
        return False
    (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    (avg,) = conn.execute(f"SELECT avg(strlen({row_sql}) + 8) FROM "
                          f"(SELECT * FROM {table} LIMIT {_SAMPLE_ROWS}) {alias}").fetchone()
    estimate = count * float(avg or 0)
    free = shutil.disk_usage(directory).free
    if estimate > free / 2:
        log.warning("snapshot index: %s rows as plain text ~%.1f GB, %.1f GB free in %s: kept compressed",
                    table, estimate / 1e9, free / 1e9, directory)
        return True
    return False


#: a key's 64-bit fingerprint: the first 8 bytes of its MD5 as a little-endian integer, which is
#: what DuckDB's ``md5_number(key) & (2^64 - 1)`` gives (a test checks the two agree)
_FP_MASK = (1 << 64) - 1


def fingerprint_sql(column: str) -> str:
    """SQL for the fingerprint of ``column`` (UBIGINT; NULL for NULL)."""
    return f"(md5_number({column}) & {_FP_MASK})::UBIGINT"


def fingerprint(key: bytes) -> int:
    return int.from_bytes(hashlib.md5(key).digest()[:8], "little")


def _fingerprints(table: pa.Table, key: str) -> np.ndarray:
    """The fingerprints of ``table``'s ``key`` column: its ``<key>_fp`` column when the load
    computed it in DuckDB, else computed here (NULL keys: 0; they are never found)."""
    name = f"{key}_fp"
    if name in table.column_names:
        return pc.fill_null(table.column(name), 0).to_numpy().astype(np.uint64)
    return np.array([0 if k is None else fingerprint(k.encode("utf-8")) for k in table.column(key).to_pylist()],
                    dtype=np.uint64)


class _KeyIndex:
    """Key → entry (a row, or a run) without a Python object per key: the keys' 64-bit
    fingerprints, sorted, beside each one's entry (12 bytes a key, against ~200 for a dict of
    str; the dict index of the 10M-person library took ~14 GB of heap, this one 2.9 GB). A lookup
    fingerprints the key, bisects, and compares the key of each candidate, in the key column
    (:meth:`get`) or on the row the caller reads anyway (:meth:`candidates`), so a fingerprint
    shared by two keys never answers the wrong one. ~2 µs a lookup."""

    def __init__(self, fingerprints: np.ndarray, keys: _Text, rows: np.ndarray | None = None) -> None:
        """``fingerprints[e]``: entry ``e``'s; ``keys``: the key column; ``rows[e]``: the row of
        ``keys`` holding entry ``e``'s key (default: entry ``e`` is row ``e``)."""
        order = np.argsort(fingerprints, kind="stable")
        self._fp = memoryview(np.ascontiguousarray(fingerprints[order], dtype=np.uint64))
        self._entry = memoryview(order.astype(np.int32 if len(order) < 1 << 31 else np.int64))
        self._rows = None if rows is None else _ints(rows)
        self._keys = keys

    def __len__(self) -> int:
        return len(self._fp)

    def get(self, key: str) -> int | None:
        """The entry of ``key`` (the last, if the column repeats it), or None; the key is checked
        in the key column."""
        candidates = self.candidates(key)
        raw = key.encode("utf-8") if candidates else b""  # candidates: the key encodes
        for entry in candidates:
            if self._keys.view(entry if self._rows is None else self._rows[entry]) == raw:
                return entry
        return None

    def candidates(self, key: str) -> list[int]:
        """The entries whose fingerprint is ``key``'s, the last first: almost always one, and it is
        ``key``'s unless ``key`` is absent. For a caller that reads the entry's row anyway and
        checks the key there (no page of the key column touched)."""
        try:
            fp = fingerprint(key.encode("utf-8"))
        except UnicodeEncodeError:
            return []
        fps = self._fp
        i = j = bisect.bisect_left(fps, fp)
        while j < len(fps) and fps[j] == fp:
            j += 1
        return sorted((self._entry[k] for k in range(i, j)), reverse=True)

    def first_key(self) -> str | None:
        """The key of entry 0 (None when there are none)."""
        if not len(self._fp):
            return None
        return self._keys.text(0 if self._rows is None else self._rows[0])


class SnapshotIndex:
    """In-memory lookup data of one snapshot; implements ``exchange.onceonly.resolver.Records``.

    Columnar and lazy: each row is kept as one JSON text in compressed blocks of 16 rows
    (:class:`_Blocks`), next to the few key columns in Arrow; a request turns the rows it reads
    into dicts (one block decompressed and one msgspec decode a row, ~10-20 µs). DuckDB only scans the tables (no join, sort or
    aggregate, whose memory grew past 1 GB at 1M persons); what is built at load, in Arrow
    and numpy, is the certificates' holder order (a holder is one run ``start, count`` of
    that order), each licence's certificate position, each certificate's newest licence,
    and the key → row position dicts (subject code, holder code, cert key, licence id).
    Python objects are per key, not per field of every row (the row-materialising index
    reached 17 GB at 1M persons).
    """

    def __init__(self, subjects: pa.Table, certificates: pa.Table, licences: pa.Table,
                 rows: dict[str, _Blocks | _Text] | None = None) -> None:
        """``subjects(subject_code, row)``, ``certificates(holder_code, licence_type_code, cert_key,
        status, row)``, ``licences(licence_id, cert_key, version, row)``, each in any order; or the
        same without ``row``, with ``rows`` giving each table's rows (:class:`_Text`, :class:`_Blocks`)."""
        if rows is None:
            rows = {"subjects": _Text(subjects.column("row")),
                    "certificates": _Text(certificates.column("row")),
                    "licences": _Text(licences.column("row"))}
        self.row_modes = {name: "compressed" if isinstance(r, _Blocks) else "plain" for name, r in rows.items()}
        #: what the load read in of the mapped files (:class:`_Warmer`); None in memory
        self.warm: dict[str, Any] | None = None
        self.subjects, self.certificates, self.licences = subjects, certificates, licences
        # A holder's certificates in licence-type order: positions sorted by (holder, type, key).
        self._order = pc.sort_indices(certificates.select(["holder_code", "licence_type_code", "cert_key"]),
                                      sort_keys=[("holder_code", "ascending"),
                                                 ("licence_type_code", "ascending"),
                                                 ("cert_key", "ascending")]).to_numpy()
        # A holder is one run of that order: where the holder code changes, a run starts.
        holders = certificates.column("holder_code").take(self._order)
        n = len(holders)
        starts = np.zeros(0, dtype=np.int64)
        if n:
            changed = pc.fill_null(pc.not_equal(holders.slice(1), holders.slice(0, n - 1)), True)
            starts = np.concatenate(([0], np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1))
        counts = np.diff(np.append(starts, n))
        if len(counts) and counts.max() >= _RUN_LIMIT:
            big = int(np.argmax(counts))
            raise ValueError(f"holder {holders[int(starts[big])].as_py()!r} has {int(counts[big])} certificates "
                             f"(the snapshot index allows {_RUN_LIMIT - 1})")
        del holders
        self._holder_runs = _ints((starts << _RUN_BITS) | counts)  # first place in _order << _RUN_BITS | count
        first_rows = self._order[starts]  # the certificate row of each run's first place: its holder code
        self._holder_index = _KeyIndex(_fingerprints(certificates, "holder_code")[first_rows],
                                       _Text(certificates.column("holder_code")), rows=first_rows)
        self._subject_index = _KeyIndex(_fingerprints(subjects, "subject_code"),
                                        _Text(subjects.column("subject_code")))
        self._cert_index = _KeyIndex(_fingerprints(certificates, "cert_key"), _Text(certificates.column("cert_key")))
        self._licence_ids = _Text(licences.column("licence_id"))  # the key column, also read by position
        self._licence_index = _KeyIndex(_fingerprints(licences, "licence_id"), self._licence_ids)
        # Each licence's certificate (-1: its certificate is not in the table), and each
        # certificate's newest licence: the highest version, NULL counting as 0 (-1: none).
        lic_cert = pc.index_in(licences.column("cert_key"), value_set=certificates.column("cert_key"))
        self._licence_cert = pc.fill_null(lic_cert, -1).to_numpy().astype(np.int64)
        version = pc.fill_null(licences.column("version"), 0).to_numpy()
        self._newest = np.full(certificates.num_rows, -1, dtype=np.int64)
        known = np.flatnonzero(self._licence_cert >= 0)
        if len(known):
            by_cert = known[np.lexsort((version[known], self._licence_cert[known]))]
            cert_of = self._licence_cert[by_cert]
            last = np.append(cert_of[1:] != cert_of[:-1], True)  # the last (highest version) of each run
            self._newest[cert_of[last]] = by_cert[last]
        # cert keys of licences whose certificate is not in the table: their newest licence
        self._orphan_newest: dict[str, str] = {}
        best: dict[str, int] = {}
        ids, keys = licences.column("licence_id"), licences.column("cert_key")
        for pos in np.flatnonzero(self._licence_cert < 0).tolist():
            key = keys[pos].as_py()
            if key not in best or version[pos] >= version[best[key]]:
                best[key] = pos
                self._orphan_newest[key] = ids[pos].as_py()
        self._subject_rows, self._cert_rows, self._licence_rows = (
            rows["subjects"], rows["certificates"], rows["licences"])
        versions = pc.fill_null(licences.column("version").cast(pa.int64()), _NULL_INT).to_numpy()
        status, self._status_values = _codes(certificates.column("status"))
        # Read one element per request: indexing a memoryview gives a Python int (~40 ns),
        # indexing a numpy array a numpy scalar that int() then converts (~200 ns).
        self._order = _ints(self._order)
        self._licence_cert = _ints(self._licence_cert)
        self._newest = _ints(self._newest)
        self._licence_versions = _ints(versions)
        self._status = _ints(status)

    @classmethod
    def load(cls, conn: Any, spill_dir: Path | None = None, rows: str | None = None,
             warm: str | None = None) -> "SnapshotIndex":
        """Read the three tables from a snapshot connection (plain scans), a record batch at a time.

        Each row is kept as one JSON text, plain or in compressed blocks (``rows``: a mode of
        :data:`INDEX_ROWS_MODES`, by default ``ONEWINDOW_INDEX_ROWS`` or ``auto``); the licence
        tokens alone are ~2 KB a licence, 5.8 GB of licence rows at 1M persons. With ``spill_dir``
        the tables are streamed into files there, memory-mapped and unlinked at once: they live
        in the page cache (file-backed, evictable) rather than on the service's heap. Without it
        they are kept in memory (and ``auto`` keeps them plain). ``warm`` (a mode of
        :data:`INDEX_WARM_MODES`, by default ``ONEWINDOW_INDEX_WARM`` or ``auto``) decides whether the
        mapped files are read in now; the outcome is :attr:`warm`.
        """
        mode = index_rows_mode(rows)
        warmer = _Warmer(index_warm_mode(warm)) if spill_dir is not None else None
        if spill_dir is not None:  # DuckDB's default limit is 80% of RAM: bound what the scans use
            conn.execute(f"SET memory_limit = '{DUCKDB_LOAD_MEMORY_LIMIT}'")
            conn.execute(f"SET temp_directory = '{_sql_text(str(spill_dir / '.duckdb-sort'))}'")
        loaded: dict[str, tuple[pa.Table, _Blocks | _Text]] = {}
        for table, alias, keys, fps in (
                ("certificates", "c", "holder_code, licence_type_code, cert_key, status", ("holder_code", "cert_key")),
                ("subjects", "s", "subject_code", ("subject_code",)),
                ("licences", "l", "licence_id, cert_key, version", ("licence_id",))):
            row = _row_json(conn, table, alias)
            compress = mode == "compressed" or (mode == "auto" and _too_big(conn, table, alias, row, spill_dir))
            columns = [f"{alias}.{k}" for k in keys.split(", ")]
            columns += [f"{fingerprint_sql(f'{alias}.{k}')} AS {k}_fp" for k in fps]
            sql = f"SELECT {', '.join(columns)}, {row} AS row FROM {table} {alias}"
            loaded[table] = _load_split(conn.execute(sql).to_arrow_reader(_BATCH_ROWS), spill_dir, compress, warmer)
        if spill_dir is not None:  # then keep its block cache from holding what was read resident
            conn.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        index = cls(loaded["subjects"][0], loaded["certificates"][0], loaded["licences"][0],
                    rows={name: r for name, (_, r) in loaded.items()})
        log.info("snapshot index rows: %s", index.row_modes)
        if warmer is not None:
            index.warm = warmer.report()
            if warmer.skipped:
                log.warning("snapshot index: %.1f GB of mapped files not read in (%s: %.1f GB budget); "
                            "requests fault their pages in as they read them", warmer.skipped / 1e9,
                            warmer.mode, (warmer.budget or 0) / 1e9)
            log.info("snapshot index warm-up: %s", index.warm)
        return index

    def counts(self) -> dict[str, int]:
        return {"subjects": self.subjects.num_rows, "certificates": self.certificates.num_rows,
                "licences": self.licences.num_rows}

    @staticmethod
    def _row_of(index: _KeyIndex, rows: _Blocks | _Text, key: str, field: str) -> tuple[int, dict[str, Any]] | None:
        """(row position, row) of ``key``: its candidates' rows checked on their ``field``."""
        for pos in index.candidates(key):
            row = _decode_row(rows.view(pos))
            if row.get(field) == key:
                return pos, row
        return None

    def subject(self, code: str) -> dict[str, Any] | None:
        found = self._row_of(self._subject_index, self._subject_rows, code, "subject_code")
        return None if found is None else found[1]

    def _newest_of(self, cert_pos: int) -> tuple[str | None, int | None]:
        lpos = self._newest[cert_pos]
        if lpos < 0:
            return None, None
        version = self._licence_versions[lpos]
        return self._licence_ids.text(lpos), None if version == _NULL_INT else version

    def certificates_of(self, holder_code: str) -> list[dict[str, Any]]:
        """The holder's certificates, each with ``licence_id``/``licence_version`` of its newest licence."""
        rows, order = self._cert_rows, self._order
        for entry in self._holder_index.candidates(holder_code):
            run = self._holder_runs[entry]
            start = run >> _RUN_BITS
            first = _decode_row(rows.view(order[start]))
            if first.get("holder_code") != holder_code:
                continue  # another holder's fingerprint
            out = []
            for place in range(start, start + (run & (_RUN_LIMIT - 1))):
                pos = order[place]
                row = first if place == start else _decode_row(rows.view(pos))
                row["licence_id"], row["licence_version"] = self._newest_of(pos)
                out.append(row)
            return out
        return []

    def certificate(self, cert_key: str) -> dict[str, Any] | None:
        found = self._row_of(self._cert_index, self._cert_rows, cert_key, "cert_key")
        return None if found is None else found[1]

    def licence(self, licence_id: str) -> dict[str, Any] | None:
        found = self._row_of(self._licence_index, self._licence_rows, licence_id, "licence_id")
        return None if found is None else found[1]

    def licence_read(self, licence_id: str) -> tuple[dict[str, Any], bool, str | None] | None:
        """(the licence row, a newer version of it exists, current status of its certificate):
        what a licence read answers, found with one lookup and by row position."""
        found = self._row_of(self._licence_index, self._licence_rows, licence_id, "licence_id")
        if found is None:
            return None
        pos, row = found
        cpos = self._licence_cert[pos]
        if cpos < 0:
            newest = self._orphan_newest.get(row["cert_key"])
            return row, newest is not None and newest != licence_id, None
        newest_pos = self._newest[cpos]
        return row, newest_pos >= 0 and newest_pos != pos, self._status_values[self._status[cpos]]

    def newest_licence_id(self, cert_key: str) -> str | None:
        pos = self._cert_index.get(cert_key)
        if pos is None:
            return self._orphan_newest.get(cert_key)
        return self._newest_of(pos)[0]

    def licence_status(self, licence_id: str) -> str | None:
        """Current GB/T 36903 status of the certificate behind a licence; None if unknown."""
        pos = self._licence_index.get(licence_id)
        if pos is None:
            return None
        cpos = self._licence_cert[pos]
        return None if cpos < 0 else self._status_values[self._status[cpos]]

    def example_holder(self) -> str | None:
        """A holder code with certificates (for the landing page in development)."""
        return self._holder_index.first_key()


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
            index = SnapshotIndex.load(conn, spill_dir=path.parent)
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
