"""The service store's tables and their migrations, written once for both backends.

Migrations are numbered and applied in order on open, each in one transaction, and the
applied versions are kept in ``schema_migrations`` (as for the library,
:mod:`warehouse.schema`). The DDL is portable: column types ``TEXT``, ``INTEGER`` and
``BLOB`` only, no ``;`` inside a statement; each backend maps it (``_ddl``): SQLite takes it
as it is, PostgreSQL as ``TEXT COLLATE "C"`` (byte order, as SQLite compares), ``BIGINT``
and ``BYTEA``.

Migration 1 is the schema as it stood before migrations were numbered (``IF NOT EXISTS``
throughout), so a store made then is brought in without change.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: access, holder authorisation, usage log and seals, material library, web pages,
    #    issue grants (exchange.results), client certificates (exchange.api.core.tls)
    """
    CREATE TABLE IF NOT EXISTS departments (
        code TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS clients (
        client_id TEXT PRIMARY KEY, department_code TEXT NOT NULL REFERENCES departments(code),
        name TEXT NOT NULL, roles TEXT NOT NULL DEFAULT '', disabled INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS api_keys (
        key_id TEXT PRIMARY KEY, client_id TEXT NOT NULL REFERENCES clients(client_id),
        salt BLOB NOT NULL, digest BLOB NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
    CREATE TABLE IF NOT EXISTS grants (
        department_code TEXT NOT NULL REFERENCES departments(code), licence_type_code TEXT NOT NULL,
        granted_by TEXT NOT NULL, granted_at TEXT NOT NULL,
        PRIMARY KEY (department_code, licence_type_code));
    CREATE TABLE IF NOT EXISTS applications (
        case_number TEXT PRIMARY KEY, item_code TEXT NOT NULL, holder_code TEXT NOT NULL,
        clerk_id TEXT NOT NULL, client_id TEXT NOT NULL, accepted_at TEXT NOT NULL, basis TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS auth_codes (
        digest TEXT PRIMARY KEY, holder_code TEXT NOT NULL, issued_at TEXT NOT NULL,
        expires_at TEXT NOT NULL, used_at TEXT, used_case TEXT);
    CREATE TABLE IF NOT EXISTS usage_log (
        seq INTEGER PRIMARY KEY, day TEXT NOT NULL, record TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS usage_log_day ON usage_log(day);
    CREATE TABLE IF NOT EXISTS seals (
        day TEXT PRIMARY KEY, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, count INTEGER NOT NULL,
        merkle_root TEXT NOT NULL, prev_digest TEXT NOT NULL, digest TEXT NOT NULL, jws TEXT NOT NULL,
        file TEXT NOT NULL, sealed_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS seal_failures (
        day TEXT NOT NULL, attempted_at TEXT NOT NULL, error TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS materials (
        digest TEXT PRIMARY KEY, size INTEGER NOT NULL, media_type TEXT NOT NULL, stored_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS material_records (
        material_id TEXT PRIMARY KEY, digest TEXT NOT NULL REFERENCES materials(digest),
        material_type TEXT NOT NULL, holder_code TEXT NOT NULL, filename TEXT, case_number TEXT,
        submitted_by TEXT NOT NULL, submitted_at TEXT NOT NULL,
        verified_by TEXT, verified_at TEXT, reuse_until TEXT);
    CREATE INDEX IF NOT EXISTS material_records_holder ON material_records(holder_code);
    CREATE TABLE IF NOT EXISTS store_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1), gen INTEGER NOT NULL);
    INSERT INTO store_generation VALUES (1, 0) ON CONFLICT DO NOTHING;
    CREATE TABLE IF NOT EXISTS web_accounts (
        username TEXT PRIMARY KEY, role TEXT NOT NULL, display_name TEXT NOT NULL,
        client_id TEXT, salt BLOB NOT NULL, digest BLOB NOT NULL, params TEXT NOT NULL,
        created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS counter_cases (
        case_number TEXT PRIMARY KEY, holder_code TEXT NOT NULL, code_type TEXT NOT NULL, agent_code TEXT,
        item_codes TEXT NOT NULL, clerk TEXT NOT NULL, client_id TEXT NOT NULL, opened_at TEXT NOT NULL,
        accepted_at TEXT, received TEXT NOT NULL DEFAULT '[]', outcome TEXT);
    CREATE INDEX IF NOT EXISTS counter_cases_opened ON counter_cases(opened_at);
    CREATE TABLE IF NOT EXISTS issue_grants (
        department_code TEXT NOT NULL REFERENCES departments(code), licence_type_code TEXT NOT NULL,
        granted_by TEXT NOT NULL, granted_at TEXT NOT NULL,
        PRIMARY KEY (department_code, licence_type_code));
    CREATE TABLE IF NOT EXISTS client_certs (
        fingerprint TEXT PRIMARY KEY, client_id TEXT NOT NULL REFERENCES clients(client_id),
        serial TEXT NOT NULL, not_after TEXT NOT NULL, issued_at TEXT NOT NULL, revoked_at TEXT);
    CREATE INDEX IF NOT EXISTS client_certs_client ON client_certs(client_id);
    """,
)

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)
"""


def statements(ddl: str) -> list[str]:
    """The statements of a migration (split at ``;``: portable DDL has none inside a statement)."""
    return [s.strip() for s in ddl.split(";") if s.strip()]
