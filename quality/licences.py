"""The "issued licences" suite: every licence the hub signed, checked like a department batch.

After the library build issues licences, :func:`check_issued` exports the
``licences`` table (with each certificate's holder code type) as a batch of the
``licences`` dataset and runs :func:`quality.check_batch` on it: GB/T 36904 structure
and MOD 37,36 check (``certificates.check_identifier``; the known off-by-one variant is
flagged, not rejected), identifier parts agreeing with the licence's type, issuer and
version, and holder code type consistency (111 ⇒ GB 11643, 001 ⇒ GB 32100).  The
result is for auditors (quality history, Data Docs); it never un-issues a licence.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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
    from quality import check_batch
    from warehouse.duck import connect
    from warehouse.lock import writer_lock

    key = interval_key(at)
    out_dir = layout.lake / "checked" / f"source={SOURCE_ID}" / f"interval={key}"
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = Path(out_dir) / "raw.parquet"
    with writer_lock(layout.library):
        con = connect(layout.library, read_only=True)
        try:
            con.execute(f"COPY ({EXPORT_SQL}) TO '{str(raw).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)",
                        [key])
        finally:
            con.close()
    result = check_batch(raw, DATASET, run_id=run_id, out_dir=out_dir,
                         docs_dir=layout.reports / "data_docs" / SOURCE_ID / key)
    return key, result
