"""The embedded service store: one SQLite file, ``layout.service / "service.sqlite"``.

WAL journal, one connection per process guarded by a lock (requests run in a thread
pool), ``BEGIN IMMEDIATE`` around every read-then-write so the usage-log chain stays
linear even when a sealing job in another process writes too.

Usage-log appends are group-committed (:mod:`exchange.store.logwriter`): callers queue a
record and wait for the commit of the batch that holds it — on the event loop that
submitted it for ``async`` routes, in one writer thread for callers in threads. The writer
assigns ``seq`` and the chain hashes in order and commits each batch in one transaction.
A caller returns only after its record is committed, so an answer is never sent for a
read whose record could still be lost to a crash of the service (``synchronous=NORMAL``
in WAL mode: a committed transaction survives a crash of the process; only a power loss
before the next checkpoint can drop the most recent ones).

Each writer has a connection of its own, so reads on the main connection never wait for
a log commit (WAL: readers do not block on the writer).

Authentication and grants are cached until the store changes:
every write transaction of this class (any process: the service, the admin CLI) bumps
``store_generation.gen``. A write through this store object clears its cache at once;
another process's write is seen when a cached read re-reads the generation, at most
``GENERATION_CHECK_S`` (0.05 s) after the previous look — so a key or grant revoked by
the admin CLI stops working within 50 ms. Usage-log appends do not bump it. Accepted
applications are never changed or removed, so one that was found is kept regardless
(:meth:`SqliteStore.application`); the service loads the most recent ones at start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from exchange.store.base import CST, Application, Client, LogRecord, Seal, StoreError
from exchange.store.base import stored_time as _iso
from exchange.store.logwriter import LogWriter, LoopLogWriter, log_template
from warehouse.datadir import Layout

GENESIS = "0" * 64
KEY_PREFIX = "ow_"
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a counter

SCHEMA = """
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
"""


def chain_hash(prev_hash: str, record_json: str) -> str:
    """The usage-log chain link: sha256 over the previous hash and this record's canonical JSON."""
    return hashlib.sha256(f"{prev_hash}\n{record_json}".encode("utf-8")).hexdigest()


def _material(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row)


class _MaterialMethods:
    """Material library (材料库) metadata; the files themselves live content-addressed on disk."""

    _tx: Any
    _rows: Any

    def add_material(self, *, digest: str, size: int, media_type: str, material_id: str,
                     material_type: str, holder_code: str, filename: str | None, case_number: str | None,
                     submitted_by: str, at: dt.datetime) -> tuple[dict[str, Any], bool]:
        """Record a submission; returns (the material record, whether the blob is new)."""
        with self._tx() as db:
            new_blob = db.execute("INSERT OR IGNORE INTO materials VALUES (?, ?, ?, ?)",
                                  (digest, size, media_type, _iso(at))).rowcount == 1
            row = db.execute("SELECT * FROM material_records WHERE digest = ? AND material_type = ? "
                             "AND holder_code = ?", (digest, material_type, holder_code)).fetchone()
            if row is None:
                db.execute("INSERT INTO material_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                           (material_id, digest, material_type, holder_code, filename, case_number,
                            submitted_by, _iso(at)))
                row = db.execute("SELECT * FROM material_records WHERE material_id = ?", (material_id,)).fetchone()
        return _material(row), new_blob

    def verify_material(self, material_id: str, *, verified_by: str, reuse_until: dt.date,
                        at: dt.datetime) -> dict[str, Any]:
        with self._tx() as db:
            if db.execute("UPDATE material_records SET verified_by = ?, verified_at = ?, reuse_until = ? "
                          "WHERE material_id = ?", (verified_by, _iso(at), reuse_until.isoformat(),
                                                    material_id)).rowcount == 0:
                raise StoreError(f"no material {material_id!r}", code="material_not_found")
            return _material(db.execute("SELECT * FROM material_records WHERE material_id = ?",
                                        (material_id,)).fetchone())

    def material(self, material_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT r.*, m.size, m.media_type FROM material_records r "
                          "JOIN materials m USING (digest) WHERE material_id = ?", (material_id,))
        return _material(rows[0]) if rows else None

    _cached: Any

    def materials_of(self, holder_code: str) -> list[dict[str, Any]]:
        """A holder's materials; cached like grants (every once-only answer asks, most holders have none)."""
        return [dict(m) for m in self._cached("materials", holder_code, lambda: tuple(_material(r) for r in self._rows(
            "SELECT r.*, m.size, m.media_type FROM material_records r JOIN materials m USING (digest) "
            "WHERE holder_code = ? ORDER BY submitted_at, material_id", (holder_code,))))]

    def material_blob_count(self) -> int:
        return self._rows("SELECT count(*) FROM materials")[0][0]


# ---------------------------------------------------------------------------- web accounts and counter cases
# Tables of the web pages (exchange.web): sign-in accounts of clerks, auditors and
# administrators (scrypt hash, per-user salt) and the cases opened at the counter.
GENERATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_generation (id INTEGER PRIMARY KEY CHECK (id = 1), gen INTEGER NOT NULL);
INSERT OR IGNORE INTO store_generation VALUES (1, 0);
"""

WEB_SCHEMA = """
CREATE TABLE IF NOT EXISTS web_accounts (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, display_name TEXT NOT NULL,
    client_id TEXT, salt BLOB NOT NULL, digest BLOB NOT NULL, params TEXT NOT NULL,
    created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS counter_cases (
    case_number TEXT PRIMARY KEY, holder_code TEXT NOT NULL, code_type TEXT NOT NULL, agent_code TEXT,
    item_codes TEXT NOT NULL, clerk TEXT NOT NULL, client_id TEXT NOT NULL, opened_at TEXT NOT NULL,
    accepted_at TEXT, received TEXT NOT NULL DEFAULT '[]', outcome TEXT);
CREATE INDEX IF NOT EXISTS counter_cases_opened ON counter_cases(opened_at);
"""


class _WebMethods:
    """Accounts and counter cases of the web pages; hashing and checks live in exchange.web."""

    _tx: Any
    _rows: Any

    def add_account(self, username: str, *, role: str, display_name: str, client_id: str | None,
                    salt: bytes, digest: bytes, params: str, at: dt.datetime) -> None:
        """Create or replace an account (a new password replaces the old hash)."""
        with self._tx() as db:
            db.execute("INSERT INTO web_accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(username) DO UPDATE "
                       "SET role = excluded.role, display_name = excluded.display_name, "
                       "client_id = excluded.client_id, salt = excluded.salt, digest = excluded.digest, "
                       "params = excluded.params, disabled = 0",
                       (username, role, display_name, client_id, salt, digest, params, _iso(at)))

    def account(self, username: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM web_accounts WHERE username = ?", (username,))
        return dict(rows[0]) if rows else None

    def accounts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows("SELECT username, role, display_name, client_id, created_at, disabled "
                                            "FROM web_accounts ORDER BY username")]

    def open_case(self, case_number: str, *, holder_code: str, code_type: str, agent_code: str | None,
                  item_codes: Sequence[str], clerk: str, client_id: str, at: dt.datetime) -> None:
        import json

        with self._tx() as db:
            db.execute("INSERT INTO counter_cases (case_number, holder_code, code_type, agent_code, item_codes, "
                       "clerk, client_id, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (case_number, holder_code, code_type, agent_code, json.dumps(list(item_codes)), clerk,
                        client_id, _iso(at)))

    def counter_case(self, case_number: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM counter_cases WHERE case_number = ?", (case_number,))
        return dict(rows[0]) if rows else None

    def update_case(self, case_number: str, *, received: str | None = None, outcome: str | None = None,
                    accepted_at: dt.datetime | None = None) -> None:
        with self._tx() as db:
            if received is not None:
                db.execute("UPDATE counter_cases SET received = ? WHERE case_number = ?", (received, case_number))
            if outcome is not None:
                db.execute("UPDATE counter_cases SET outcome = ? WHERE case_number = ?", (outcome, case_number))
            if accepted_at is not None:
                db.execute("UPDATE counter_cases SET accepted_at = ? WHERE case_number = ?",
                           (_iso(accepted_at), case_number))

    def counter_cases(self, *, accepted_only: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT * FROM counter_cases"
        if accepted_only:
            sql += " WHERE accepted_at IS NOT NULL"
        return [dict(r) for r in self._rows(sql + " ORDER BY opened_at")]

    def all_applications(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows("SELECT * FROM applications ORDER BY accepted_at")]

    def search_log(self, *, holder_masked: str | None = None, department: str | None = None,
                   item: str | None = None, day_from: str | None = None, day_to: str | None = None,
                   decision: str | None = None, limit: int = 200) -> list[LogRecord]:
        """Usage-log records matching every given filter (item: substring), newest first."""
        where, args = ["1 = 1"], []
        for clause, value in (("day >= ?", day_from), ("day <= ?", day_to),
                              ("json_extract(record, '$.holder_masked') = ?", holder_masked),
                              ("json_extract(record, '$.department') = ?", department),
                              ("instr(json_extract(record, '$.purpose.item'), ?) > 0", item),
                              ("json_extract(record, '$.decision') = ?", decision)):
            if value:
                where.append(clause)
                args.append(value)
        rows = self._rows(f"SELECT * FROM usage_log WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
                          [*args, limit])
        return [LogRecord(r["seq"], r["day"], r["record"], r["prev_hash"], r["hash"]) for r in rows]
# ---------------------------------------------------------------------------- end of web block


class SqliteStore(_MaterialMethods, _WebMethods):
    """:class:`~exchange.store.base.ServiceStore` on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._db.executescript(WEB_SCHEMA)
        self._db.executescript(GENERATION_SCHEMA)
        self._cache: dict[tuple[str, str], Any] = {}
        self._applications: dict[str, Application] = {}  # see application()
        self._generation = -1
        self._next_generation_check = 0.0
        self._writer = LogWriter(self)
        self._loop_writer = LoopLogWriter(self)

    def _connect_writer(self) -> sqlite3.Connection:
        """The log writer's own connection (same pragmas)."""
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("UPDATE store_generation SET gen = gen + 1 WHERE id = 1")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._cache.clear()
            self._db.execute("COMMIT")

    _CACHE_LIMIT = 200_000
    GENERATION_CHECK_S = 0.05

    def _cached(self, kind: str, key: str, load: Any) -> Any:
        """``load()`` once per (kind, key) until the store changes (see the module doc)."""
        with self._lock:
            now = time.monotonic()
            if now >= self._next_generation_check:
                self._next_generation_check = now + self.GENERATION_CHECK_S
                gen = self._db.execute("SELECT gen FROM store_generation WHERE id = 1").fetchone()[0]
                if gen != self._generation:
                    self._cache.clear()
                    self._generation = gen
            if len(self._cache) > self._CACHE_LIMIT:
                self._cache.clear()
            try:
                return self._cache[kind, key]
            except KeyError:
                value = self._cache[kind, key] = load()
                return value

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        self._loop_writer.stop()  # both commit what is queued first
        self._writer.stop()
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ departments, clients, keys
    def add_department(self, code: str, name: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO departments VALUES (?, ?) ON CONFLICT(code) DO UPDATE SET name = excluded.name",
                       (code, name))

    def departments(self) -> list[tuple[str, str]]:
        return [(r["code"], r["name"]) for r in self._rows("SELECT * FROM departments ORDER BY code")]

    def add_client(self, client_id: str, department_code: str, name: str, roles: Sequence[str] = ()) -> None:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM departments WHERE code = ?", (department_code,)).fetchone() is None:
                raise StoreError(f"no department {department_code!r}: add it first "
                                 "(onewindow admin add-department)", code="unknown_department")
            try:
                db.execute("INSERT INTO clients (client_id, department_code, name, roles) VALUES (?, ?, ?, ?)",
                           (client_id, department_code, name, ",".join(sorted(set(roles)))))
            except sqlite3.IntegrityError:
                raise StoreError(f"client {client_id!r} exists already", code="client_exists") from None

    def _client(self, row: sqlite3.Row) -> Client:
        return Client(client_id=row["client_id"], department_code=row["department_code"],
                      department_name=row["dept_name"], name=row["name"],
                      roles=tuple(r for r in row["roles"].split(",") if r), disabled=bool(row["disabled"]))

    _CLIENT_SQL = ("SELECT c.*, d.name AS dept_name FROM clients c "
                   "JOIN departments d ON d.code = c.department_code")

    def clients(self) -> list[Client]:
        return [self._client(r) for r in self._rows(self._CLIENT_SQL + " ORDER BY c.client_id")]

    def client(self, client_id: str) -> Client | None:
        rows = self._rows(self._CLIENT_SQL + " WHERE c.client_id = ?", (client_id,))
        return self._client(rows[0]) if rows else None

    def set_disabled(self, client_id: str, disabled: bool) -> None:
        with self._tx() as db:
            if db.execute("UPDATE clients SET disabled = ? WHERE client_id = ?",
                          (int(disabled), client_id)).rowcount == 0:
                raise StoreError(f"no client {client_id!r}", code="unknown_client")

    def issue_key(self, client_id: str, *, at: dt.datetime) -> str:
        """A new API key for ``client_id``; only its salted HMAC is stored, so show it once."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        digest = hmac.new(salt, secret.encode("ascii"), hashlib.sha256).digest()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM clients WHERE client_id = ?", (client_id,)).fetchone() is None:
                raise StoreError(f"no client {client_id!r}", code="unknown_client")
            db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                       (key_id, client_id, salt, digest, _iso(at)))
        return f"{KEY_PREFIX}{key_id}.{secret}"

    def revoke_keys(self, client_id: str, *, at: dt.datetime) -> int:
        with self._tx() as db:
            return db.execute("UPDATE api_keys SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
                              (_iso(at), client_id)).rowcount

    def authenticate(self, api_key: str) -> Client | None:
        """The client holding ``api_key``; None for a malformed, unknown, revoked or disabled key."""
        if not api_key.startswith(KEY_PREFIX) or "." not in api_key:
            return None
        return self._cached("key", api_key, lambda: self._authenticate(api_key))

    def _authenticate(self, api_key: str) -> Client | None:
        key_id, _, secret = api_key[len(KEY_PREFIX):].partition(".")
        rows = self._rows("SELECT k.salt, k.digest, k.revoked_at, c.*, d.name AS dept_name FROM api_keys k "
                          "JOIN clients c ON c.client_id = k.client_id "
                          "JOIN departments d ON d.code = c.department_code WHERE k.key_id = ?", (key_id,))
        if not rows:
            return None
        row = rows[0]
        expected = hmac.new(row["salt"], secret.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, row["digest"]) or row["revoked_at"] or row["disabled"]:
            return None
        return self._client(row)

    # ------------------------------------------------------------------ grants
    def grant(self, department_code: str, licence_type_code: str, *, by: str, at: dt.datetime) -> None:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM departments WHERE code = ?", (department_code,)).fetchone() is None:
                raise StoreError(f"no department {department_code!r}", code="unknown_department")
            db.execute("INSERT OR IGNORE INTO grants VALUES (?, ?, ?, ?)",
                       (department_code, licence_type_code, by, _iso(at)))

    def revoke_grant(self, department_code: str, licence_type_code: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM grants WHERE department_code = ? AND licence_type_code = ?",
                              (department_code, licence_type_code)).rowcount > 0

    def grants_of(self, department_code: str) -> frozenset[str]:
        return self._cached("grants", department_code, lambda: frozenset(r[0] for r in self._rows(
            "SELECT licence_type_code FROM grants WHERE department_code = ?", (department_code,))))

    def all_grants(self) -> list[tuple[str, str, str, str]]:
        return [tuple(r) for r in self._rows("SELECT * FROM grants ORDER BY 1, 2")]

    # ------------------------------------------------------------------ holder authorisation
    def accept_application(self, case_number: str, item_code: str, holder_code: str, clerk_id: str,
                           client_id: str, *, at: dt.datetime, basis: str = "counter") -> Application:
        app = Application(case_number, item_code, holder_code, clerk_id, client_id, _iso(at), basis)
        with self._tx() as db:
            existing = db.execute("SELECT * FROM applications WHERE case_number = ?", (case_number,)).fetchone()
            if existing is not None:
                if existing["holder_code"] != holder_code:
                    raise StoreError(f"case {case_number} is already accepted for another holder",
                                     code="case_conflict")
                return Application(*(existing[k] for k in Application.__dataclass_fields__))
            db.execute("INSERT INTO applications VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (case_number, item_code, holder_code, clerk_id, client_id, app.accepted_at, basis))
        return app

    def application(self, case_number: str) -> Application | None:
        """The application accepted for ``case_number``; None if there is none (yet).

        Applications are only ever inserted, never changed or removed, so one found stays
        true: it is kept (the ``_CACHE_LIMIT`` most recently loaded) across store changes,
        while an absent case is looked up again every time.
        """
        app = self._applications.get(case_number)
        if app is None:
            app = self._application(case_number)
            if app is not None:
                self._keep_application(app)
        return app

    def _keep_application(self, app: Application) -> None:
        kept = self._applications
        if len(kept) >= self._CACHE_LIMIT:
            kept.pop(next(iter(kept), None), None)  # the oldest kept
        kept[app.case_number] = app

    def _application(self, case_number: str) -> Application | None:
        rows = self._rows("SELECT * FROM applications WHERE case_number = ?", (case_number,))
        return Application(*(rows[0][k] for k in Application.__dataclass_fields__)) if rows else None

    def preload_applications(self, limit: int | None = None) -> int:
        """Keep the most recently accepted applications (at most ``limit``, default half of
        ``_CACHE_LIMIT``) so that the service's first read in each case needs no query."""
        rows = self._rows("SELECT * FROM applications ORDER BY rowid DESC LIMIT ?",
                          (self._CACHE_LIMIT // 2 if limit is None else limit,))
        for row in reversed(rows):
            self._keep_application(Application(*(row[k] for k in Application.__dataclass_fields__)))
        return len(rows)

    @staticmethod
    def _code_digest(code: str) -> str:
        return hashlib.sha256(code.strip().upper().replace("-", "").encode("utf-8")).hexdigest()

    def issue_code(self, holder_code: str, *, at: dt.datetime, ttl: dt.timedelta) -> str:
        """A single-use 用证码 (10 characters, ~50 bits) for ``holder_code``, valid for ``ttl``."""
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
        with self._tx() as db:
            db.execute("INSERT INTO auth_codes VALUES (?, ?, ?, ?, NULL, NULL)",
                       (self._code_digest(code), holder_code, _iso(at), _iso(at + ttl)))
        return f"{code[:5]}-{code[5:]}"

    def redeem_code(self, code: str, holder_code: str, *, case_number: str, item_code: str,
                    clerk_id: str, client_id: str, at: dt.datetime) -> Application:
        """Use a 用证码 once: it authorises reads for ``holder_code`` in ``case_number`` from now on.

        Raises :class:`StoreError` with code ``authorisation_code_invalid`` (unknown or for
        another holder), ``authorisation_code_expired`` or ``authorisation_code_used``.
        """
        now = _iso(at)
        with self._tx() as db:
            row = db.execute("SELECT * FROM auth_codes WHERE digest = ?", (self._code_digest(code),)).fetchone()
            if row is None or row["holder_code"] != holder_code:
                raise StoreError("用证码无效或不属于该持证人。The authorisation code is unknown or was "
                                 "issued for another holder.", code="authorisation_code_invalid")
            if row["used_at"] is not None:
                raise StoreError(f"用证码已于 {row['used_at']} 使用（案件 {row['used_case']}），只能使用一次。"
                                 "The authorisation code was used already; ask the holder for a new one.",
                                 code="authorisation_code_used")
            if now >= row["expires_at"]:
                raise StoreError(f"用证码已于 {row['expires_at']} 过期。The authorisation code expired; "
                                 "ask the holder for a new one.", code="authorisation_code_expired")
            existing = db.execute("SELECT holder_code FROM applications WHERE case_number = ?",
                                  (case_number,)).fetchone()
            if existing is not None and existing[0] != holder_code:
                raise StoreError(f"case {case_number} belongs to another holder", code="case_conflict")
            db.execute("UPDATE auth_codes SET used_at = ?, used_case = ? WHERE digest = ?",
                       (now, case_number, row["digest"]))
            if existing is None:
                db.execute("INSERT INTO applications VALUES (?, ?, ?, ?, ?, ?, 'code')",
                           (case_number, item_code, holder_code, clerk_id, client_id, now))
        return self.application(case_number)  # type: ignore[return-value]

    # ------------------------------------------------------------------ usage log
    def append_log(self, record: dict[str, Any], *, at: dt.datetime) -> LogRecord:
        """Append one record to the hash chain (``seq`` and ``at`` are added here); returns once committed."""
        return self._writer.submit(record, at).result()

    def submit_log(self, record: dict[str, Any], *, at: dt.datetime) -> "Future[LogRecord]":
        """Queue a record for the next group commit; the future holds its :class:`LogRecord` once committed."""
        return self._writer.submit(record, at)

    def submit_log_async(self, record: dict[str, Any], *, at: dt.datetime) -> "asyncio.Future[LogRecord]":
        """:meth:`submit_log` from the event loop: committed on that loop (``exchange.store.logwriter``)."""
        return self._loop_writer.submit(record, at, asyncio.get_running_loop())

    def _append_batch(self, db: sqlite3.Connection,
                      batch: list[tuple[str, str, str]]) -> list[LogRecord]:
        """Append records in order in one transaction on ``db`` (the :class:`LogWriter`'s connection).

        Each record comes as (text before the seq value, text after it, day): see
        :func:`log_template`; the writer only inserts the number and hashes.
        """
        out: list[LogRecord] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            last = db.execute("SELECT seq, hash FROM usage_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0], last[1]) if last else (0, GENESIS)
            for head, tail, day in batch:
                seq += 1
                text = f"{head}{seq}{tail}"
                digest = chain_hash(prev, text)
                out.append(LogRecord(seq, day, text, prev, digest))
                prev = digest
            db.executemany("INSERT INTO usage_log VALUES (?, ?, ?, ?, ?)",
                           [(r.seq, r.day, r.record, r.prev_hash, r.hash) for r in out])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return out

    def log_records(self, *, first_seq: int = 1, last_seq: int | None = None,
                    day: str | None = None) -> list[LogRecord]:
        sql, args = "SELECT * FROM usage_log WHERE seq >= ?", [first_seq]
        if last_seq is not None:
            sql += " AND seq <= ?"
            args.append(last_seq)
        if day is not None:
            sql += " AND day = ?"
            args.append(day)
        return [LogRecord(r["seq"], r["day"], r["record"], r["prev_hash"], r["hash"])
                for r in self._rows(sql + " ORDER BY seq", args)]

    def log_days(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT day FROM usage_log ORDER BY day")]

    def add_seal(self, seal: Seal) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO seals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (seal.day, seal.first_seq, seal.last_seq, seal.count, seal.merkle_root,
                        seal.prev_digest, seal.digest, seal.jws, seal.file, seal.sealed_at))

    def seals(self) -> list[Seal]:
        return [Seal(*(r[k] for k in Seal.__dataclass_fields__))
                for r in self._rows("SELECT * FROM seals ORDER BY day")]

    def record_seal_failure(self, day: str, error: str, *, at: dt.datetime) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO seal_failures VALUES (?, ?, ?)", (day, _iso(at), error))

    def seal_failures(self, *, unresolved_only: bool = True) -> list[tuple[str, str, str]]:
        sql = "SELECT f.* FROM seal_failures f"
        if unresolved_only:
            sql += " WHERE f.day NOT IN (SELECT day FROM seals)"
        return [tuple(r) for r in self._rows(sql + " ORDER BY f.attempted_at")]


def open_store(layout: Layout) -> SqliteStore:
    """The embedded store of ``layout`` (``layout.service / "service.sqlite"``)."""
    return SqliteStore(layout.service / "service.sqlite")
