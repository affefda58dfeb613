"""The library schema (证照库) and its migrations.

Migrations are numbered and applied in order inside one transaction each; the
applied version is kept in ``schema_migrations``. The snapshot the service reads
has the same tables.
"""

from __future__ import annotations

import contextlib
import re

import duckdb

from warehouse.licence_store import STORE_COLUMNS, STORE_DDL, view_sql

CERT_COLUMNS = (
    "cert_key", "licence_type_code", "licence_type_name", "cert_number", "holder_code", "holder_code_type",
    "holder_name", "issuer_name", "issuer_code", "issue_date", "valid_from", "valid_until", "status",
    "extension", "flags", "source_id", "source_updated_at", "content_hash", "row_hash", "version",
    "changed_interval",
)
SUBJECT_COLUMNS = ("subject_code", "code_type", "name", "kind", "sex", "birth_date", "address", "division_code",
                   "legal_rep_code", "source_id", "updated_at", "row_hash")

_CERT_DDL = """
    cert_key VARCHAR NOT NULL,
    licence_type_code VARCHAR NOT NULL,
    licence_type_name VARCHAR NOT NULL,
    cert_number VARCHAR NOT NULL,
    holder_code VARCHAR NOT NULL,
    holder_code_type VARCHAR NOT NULL,
    holder_name VARCHAR,
    issuer_name VARCHAR NOT NULL,
    issuer_code VARCHAR NOT NULL,
    issue_date DATE,
    valid_from DATE,
    valid_until DATE,            -- NULL = 长期 (no end)
    status VARCHAR NOT NULL,     -- GB/T 36903 practice codes: 01 valid, 02 suspended, 03 revoked ...
    extension JSON,
    flags VARCHAR[],
    source_id VARCHAR NOT NULL,
    source_updated_at TIMESTAMP,
    content_hash VARCHAR NOT NULL,  -- content except status: a change bumps the licence version
    row_hash VARCHAR NOT NULL,      -- everything incl. status
    version INTEGER NOT NULL,
    changed_interval VARCHAR NOT NULL
"""

MIGRATIONS: tuple[str, ...] = (
    # 1: the library
    f"""
    CREATE TABLE subjects (
        subject_code VARCHAR PRIMARY KEY,
        code_type VARCHAR NOT NULL,       -- 111 citizen ID, 001 credit code
        name VARCHAR,
        kind VARCHAR NOT NULL,            -- person | organisation
        sex VARCHAR,
        birth_date DATE,
        address VARCHAR,
        division_code VARCHAR,
        legal_rep_code VARCHAR,
        source_id VARCHAR NOT NULL,
        updated_at TIMESTAMP,
        row_hash VARCHAR NOT NULL
    );
    CREATE TABLE certificates ({_CERT_DDL});
    CREATE TABLE certificate_history ({_CERT_DDL}, superseded_interval VARCHAR NOT NULL);
    CREATE TABLE licences (
        licence_id VARCHAR PRIMARY KEY,
        base_id VARCHAR NOT NULL,
        cert_key VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        token VARCHAR NOT NULL,
        issued_at TIMESTAMP NOT NULL,
        supersedes VARCHAR,
        issuer_code VARCHAR NOT NULL,
        licence_type_code VARCHAR NOT NULL,
        holder_code VARCHAR NOT NULL
    );
    CREATE TABLE quarantine (
        source_id VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        record_key VARCHAR,
        reasons JSON NOT NULL,
        "row" JSON NOT NULL,
        resolved_interval VARCHAR
    );
    CREATE TABLE quality_runs (
        run_id VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        rows BIGINT NOT NULL,
        passed BIGINT NOT NULL,
        quarantined BIGINT NOT NULL,
        flagged BIGINT NOT NULL,
        per_rule JSON NOT NULL,
        gx_success BOOLEAN NOT NULL,
        status VARCHAR NOT NULL,          -- merged | rejected
        finished_at TIMESTAMP NOT NULL
    );
    CREATE TABLE watermarks (
        source_id VARCHAR PRIMARY KEY,
        cursor VARCHAR NOT NULL,
        updated_interval VARCHAR NOT NULL
    );
    -- the extract bounds each loaded interval used, so a re-run of that interval pulls the same range
    CREATE TABLE loaded_intervals (
        source_id VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        lower VARCHAR,                    -- NULL: from the beginning (the first run)
        upper VARCHAR NOT NULL,
        PRIMARY KEY (source_id, interval)
    );
    """,
    # 2: batch issuance (certificates.batch): how each licence was signed, and the signed batch roots
    """
    ALTER TABLE licences ADD COLUMN mode VARCHAR DEFAULT 'single';   -- single | batch
    ALTER TABLE licences ADD COLUMN batch_id VARCHAR;                -- batch mode: licence_batches.batch_id
    CREATE TABLE licence_batches (
        batch_id VARCHAR PRIMARY KEY,
        issuer_code VARCHAR NOT NULL,
        kid VARCHAR NOT NULL,
        size INTEGER NOT NULL,
        root VARCHAR NOT NULL,            -- base64url SHA-256 Merkle root (RFC 9162)
        root_jws VARCHAR NOT NULL,        -- the signed root statement, a compact JWS
        issued_at TIMESTAMP NOT NULL
    );
    """,
    # 3: cross-department check findings (比对结果), recomputed after every merge (warehouse.crosscheck)
    """
    CREATE TABLE crosscheck_findings (
        source_id VARCHAR NOT NULL,       -- the department whose record disagrees with another's
        dataset VARCHAR NOT NULL,
        record_key VARCHAR NOT NULL,      -- that record's business key
        "check" VARCHAR NOT NULL,         -- legal_rep_missing | spouse_missing | owner_missing | name_mismatch
        field VARCHAR NOT NULL,
        subject_code VARCHAR,             -- the person / organisation code compared
        "values" JSON NOT NULL,           -- {source_id: value} per department (null: not on file)
        interval VARCHAR NOT NULL         -- the interval the record last changed in
    );
    """,
    # 4: status lists (certificates.statuslist): each licence's entry, and each list's seed and fill
    """
    ALTER TABLE licences ADD COLUMN status_list VARCHAR;
    ALTER TABLE licences ADD COLUMN status_index INTEGER;
    CREATE TABLE status_lists (
        list_id VARCHAR PRIMARY KEY,
        issuer_code VARCHAR NOT NULL,
        seed VARCHAR NOT NULL,            -- secret: orders the random index assignment
        used INTEGER NOT NULL,            -- entries handed out so far
        token VARCHAR,                    -- the last signed list (compact JWS)
        valid_from TIMESTAMP,
        valid_until TIMESTAMP
    );
    """,
    # 5: licences stored compactly (warehouse.licence_store): each token as its three segments, new
    # builds' rows in registered Parquet files, `licences` a view that joins the segments back
    f"""
    {STORE_DDL}
    INSERT INTO licence_store
    SELECT licence_id, base_id, cert_key, version, issued_at, supersedes, issuer_code, licence_type_code,
           holder_code, mode, batch_id, status_list, status_index,
           CASE WHEN len(string_split(token, '.')) = 3 THEN split_part(token, '.', 1)
                ELSE error('licence ' || licence_id || ': its stored token is not three segments') END,
           split_part(token, '.', 2), split_part(token, '.', 3)
    FROM licences;
    DROP TABLE licences;
    {view_sql([])};
    """,
    # 6: write lanes (warehouse.library): on DuckLake every write transaction bumps its lane's row, so
    # two writers of one lane conflict at COMMIT and the later one runs again (embedded: unused)
    """
    CREATE TABLE library_lane_merge (generation BIGINT NOT NULL);
    INSERT INTO library_lane_merge VALUES (0);
    CREATE TABLE library_lane_issue (generation BIGINT NOT NULL);
    INSERT INTO library_lane_issue VALUES (0);
    """,
)


def ducklake_ddl(sql: str) -> str:
    """``sql`` without the PRIMARY KEY and UNIQUE constraints DuckLake does not support. Their
    uniqueness is kept by the writers themselves: every upsert here is a DELETE then an INSERT
    (no ON CONFLICT), and licence identifiers are checked by :mod:`warehouse.licence_store`."""
    sql = re.sub(r",\s*PRIMARY KEY\s*\([^)]*\)", "", sql)
    return re.sub(r"\s+(PRIMARY KEY|UNIQUE)\b", "", sql)


def migrate(con: duckdb.DuckDBPyConnection, *, ducklake: bool = False) -> int:
    """Apply pending migrations; return the schema version. ``ducklake``: the library is a DuckLake
    (constraints dropped, :func:`ducklake_ddl`; the caller retries a migration that conflicted with
    another process's)."""
    ddl_of = ducklake_ddl if ducklake else (lambda sql: sql)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_catalog = current_database()").fetchall()}
    if "schema_migrations" not in tables:
        con.execute(ddl_of("CREATE TABLE IF NOT EXISTS schema_migrations "
                           "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"))
    current = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
    for version, ddl in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        con.execute("BEGIN")
        try:
            if con.execute("SELECT count(*) FROM schema_migrations WHERE version = ?", [version]).fetchone()[0]:
                con.execute("ROLLBACK")  # applied meanwhile by another process
                continue
            con.execute(ddl_of(ddl))
            con.execute("INSERT INTO schema_migrations VALUES (?, current_timestamp)", [version])
            con.execute("COMMIT")
        except Exception:
            with contextlib.suppress(duckdb.Error):  # a refused COMMIT has ended the transaction already
                con.execute("ROLLBACK")
            raise
        current = version
    return current


CONTENT_TABLES = {
    "subjects": "subject_code",
    "certificates": "cert_key",
    "certificate_history": "cert_key, version, superseded_interval",
    "licences": "licence_id",
    "quarantine": "source_id, interval, record_key",
    "watermarks": "source_id",
    "loaded_intervals": "source_id, interval",
}


def content_hash(con: duckdb.DuckDBPyConnection) -> str:
    """One digest over every library table's rows (order-independent) — for idempotency checks."""
    parts = []
    for table in CONTENT_TABLES:
        h = con.execute(
            f"SELECT count(*), coalesce(md5(string_agg(md5(CAST(t AS VARCHAR)), '' ORDER BY md5(CAST(t AS VARCHAR)))), '') "
            f"FROM {table} t").fetchone()
        parts.append(f"{table}:{h[0]}:{h[1]}")
    import hashlib

    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
