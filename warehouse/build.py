"""Library build: issue a signed electronic licence for every new or changed certificate.

A certificate whose content changed gets a new licence *version* under the same
identifier, recording the identifier it supersedes (GB/T 36904). A status-only
change (revocation, suspension) does not reissue: verifiers read the status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa

from warehouse.datadir import Layout
from warehouse.lock import writer_lock
from warehouse.load import open_library

CST = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class BuildResult:
    issued: int
    reissued: int
    licences_total: int


def issue_pending(layout: Layout, *, at: dt.datetime, chunk: int = 20_000) -> BuildResult:
    """Sign licences for certificates that lack one at their current version."""
    from certificates import Keyring, issue_licence, publish_trust

    keyring = Keyring.load_or_create(layout, at=at)
    publish_trust(keyring, layout.trust)
    issued = reissued = 0
    with writer_lock(layout.library):
        con = open_library(layout)
        try:
            pending = con.execute("""
                SELECT c.*, prev.licence_id AS prev_licence_id
                FROM certificates c
                LEFT JOIN licences l ON l.cert_key = c.cert_key AND l.version = c.version
                LEFT JOIN licences prev ON prev.cert_key = c.cert_key AND prev.version = c.version - 1
                WHERE l.licence_id IS NULL
                ORDER BY c.cert_key""").fetch_arrow_table()
            issued_at = at.astimezone(CST).replace(tzinfo=None)  # naive China Standard Time, as stored elsewhere
            for offset in range(0, pending.num_rows, chunk):
                rows = pending.slice(offset, chunk).to_pylist()
                out: dict[str, list] = {k: [] for k in ("licence_id", "base_id", "cert_key", "version", "token",
                                                        "issued_at", "supersedes", "issuer_code",
                                                        "licence_type_code", "holder_code")}
                for row in rows:
                    issuer = keyring.issuer(row["issuer_code"])
                    lic = issue_licence(row, issuer, version=row["version"], supersedes=row["prev_licence_id"], at=at)
                    out["licence_id"].append(lic.licence_id)
                    out["base_id"].append(lic.base_id)
                    out["cert_key"].append(row["cert_key"])
                    out["version"].append(row["version"])
                    out["token"].append(lic.token)
                    out["issued_at"].append(issued_at)
                    out["supersedes"].append(lic.supersedes)
                    out["issuer_code"].append(row["issuer_code"])
                    out["licence_type_code"].append(row["licence_type_code"])
                    out["holder_code"].append(row["holder_code"])
                    if row["prev_licence_id"]:
                        reissued += 1
                    else:
                        issued += 1
                batch = pa.table(out)
                con.execute("BEGIN")
                con.register("new_licences", batch)
                con.execute("DELETE FROM licences WHERE licence_id IN (SELECT licence_id FROM new_licences)")
                con.execute("INSERT INTO licences SELECT * FROM new_licences")
                con.unregister("new_licences")
                con.execute("COMMIT")
            total = con.execute("SELECT count(*) FROM licences").fetchone()[0]
        finally:
            con.close()
    return BuildResult(issued, reissued, total)
