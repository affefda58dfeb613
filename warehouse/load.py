"""Merge a checked batch into the library: history kept, one transaction, watermark last.

The merge is idempotent: a re-run of the same interval finds every row's hash
unchanged and writes nothing new; an older drop never overwrites a newer record
(``source_updated_at`` decides).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from quality.results import CheckResult
from warehouse.datadir import Layout
from warehouse.duck import literal
from warehouse.faults import checkpoint
from warehouse.library import Library
from warehouse.mapping import certificate_sql, subject_sql
from warehouse.schema import CERT_COLUMNS, SUBJECT_COLUMNS, migrate


@dataclass(frozen=True)
class MergeResult:
    source_id: str
    interval: str
    certificates_new: int
    certificates_changed: int
    subjects_upserted: int
    quarantined: int
    watermark: str


_CONTENT = ("licence_type_code", "cert_number", "holder_code", "holder_code_type", "holder_name", "issuer_name",
            "issuer_code", "issue_date", "valid_from", "valid_until", "extension")


ENV_SLICE_ROWS = "ONEWINDOW_MERGE_SLICE_ROWS"
DEFAULT_SLICE_ROWS = 1_000_000


def merge_slices(batch_rows: int) -> int:
    """How many slices a batch of ``batch_rows`` source rows is merged in.

    A batch is merged slice by slice (rows whose key hashes to slice *i* of *k*), all in the
    one transaction, so the merge's working set — the deduplicated incoming rows and the
    changed rows, held by DuckDB as temporary tables — is bounded by the slice, not by the
    batch: a province's first load and a 1% daily change take the same code path. At most
    ``ONEWINDOW_MERGE_SLICE_ROWS`` (default 1,000,000) source rows per slice; a key lives in
    exactly one slice, so deduplication, change detection and versions are unchanged.
    """
    raw = os.environ.get(ENV_SLICE_ROWS)
    try:
        per_slice = int(raw) if raw else DEFAULT_SLICE_ROWS
    except ValueError:
        raise ValueError(f"{ENV_SLICE_ROWS}={raw!r}: not a whole number of rows") from None
    if per_slice < 1:
        raise ValueError(f"{ENV_SLICE_ROWS}={raw!r}: must be at least 1 row per slice")
    return max(1, -(-batch_rows // per_slice))


def _slice_filters(key: str, slices: int) -> list[str]:
    """One ``WHERE`` clause per slice of ``key``'s hash (an empty clause for one slice)."""
    if slices == 1:
        return [""]
    return [f"WHERE hash({key}) % {slices} = {i}" for i in range(slices)]


def open_library(layout: Layout, *, reads: CheckResult | None = None):
    """Open the library for writing and migrate it (embedded: the caller holds the writer lock;
    see :mod:`warehouse.library`).

    With ``reads``, the connection can also read that checked batch's outputs where
    they live (a lake on object storage needs DuckDB's httpfs and the lake's secret).
    """
    return Library.from_env(layout).connect(reads=reads)


def merge_batch(layout: Layout, *, source_id: str, dataset: str, interval: str, lower: str | None, upper: str,
                run_id: str, batch: CheckResult, finished_at: str) -> MergeResult:
    """Merge passing rows and quarantine; advance the watermark to ``upper`` in the same transaction."""
    def merge(con) -> MergeResult:
        con.execute(f"CREATE TEMP VIEW batch AS SELECT * FROM "
                    f"read_parquet({literal(batch.passed_path)}, hive_partitioning = false)")
        slices = merge_slices(con.execute("SELECT count(*) FROM batch").fetchone()[0])
        content = " || '|' || ".join(f"coalesce(CAST({c} AS VARCHAR), '∅')" for c in _CONTENT)
        cols = ", ".join(CERT_COLUMNS)
        new = changed = 0
        for where in _slice_filters("cert_key", slices):
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE incoming AS
                SELECT *, md5({content}) AS content_hash, md5({content} || '|' || status) AS row_hash
                FROM ({certificate_sql(dataset)}) {where}
                QUALIFY row_number() OVER (PARTITION BY cert_key ORDER BY source_updated_at DESC NULLS LAST) = 1""")
            con.execute("""
                CREATE OR REPLACE TEMP TABLE changed AS
                SELECT i.*, c.version AS old_version, c.content_hash AS old_content_hash
                FROM incoming i LEFT JOIN certificates c USING (cert_key)
                WHERE c.cert_key IS NULL
                   OR (c.row_hash <> i.row_hash
                       AND coalesce(i.source_updated_at, TIMESTAMP '1900-01-01')
                           >= coalesce(c.source_updated_at, TIMESTAMP '1900-01-01'))""")
            con.execute("DROP TABLE incoming")
            n_new, n_changed = con.execute(
                "SELECT count(*) FILTER (old_version IS NULL), count(*) FILTER (old_version IS NOT NULL) FROM changed"
            ).fetchone()
            new, changed = new + n_new, changed + n_changed
            con.execute(f"""
                INSERT INTO certificate_history
                SELECT {', '.join('c.' + c for c in CERT_COLUMNS)}, ? FROM certificates c
                WHERE c.cert_key IN (SELECT cert_key FROM changed WHERE old_version IS NOT NULL)""", [interval])
            con.execute("DELETE FROM certificates WHERE cert_key IN (SELECT cert_key FROM changed)")
            con.execute(f"""
                INSERT INTO certificates ({cols})
                SELECT cert_key, licence_type_code, licence_type_name, cert_number, holder_code, holder_code_type,
                       holder_name, issuer_name, issuer_code, issue_date, valid_from, valid_until, status, extension,
                       flags, source_id, source_updated_at, content_hash, row_hash,
                       CASE WHEN old_version IS NULL THEN 1
                            WHEN old_content_hash <> content_hash THEN old_version + 1
                            ELSE old_version END,
                       ?
                FROM changed""", [interval])
            con.execute("DROP TABLE changed")
        checkpoint("merge_mid_transaction")
        subjects = 0
        ssql = subject_sql(dataset)
        if ssql:
            scols = [c for c in SUBJECT_COLUMNS if c != "row_hash"]
            shash = " || '|' || ".join(f"coalesce(CAST({c} AS VARCHAR), '∅')" for c in scols)
            for where in _slice_filters("subject_code", slices):
                con.execute(f"""
                    CREATE OR REPLACE TEMP TABLE s_in AS
                    SELECT *, md5({shash}) AS row_hash FROM ({ssql}) {where}
                    QUALIFY row_number() OVER (PARTITION BY subject_code ORDER BY updated_at DESC NULLS LAST) = 1""")
                con.execute("""
                    CREATE OR REPLACE TEMP TABLE s_changed AS
                    SELECT s.* FROM s_in s LEFT JOIN subjects o USING (subject_code)
                    WHERE o.subject_code IS NULL
                       OR (o.row_hash <> s.row_hash AND coalesce(s.updated_at, TIMESTAMP '1900-01-01')
                                                        >= coalesce(o.updated_at, TIMESTAMP '1900-01-01'))""")
                con.execute("DROP TABLE s_in")
                subjects += con.execute("SELECT count(*) FROM s_changed").fetchone()[0]
                con.execute("DELETE FROM subjects WHERE subject_code IN (SELECT subject_code FROM s_changed)")
                con.execute(f"INSERT INTO subjects ({', '.join(SUBJECT_COLUMNS)}) "
                            f"SELECT {', '.join(SUBJECT_COLUMNS)} FROM s_changed")
                con.execute("DROP TABLE s_changed")
        # quarantine: this interval's rows replace any earlier attempt at the same interval
        con.execute("DELETE FROM quarantine WHERE source_id = ? AND interval = ?", [source_id, interval])
        _insert_quarantine(con, batch.quarantine_path, dataset)
        # a record that loads now resolves its earlier quarantine entries
        con.execute("""
            UPDATE quarantine SET resolved_interval = ?
            WHERE source_id = ? AND resolved_interval IS NULL AND interval <> ?
              AND record_key IN (SELECT _record_key FROM batch)""", [interval, source_id, interval])
        _record_run(con, run_id=run_id, source_id=source_id, interval=interval, batch=batch, status="merged",
                    finished_at=finished_at)
        # upserts as DELETE + INSERT (a DuckLake table has no key to conflict on)
        old = con.execute("SELECT cursor, updated_interval FROM watermarks WHERE source_id = ?",
                          [source_id]).fetchone()
        cursor, updated = (upper, interval) if old is None or upper >= old[0] else old
        con.execute("DELETE FROM watermarks WHERE source_id = ?", [source_id])
        con.execute("INSERT INTO watermarks VALUES (?, ?, ?)", [source_id, cursor, updated])
        con.execute("DELETE FROM loaded_intervals WHERE source_id = ? AND interval = ?", [source_id, interval])
        con.execute("INSERT INTO loaded_intervals VALUES (?, ?, ?, ?)", [source_id, interval, lower, upper])
        checkpoint("merge_before_commit")
        return MergeResult(source_id, interval, new, changed, subjects, batch.quarantined, upper)

    return Library.from_env(layout).write(merge, lane="merge", reads=batch)


def _insert_quarantine(con, path: Path | str, dataset: str) -> None:
    meta = ("_reasons", "_source_id", "_interval", "_record_key", "_flags")
    source = f"read_parquet({literal(path)}, hive_partitioning = false)"  # the file's columns, none from its path
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    payload = ", ".join(f"'{c}', \"{c}\"" for c in cols if c not in meta)
    con.execute(f"""
        INSERT INTO quarantine (source_id, dataset, interval, record_key, reasons, "row", resolved_interval)
        SELECT _source_id, ?, _interval, _record_key, CAST(_reasons AS JSON), json_object({payload}), NULL
        FROM {source}""", [dataset])


def record_run(layout: Layout, *, source_id: str, interval: str, run_id: str, batch: CheckResult,
               status: str, finished_at: str) -> None:
    """Record a run that merges nothing in the quality history.

    ``rejected``: a batch stopped by its error threshold (the library's data is not
    touched); ``checked``: a check that loads nothing (the issued-licences suite).
    """
    Library.from_env(layout).write(
        lambda con: _record_run(con, run_id=run_id, source_id=source_id, interval=interval, batch=batch,
                                status=status, finished_at=finished_at), lane="merge")


def _record_run(con, *, run_id: str, source_id: str, interval: str, batch: CheckResult, status: str,
                finished_at: str) -> None:
    con.execute("DELETE FROM quality_runs WHERE source_id = ? AND interval = ?", [source_id, interval])
    con.execute("INSERT INTO quality_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        run_id, source_id, batch.dataset, interval, batch.rows, batch.passed, batch.quarantined, batch.flagged,
        json.dumps(batch.per_rule, ensure_ascii=False, sort_keys=True), bool(batch.gx_success), status, finished_at])


@dataclass(frozen=True)
class ExtractState:
    """What the extract needs from the library: the watermark, and the bounds of an earlier load of this interval."""

    watermark: str | None
    loaded_before: bool
    lower: str | None


def read_extract_state(layout: Layout, source_id: str, interval: str) -> ExtractState:
    library = Library.from_env(layout)
    if not library.exists():
        return ExtractState(None, False, None)
    with library.reader() as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_catalog = current_database()").fetchall()}
        if "watermarks" not in tables:
            return ExtractState(None, False, None)
        con.execute("BEGIN")  # one snapshot for both reads
        row = con.execute("SELECT cursor FROM watermarks WHERE source_id = ?", [source_id]).fetchone()
        prev = con.execute("SELECT lower FROM loaded_intervals WHERE source_id = ? AND interval = ?",
                           [source_id, interval]).fetchone() if "loaded_intervals" in tables else None
        con.execute("COMMIT")
        return ExtractState(row[0] if row else None, prev is not None, prev[0] if prev else None)
