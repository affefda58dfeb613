"""Library build: issue a signed electronic licence for every new or changed certificate.

A certificate whose content changed gets a new licence *version* under the same
identifier, recording the identifier it supersedes (GB/T 36904). A status-only
change (revocation, suspension) does not reissue: verifiers read the status.

Licences are batch-issued by default (one signature over a Merkle root per batch of
one issuer, a proof per licence; :mod:`certificates.batch`); ``mode="single"`` (or
``ONEWINDOW_LICENCE_MODE=single``) signs each licence as its own JWS.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from warehouse.datadir import Layout
from warehouse.licence_store import StoredIds, files_dir, refresh_view, register, remove_orphans
from warehouse.library import LaneGuard, Library, in_transaction, retrying

CST = dt.timezone(dt.timedelta(hours=8))
ENV_MODE = "ONEWINDOW_LICENCE_MODE"
ENV_BATCH_SIZE = "ONEWINDOW_LICENCE_BATCH_SIZE"

ENV_STATUS_VALIDITY = "ONEWINDOW_STATUS_VALIDITY_HOURS"


@dataclass(frozen=True)
class BuildResult:
    issued: int
    reissued: int
    licences_total: int


def issue_pending(layout: Layout, *, at: dt.datetime, chunk: int = 200_000, mode: str | None = None,
                  batch_size: int | None = None, workers: int | None = None,
                  published_at: dt.datetime | None = None) -> BuildResult:
    """Sign licences for certificates that lack one at their current version.

    ``published_at`` is the moment the status lists really go out (default ``at``): their
    validity window runs from ``at`` to ``published_at`` + the list validity, so a build for
    a past logical date (a backfill, the demo's simulated days) still verifies today.

    ``mode`` ``batch`` (default, or ``ONEWINDOW_LICENCE_MODE``) or ``single``;
    ``batch_size`` leaves per Merkle tree (``ONEWINDOW_LICENCE_BATCH_SIZE``, default 4096);
    ``workers`` processes (default: one per CPU; a pool only for large builds).
    """
    from certificates import Keyring, publish_trust
    from certificates.issue import DEFAULT_BATCH_SIZE
    from certificates.pki import warn_expiring

    mode = mode or os.environ.get(ENV_MODE, "batch")
    batch_size = batch_size or int(os.environ.get(ENV_BATCH_SIZE, DEFAULT_BATCH_SIZE))
    keyring = Keyring.load_or_create(layout, at=at)
    publish_trust(keyring, layout.trust)
    warn_expiring(keyring, at)
    stamp = at.astimezone(CST).strftime("%Y%m%dT%H%M%S")
    library = Library.from_env(layout)

    def build(files: Path) -> BuildResult:
        with library.session() as con:
            guard = LaneGuard(con, "issue") if library.shared else None  # before reading what to issue
            if not library.shared:
                remove_orphans(con, files)
                refresh_view(con, files)  # the data directory may have moved since the last build
            pending = read_pending(con, chunk)
            try:
                issued, reissued = issue_rows(con, pending, keyring=keyring, assigner=_StatusAssigner(con),
                                              mode=mode, at=at, prefix=stamp, files=files, chunk=chunk,
                                              batch_size=batch_size, workers=workers, guard=guard)
            finally:
                pending.close()
            total = con.execute("SELECT count(*) FROM licences").fetchone()[0]
            publish_status_lists(con, keyring, layout, at=at, published_at=published_at, guard=guard)
        return BuildResult(issued, reissued, total)

    if not library.shared:
        return build(files_dir(layout))

    def attempt() -> BuildResult:
        # a chunk that conflicted with another build was rolled back: issue again from what is committed
        with tempfile.TemporaryDirectory(prefix="onewindow-licences-") as staging:
            return build(Path(staging))

    return retrying(attempt, what="the licence build")


_PENDING_FROM = """
    FROM certificates c
    LEFT JOIN licences l ON l.cert_key = c.cert_key AND l.version = c.version
    LEFT JOIN licences prev ON prev.cert_key = c.cert_key AND prev.version = c.version - 1
    WHERE l.licence_id IS NULL"""


@dataclass
class PendingRows:
    """The certificates to issue, streamed in ``cert_key`` order: ``num_rows`` and the
    ``issuer_codes`` among them are counted first, then ``batches`` arrive as the worker pool
    takes them, so the build holds one chunk of rows at a time, not all of them (a province's
    first build issues hundreds of millions)."""

    num_rows: int
    issuer_codes: list[str]
    batches: Iterator[pa.RecordBatch]
    _reader: Any = None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def read_pending(con, chunk: int) -> PendingRows:
    """The certificates lacking a licence at their current version (``ROW_COLUMNS`` +
    ``version`` + ``prev_licence_id``), read through a cursor of their own so the build's
    connection can commit chunk after chunk while they stream."""
    from certificates.issue import ROW_COLUMNS

    rows, codes = con.execute(
        f"SELECT count(*), coalesce(list(DISTINCT c.issuer_code ORDER BY c.issuer_code), []) {_PENDING_FROM}"
    ).fetchone()
    database = con.execute("SELECT current_database()").fetchone()[0]
    reader = con.cursor()
    try:
        reader.execute('USE "' + database.replace('"', '""') + '"')
        stream = reader.execute(f"""
            SELECT {', '.join('c.' + c for c in ROW_COLUMNS)}, c.version, prev.licence_id AS prev_licence_id
            {_PENDING_FROM}
            ORDER BY c.cert_key""").fetch_record_batch(max(1, min(chunk, 1_000_000)))
    except BaseException:
        reader.close()
        raise
    return PendingRows(rows, [c for c in codes if c is not None], iter(stream), reader)


def _chunks(pending: "pa.Table | PendingRows", chunk: int) -> Iterator[pa.Table]:
    """``pending`` in tables of exactly ``chunk`` rows (the last one shorter)."""
    if isinstance(pending, pa.Table):
        for offset in range(0, pending.num_rows, chunk):
            yield pending.slice(offset, chunk)
        return
    held: list[pa.RecordBatch] = []
    size = 0
    for batch in pending.batches:
        held.append(batch)
        size += batch.num_rows
        while size >= chunk:
            table = pa.Table.from_batches(held)
            yield table.slice(0, chunk)
            rest = table.slice(chunk)
            held, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(held)


def issue_rows(con, pending: "pa.Table | PendingRows", *, keyring, assigner: "_StatusAssigner", mode: str,
               at: dt.datetime, prefix: str, files: Path, chunk: int = 200_000, batch_size: int,
               workers: int | None = None, guard: LaneGuard | None = None) -> tuple[int, int]:
    """Issue and store licences for ``pending`` rows (``ROW_COLUMNS`` + ``version`` +
    ``prev_licence_id``; an Arrow table, or :class:`PendingRows` streamed by
    :func:`read_pending`), ``chunk`` rows per transaction: status list entries, payloads,
    signatures or Merkle proofs, written as Parquet files into ``files`` and registered with
    the ``licence_batches`` rows (:mod:`warehouse.licence_store`). Returns (issued, reissued).
    The build and the licence benchmark both run exactly this.

    One worker pool serves every chunk, and chunk k+1 is queued to it before chunk k is
    registered. Each chunk's transaction records the status list fill as of that chunk, so a
    crash leaves no entry handed out twice; a chunk that fails is rolled back and its files
    deleted (earlier chunks stay). ``guard``: a DuckLake library — each chunk's transaction
    checks and bumps the ``issue`` lane (:class:`warehouse.library.LaneGuard`: it fails when
    another build committed since ``pending`` was read) and copies the files' rows into
    ``licence_store``, after which the local files are deleted."""
    import pyarrow.compute as pc

    from certificates.issue import JobRunner, make_jobs

    stored = StoredIds(con)
    issued = reissued = 0
    registered_at = at.astimezone(CST).replace(tzinfo=None)  # naive China Standard Time, as stored elsewhere
    if isinstance(pending, pa.Table):
        codes = pc.unique(pending.column("issuer_code")).to_pylist() if pending.num_rows else []
    else:
        codes = pending.issuer_codes
    kid_of = {code: keyring.issuer(code).kid for code in codes}
    keys = {kid_of[code]: keyring.issuer(code).private_key for code in codes}
    with JobRunner(keys, mode=mode, at=at, workers=workers, rows=pending.num_rows) as runner:
        inflight = None
        for k, part in enumerate(_chunks(pending, chunk)):
            issuers = part.column("issuer_code")
            lists, index = assigner.assign_arrays(issuers)
            kids = _kids(issuers, kid_of)
            rows = part.append_column("status_list", lists).append_column("status_index", pa.array(index, pa.int32()))
            jobs = make_jobs(rows, kids, prefix=f"{prefix}-{k:04d}", batch_size=batch_size, out_dir=files)
            results = runner.submit(jobs)
            n_reissued = part.num_rows - part.column("prev_licence_id").null_count
            issued, reissued = issued + part.num_rows - n_reissued, reissued + n_reissued
            if inflight is not None:
                _store_chunk(con, files, *inflight, stored=stored, registered_at=registered_at, guard=guard)
            inflight = (jobs, results, assigner.fill())
        if inflight is not None:
            _store_chunk(con, files, *inflight, stored=stored, registered_at=registered_at, guard=guard)
    if not isinstance(pending, pa.Table) and issued + reissued != pending.num_rows:
        raise RuntimeError(f"{pending.num_rows:,} certificates were pending, {issued + reissued:,} were read")
    return issued, reissued


def _kids(issuers: Any, kid_of: dict[str, str]) -> pa.Array:
    """Each row's signing key id, from its issuer code."""
    import pyarrow.compute as pc

    from certificates.arrow_text import single

    codes = pc.dictionary_encode(single(issuers))
    return pa.array([kid_of[c] for c in codes.dictionary.to_pylist()], pa.string()).take(codes.indices)


_BATCH_SCHEMA = pa.schema([("batch_id", pa.string()), ("issuer_code", pa.string()), ("kid", pa.string()),
                           ("size", pa.int32()), ("root", pa.string()), ("root_jws", pa.string()),
                           ("issued_at", pa.timestamp("us"))])


def _store_chunk(con, files: Path, jobs, results, fill: dict[str, list], *, stored: StoredIds,
                 registered_at: dt.datetime, guard: LaneGuard | None = None) -> None:
    """Wait for one chunk's jobs and register their files, batch roots and the status list
    ``fill`` in one transaction; on any failure roll back and delete the chunk's files."""
    from certificates.issue import sync_files

    done = []
    try:
        for job, result in zip(jobs, results):
            if result.rows != job.rows.num_rows:
                raise RuntimeError(f"job {job.job_id} stored {result.rows} licences for {job.rows.num_rows} rows")
            done.append(result)
        batches = pa.Table.from_pylist([b | {"issued_at": registered_at} for r in done for b in r.batches],
                                       schema=_BATCH_SCHEMA)
        sync_files([files / r.file for r in done])
        fps = None if any(r.fingerprints is None for r in done) else np.concatenate(
            [r.fingerprints for r in done] or [np.zeros(0, dtype=np.uint64)])

        def store(con) -> None:
            register(con, files, [(r.file, r.rows, r.bytes) for r in done], at=registered_at, ids=stored,
                     fingerprints=fps, copy=guard is not None)
            con.register("new_batches", batches)
            con.execute("DELETE FROM licence_batches WHERE batch_id IN (SELECT batch_id FROM new_batches)")
            con.execute("INSERT INTO licence_batches SELECT * FROM new_batches")
            con.unregister("new_batches")
            _StatusAssigner.save_fill(con, fill)

        in_transaction(con, store, guard=guard)
        stored.add(fps)
        if guard is not None:  # the rows are in the DuckLake now
            for r in done:
                (files / r.file).unlink(missing_ok=True)
    except BaseException:
        for job in jobs:  # written or not, none of this chunk is registered (the rollback restored the view)
            (files / f"{job.job_id}.parquet").unlink(missing_ok=True)
        raise


class _StatusAssigner:
    """Hands out status list entries per issuer, in each list's seeded random order."""

    def __init__(self, con) -> None:
        from certificates.statuslist import LIST_SIZE

        self.size = LIST_SIZE
        self.lists: dict[str, list] = {}  # list_id -> [issuer_code, seed, used]
        for list_id, issuer, seed, used in con.execute(
                "SELECT list_id, issuer_code, seed, used FROM status_lists ORDER BY list_id").fetchall():
            self.lists[list_id] = [issuer, seed, used]
        self._orders: dict[str, Any] = {}

    def _open_list(self, issuer: str) -> str:
        from certificates.statuslist import new_seed

        mine = sorted(k for k, v in self.lists.items() if v[0] == issuer)
        if mine and self.lists[mine[-1]][2] < self.size:
            return mine[-1]
        list_id = f"{issuer}-{len(mine) + 1:04d}"
        self.lists[list_id] = [issuer, new_seed(), 0]
        return list_id

    def assign(self, issuers: list[str]) -> list[tuple[str, int]]:
        """``(list id, index)`` of each row's new entry (:meth:`assign_arrays` as tuples)."""
        lists, index = self.assign_arrays(pa.array(issuers, pa.string()))
        return list(zip(lists.to_pylist(), index.tolist()))

    def assign_arrays(self, issuers: Any) -> tuple[pa.Array, Any]:
        """Each row's new entry as (list ids, a pyarrow string array; indices, numpy int64):
        rows of one issuer take the next entries of its open list in that list's order, then
        of the lists opened after it."""
        import numpy as np
        import pyarrow.compute as pc

        from certificates.statuslist import index_order_array

        from certificates.arrow_text import single

        codes = pc.dictionary_encode(single(issuers).cast(pa.string()))
        indices = codes.indices.to_numpy(zero_copy_only=False)
        names = codes.dictionary.to_pylist()
        index = np.empty(len(indices), dtype=np.int64)
        list_of = np.empty(len(indices), dtype=np.int64)
        list_ids: list[str] = []
        for k, issuer in enumerate(names):
            rows = np.flatnonzero(indices == k)
            done = 0
            while done < len(rows):
                list_id = self._open_list(issuer)
                entry = self.lists[list_id]
                order = self._orders.get(list_id)
                if order is None:
                    order = self._orders[list_id] = index_order_array(entry[1], self.size)
                take = min(len(rows) - done, self.size - entry[2])
                index[rows[done:done + take]] = order[entry[2]:entry[2] + take]
                list_of[rows[done:done + take]] = len(list_ids)
                list_ids.append(list_id)
                entry[2] += take
                done += take
        return pa.array(list_ids, pa.string()).take(pa.array(list_of)), index

    def fill(self) -> dict[str, list]:
        """Each list's [issuer_code, seed, used] as of now (a copy, for :meth:`save_fill`)."""
        return {list_id: list(entry) for list_id, entry in self.lists.items()}

    def save(self, con) -> None:
        self.save_fill(con, self.lists)

    @staticmethod
    def save_fill(con, fill: dict[str, list]) -> None:
        known = {list_id for (list_id,) in con.execute("SELECT list_id FROM status_lists").fetchall()}
        for list_id, (issuer, seed, used) in fill.items():
            if list_id in known:
                con.execute("UPDATE status_lists SET used = ? WHERE list_id = ? AND used <> ?", [used, list_id, used])
            else:
                con.execute("INSERT INTO status_lists (list_id, issuer_code, seed, used) VALUES (?, ?, ?, ?)",
                            [list_id, issuer, seed, used])


def publish_status_lists(con, keyring, layout: Layout, *, at: dt.datetime,
                         published_at: dt.datetime | None = None, guard: LaneGuard | None = None) -> int:
    """Sign every status list from the certificates' current status and publish it under
    ``<data-dir>/status`` (and in ``status_lists``, in one transaction: on a DuckLake library,
    checked and counted by the build's ``guard``); returns how many lists were written."""
    return in_transaction(con, lambda con: _publish_status_lists(con, keyring, layout, at=at,
                                                                 published_at=published_at),
                          guard=guard)


def _publish_status_lists(con, keyring, layout: Layout, *, at: dt.datetime,
                          published_at: dt.datetime | None = None) -> int:
    from certificates.statuslist import DEFAULT_VALIDITY, sign_status_list, write_list

    hours = os.environ.get(ENV_STATUS_VALIDITY)
    validity = dt.timedelta(hours=float(hours)) if hours else DEFAULT_VALIDITY
    entries = _status_entries(con)
    lists = con.execute("SELECT list_id, issuer_code FROM status_lists ORDER BY list_id").fetchall()
    valid_from = at.astimezone(CST).replace(tzinfo=None)
    from certificates._time import aware

    until = max(aware(at), aware(published_at or at)).astimezone(CST) + validity
    for list_id, issuer_code in lists:
        issuer = keyring.issuer(issuer_code)
        token = sign_status_list(list_id=list_id, issuer_code=issuer_code, kid=issuer.kid,
                                 private_key=issuer.private_key, statuses=entries.get(list_id, _NO_ENTRIES), at=at,
                                 until=until)
        con.execute("UPDATE status_lists SET token = ?, valid_from = ?, valid_until = ? WHERE list_id = ?",
                    [token, valid_from, until.replace(tzinfo=None), list_id])
        write_list(layout.root / "status", list_id, token)
    return len(lists)


_NO_ENTRIES = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def _status_entries(con) -> dict[str, tuple[Any, Any]]:
    """Each status list's (indices, status codes) from the licences and their certificates'
    current status, as numpy arrays: a province's library has hundreds of millions of entries,
    too many for a Python object each."""
    import pyarrow.compute as pc

    table = con.execute("""
        SELECT l.status_list, l.status_index, TRY_CAST(c.status AS INTEGER) AS code
        FROM licences l JOIN certificates c ON c.cert_key = l.cert_key
        WHERE l.status_list IS NOT NULL
        ORDER BY l.status_list""").fetch_arrow_table()
    if table.column("code").null_count:
        bad = con.execute("""
            SELECT c.cert_key, c.status FROM licences l JOIN certificates c ON c.cert_key = l.cert_key
            WHERE l.status_list IS NOT NULL AND TRY_CAST(c.status AS INTEGER) IS NULL LIMIT 1""").fetchone()
        raise ValueError(f"certificate {bad[0]}: status {bad[1]!r} is not a status code")
    lists = pc.dictionary_encode(table.column("status_list")).combine_chunks()
    which = lists.indices.to_numpy(zero_copy_only=False)
    index = table.column("status_index").to_numpy().astype(np.int64)
    code = table.column("code").to_numpy().astype(np.int64)
    del table
    bounds = np.flatnonzero(np.diff(which)) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(which)]])
    names = lists.dictionary.to_pylist()
    return {names[which[a]]: (index[a:b], code[a:b]) for a, b in zip(starts, ends) if b > a}
