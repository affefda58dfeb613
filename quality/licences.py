"""The "issued licences" suite: every licence the hub signed, checked like a department batch.

After the library build issues licences, :func:`check_issued` exports the
``licences`` table (with each certificate's holder code type) as a batch of the
``licences`` dataset and runs :func:`quality.check_batch` on it: GB/T 36904 structure
and MOD 37,36 check (``certificates.check_identifier``; the known off-by-one variant is
flagged, not rejected), identifier parts agreeing with the licence's type, issuer and
version, and holder code type consistency (111 ⇒ GB 11643, 001 ⇒ GB 32100).  The
result is for auditors (quality history, Data Docs, and the library's ``quarantine``
table, where each quarantined licence is listed with every reason like a source's
rows); it never un-issues a licence.  A licence that passes a later build's check
resolves its earlier quarantine entries (``resolved_interval``).
"""

from __future__ import annotations

import datetime as dt
from quality.results import CheckResult

SOURCE_ID = "hub_licences"
DATASET = "licences"

EXPORT_SQL = f"""
    SELECT l.licence_id, l.cert_key, l.licence_type_code, l.issuer_code, l.holder_code,
           coalesce(c.holder_code_type, h.holder_code_type) AS holder_code_type,
           CAST(l.version AS VARCHAR) AS version, strftime(l.issued_at, '%Y-%m-%dT%H:%M:%S') AS issued_at,
           l.licence_id AS _record_key, '{SOURCE_ID}' AS _source_id, ? AS _interval
    FROM licences l
    LEFT JOIN certificates c ON c.cert_key = l.cert_key
    LEFT JOIN (SELECT DISTINCT cert_key, holder_code_type FROM certificate_history) h
      ON c.cert_key IS NULL AND h.cert_key = l.cert_key
    ORDER BY l.licence_id"""


def interval_key(at: dt.datetime) -> str:
    """The build moment as the batch's interval key (one partition per build)."""
    return f"{at:%Y%m%dT%H%M%S}"


def check_issued(layout, *, at: dt.datetime, run_id: str) -> tuple[str, CheckResult]:
    """Export the library's licences and check them; returns (interval key, result)."""
    from quality import check_lake_batch
    from warehouse.duck import literal
    from warehouse.lake import Lake
    from warehouse.library import Library

    key = interval_key(at)
    lake = Lake.from_env(layout)
    out = lake.checked(SOURCE_ID, key)
    with lake.staging(out) as staged, Library.from_env(layout).reader() as con:
        con.execute(f"COPY ({EXPORT_SQL}) TO {literal(staged / 'raw.parquet')} (FORMAT parquet)", [key])
    raw = lake.join("checked", f"source={SOURCE_ID}", f"interval={key}", "raw.parquet")
    result = check_lake_batch(lake, raw, DATASET, run_id=run_id, out=out,
                              docs_dir=layout.reports / "data_docs" / SOURCE_ID / key)
    record_quarantine(layout, key, result)
    return key, result


def record_quarantine(layout, key: str, result: CheckResult) -> None:
    """Write the quarantined licences into the library's ``quarantine`` table, with their reasons.

    Same rows and shape as a source batch's quarantine (``warehouse.load``): this
    build's entries replace an earlier check of the same build, and an entry of an
    earlier build is resolved by this build when its licence passed now.
    """
    from warehouse.duck import literal
    from warehouse.library import Library
    from warehouse.load import _insert_quarantine

    def record(con) -> None:
        con.execute("DELETE FROM quarantine WHERE source_id = ? AND interval = ?", [SOURCE_ID, key])
        _insert_quarantine(con, result.quarantine_path, DATASET)
        con.execute(f"""
            UPDATE quarantine SET resolved_interval = ?
            WHERE source_id = ? AND resolved_interval IS NULL AND interval <> ?
              AND record_key IN (SELECT _record_key
                                 FROM read_parquet({literal(result.passed_path)}, hive_partitioning = false))""",
                    [key, SOURCE_ID, key])

    Library.from_env(layout).write(record, lane="merge", reads=result)
