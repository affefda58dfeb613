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
from dataclasses import dataclass

import pyarrow as pa

from warehouse.datadir import Layout
from warehouse.lock import writer_lock
from warehouse.load import open_library

CST = dt.timezone(dt.timedelta(hours=8))
ENV_MODE = "ONEWINDOW_LICENCE_MODE"
ENV_BATCH_SIZE = "ONEWINDOW_LICENCE_BATCH_SIZE"

LICENCE_COLUMNS = ("licence_id", "base_id", "cert_key", "version", "token", "issued_at", "supersedes",
                   "issuer_code", "licence_type_code", "holder_code", "mode", "batch_id", "status_list",
                   "status_index")
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
    from certificates.issue import DEFAULT_BATCH_SIZE, ROW_COLUMNS

    mode = mode or os.environ.get(ENV_MODE, "batch")
    batch_size = batch_size or int(os.environ.get(ENV_BATCH_SIZE, DEFAULT_BATCH_SIZE))
    from certificates.pki import warn_expiring

    keyring = Keyring.load_or_create(layout, at=at)
    publish_trust(keyring, layout.trust)
    warn_expiring(keyring, at)
    stamp = at.astimezone(CST).strftime("%Y%m%dT%H%M%S")
    with writer_lock(layout.library):
        con = open_library(layout)
        try:
            assigner = _StatusAssigner(con)
            pending = con.execute(f"""
                SELECT {', '.join('c.' + c for c in ROW_COLUMNS)}, c.version,
                       prev.licence_id AS prev_licence_id
                FROM certificates c
                LEFT JOIN licences l ON l.cert_key = c.cert_key AND l.version = c.version
                LEFT JOIN licences prev ON prev.cert_key = c.cert_key AND prev.version = c.version - 1
                WHERE l.licence_id IS NULL
                ORDER BY c.cert_key""").fetch_arrow_table()
            issued, reissued = issue_rows(con, pending, keyring=keyring, assigner=assigner, mode=mode, at=at,
                                          prefix=stamp, chunk=chunk, batch_size=batch_size, workers=workers)
            total = con.execute("SELECT count(*) FROM licences").fetchone()[0]
            publish_status_lists(con, keyring, layout, at=at, published_at=published_at)
        finally:
            con.close()
    return BuildResult(issued, reissued, total)


def issue_rows(con, pending: pa.Table, *, keyring, assigner: "_StatusAssigner", mode: str, at: dt.datetime,
               prefix: str, chunk: int = 200_000, batch_size: int, workers: int | None = None) -> tuple[int, int]:
    """Issue and store licences for ``pending`` rows (``ROW_COLUMNS`` + ``version`` +
    ``prev_licence_id``), ``chunk`` rows per transaction: status list entries, payloads,
    signatures or Merkle proofs, the ``licences`` and ``licence_batches`` rows. Returns
    (issued, reissued). The build and the licence benchmark both run exactly this.

    One worker pool serves every chunk, and chunk k+1 is queued to it before chunk k is
    stored, so the DuckDB insert overlaps the signing. Each chunk's transaction records the
    status list fill as of that chunk, so a crash leaves no entry handed out twice."""
    import pyarrow.compute as pc

    from certificates.issue import JobRunner, job_order, make_jobs_from_table

    issued = reissued = 0
    issued_at = at.astimezone(CST).replace(tzinfo=None)  # naive China Standard Time, as stored elsewhere
    codes = pc.unique(pending.column("issuer_code")).to_pylist() if pending.num_rows else []
    keys = {keyring.issuer(code).kid: keyring.issuer(code).private_key for code in codes}
    with JobRunner(keys, mode=mode, at=at, workers=workers, rows=pending.num_rows) as runner:
        inflight = None
        for offset in range(0, pending.num_rows, chunk):
            part = pending.slice(offset, chunk)
            # only the columns the parent reads become Python lists; the workers get Arrow
            cols = {c: part.column(c).to_pylist() for c in ("issuer_code", "version", "prev_licence_id")}
            kid_of = {code: keyring.issuer(code).kid for code in set(cols["issuer_code"])}
            kids = [kid_of[code] for code in cols["issuer_code"]]
            refs = assigner.assign(cols["issuer_code"])
            jobs = make_jobs_from_table(part, cols["version"], cols["prev_licence_id"], kids,
                                        prefix=f"{prefix}-{offset // chunk:04d}", batch_size=batch_size,
                                        status_refs=refs)
            results = runner.submit(jobs)
            n_reissued = sum(1 for p in cols["prev_licence_id"] if p)
            issued, reissued = issued + part.num_rows - n_reissued, reissued + n_reissued
            if inflight is not None:
                _store_chunk(con, *inflight, mode=mode, issued_at=issued_at)
            inflight = (part, pa.array(job_order(kids), pa.int64()), refs, jobs, results, assigner.fill())
        if inflight is not None:
            _store_chunk(con, *inflight, mode=mode, issued_at=issued_at)
    return issued, reissued


_LICENCE_SCHEMA = pa.schema([(c, pa.int32() if c in ("version", "status_index") else
                               pa.timestamp("us") if c == "issued_at" else pa.string()) for c in LICENCE_COLUMNS])
_BATCH_SCHEMA = pa.schema([("batch_id", pa.string()), ("issuer_code", pa.string()), ("kid", pa.string()),
                           ("size", pa.int32()), ("root", pa.string()), ("root_jws", pa.string()),
                           ("issued_at", pa.timestamp("us"))])


def _store_chunk(con, part: pa.Table, order: pa.Array, refs: list[tuple[str, int]], jobs, results,
                 fill: dict[str, list], *, mode: str, issued_at: dt.datetime) -> None:
    """Collect one chunk's results and store them, with the status list ``fill``, in one
    transaction. ``order``: the chunk's row positions in job order (``job_order``); the
    row columns come from the Arrow chunk, the workers' columns as Arrow arrays."""
    ids, bases, tokens, batch_ids = [], [], [], []
    batches: dict[str, list] = {f.name: [] for f in _BATCH_SCHEMA}
    for job, result in zip(jobs, results):
        n = len(result.tokens)
        ids.append(result.licence_ids)
        bases.append(result.base_ids)
        tokens.append(result.tokens)
        batch_ids.append(pa.repeat(pa.scalar(result.batch_id if mode == "batch" else None, pa.string()), n))
        if mode == "batch":
            issuer = job.columns[8][0]
            for k, v in (("batch_id", result.batch_id), ("issuer_code", getattr(issuer, "as_py", lambda: issuer)()),
                         ("kid", job.kid), ("size", n), ("root", result.root),
                         ("root_jws", result.root_jws), ("issued_at", issued_at)):
                batches[k].append(v)
    rows = part.take(order)
    n = rows.num_rows
    columns = {
        "licence_id": pa.chunked_array(ids, pa.string()), "base_id": pa.chunked_array(bases, pa.string()),
        "cert_key": rows.column("cert_key"), "version": rows.column("version"),
        "token": pa.chunked_array(tokens, pa.string()),
        "issued_at": pa.repeat(pa.scalar(issued_at, pa.timestamp("us")), n),
        "supersedes": rows.column("prev_licence_id"), "issuer_code": rows.column("issuer_code"),
        "licence_type_code": rows.column("licence_type_code"), "holder_code": rows.column("holder_code"),
        "mode": pa.repeat(pa.scalar(mode, pa.string()), n), "batch_id": pa.chunked_array(batch_ids, pa.string()),
        "status_list": pa.array([r[0] for r in refs], pa.string()).take(order),
        "status_index": pa.array([r[1] for r in refs], pa.int32()).take(order)}
    new = pa.table({f.name: columns[f.name].cast(f.type) for f in _LICENCE_SCHEMA})
    if len(new.column("token")) != n:
        raise RuntimeError(f"the workers returned {len(new.column('token'))} tokens for {n} rows")
    new_batches = pa.table(batches, schema=_BATCH_SCHEMA)
    cols_sql = ", ".join(LICENCE_COLUMNS)
    con.execute("BEGIN")
    try:
        con.register("new_licences", new)
        con.register("new_batches", new_batches)
        con.execute("DELETE FROM licences WHERE licence_id IN (SELECT licence_id FROM new_licences)")
        con.execute(f"INSERT INTO licences ({cols_sql}) SELECT {cols_sql} FROM new_licences")
        con.execute("INSERT OR REPLACE INTO licence_batches SELECT * FROM new_batches")
        _StatusAssigner.save_fill(con, fill)
        con.unregister("new_licences")
        con.unregister("new_batches")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
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
        self._orders: dict[str, list[int]] = {}

    def _open_list(self, issuer: str) -> str:
        import secrets

        mine = sorted(k for k, v in self.lists.items() if v[0] == issuer)
        if mine and self.lists[mine[-1]][2] < self.size:
            return mine[-1]
        list_id = f"{issuer}-{len(mine) + 1:04d}"
        self.lists[list_id] = [issuer, secrets.token_hex(16), 0]
        return list_id

    def assign(self, issuers: list[str]) -> list[tuple[str, int]]:
        from certificates.statuslist import index_order

        out = []
        current: dict[str, tuple[str, list, list[int]]] = {}  # issuer -> its open list, until full
        size = self.size
        for issuer in issuers:
            cur = current.get(issuer)
            if cur is None or cur[1][2] >= size:
                list_id = self._open_list(issuer)
                entry = self.lists[list_id]
                order = self._orders.get(list_id)
                if order is None:
                    order = self._orders[list_id] = index_order(entry[1], size)
                cur = current[issuer] = (list_id, entry, order)
            list_id, entry, order = cur
            out.append((list_id, order[entry[2]]))
            entry[2] += 1
        return out

    def fill(self) -> dict[str, list]:
        """Each list's [issuer_code, seed, used] as of now (a copy, for :meth:`save_fill`)."""
        return {list_id: list(entry) for list_id, entry in self.lists.items()}

    def save(self, con) -> None:
        self.save_fill(con, self.lists)

    @staticmethod
    def save_fill(con, fill: dict[str, list]) -> None:
        for list_id, (issuer, seed, used) in fill.items():
            con.execute("""INSERT INTO status_lists (list_id, issuer_code, seed, used) VALUES (?, ?, ?, ?)
                           ON CONFLICT (list_id) DO UPDATE SET used = excluded.used""",
                        [list_id, issuer, seed, used])


def publish_status_lists(con, keyring, layout: Layout, *, at: dt.datetime,
                         published_at: dt.datetime | None = None) -> int:
    """Sign every status list from the certificates' current status and publish it under
    ``<data-dir>/status`` (and in ``status_lists``); returns how many lists were written."""
    from certificates.statuslist import DEFAULT_VALIDITY, sign_status_list, write_list

    hours = os.environ.get(ENV_STATUS_VALIDITY)
    validity = dt.timedelta(hours=float(hours)) if hours else DEFAULT_VALIDITY
    entries: dict[str, dict[int, str]] = {}
    for list_id, index, status in con.execute("""
            SELECT l.status_list, l.status_index, c.status FROM licences l
            JOIN certificates c ON c.cert_key = l.cert_key
            WHERE l.status_list IS NOT NULL""").fetchall():
        entries.setdefault(list_id, {})[index] = status
    lists = con.execute("SELECT list_id, issuer_code FROM status_lists ORDER BY list_id").fetchall()
    valid_from = at.astimezone(CST).replace(tzinfo=None)
    from certificates._time import aware

    until = max(aware(at), aware(published_at or at)).astimezone(CST) + validity
    for list_id, issuer_code in lists:
        issuer = keyring.issuer(issuer_code)
        token = sign_status_list(list_id=list_id, issuer_code=issuer_code, kid=issuer.kid,
                                 private_key=issuer.private_key, statuses=entries.get(list_id, {}), at=at,
                                 until=until)
        con.execute("UPDATE status_lists SET token = ?, valid_from = ?, valid_until = ? WHERE list_id = ?",
                    [token, valid_from, until.replace(tzinfo=None), list_id])
        write_list(layout.root / "status", list_id, token)
    return len(lists)
