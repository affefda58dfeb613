"""The store's behaviour, written once for both backends: portable SQL with ``?`` parameters.

:class:`SqlStore` holds every method of :class:`~exchange.store.base.ServiceStore` (and
what the material library, the web pages, the admin CLI and the audit commands use); a
backend gives it a connection and these small per-dialect pieces:

- ``_BEGIN``: the statement that opens a write transaction (SQLite ``BEGIN IMMEDIATE``
  takes the database's write lock at once; PostgreSQL ``BEGIN``).
- ``_LOCK_CHAIN``: the statement that makes one usage-log batch the only writer of the
  chain until it commits (PostgreSQL: an advisory transaction lock; SQLite: none, its
  write lock already is).
- ``_INTEGRITY``: the driver's constraint-violation error.
- ``_ddl(portable)``: portable DDL (:mod:`exchange.store.schema`) in the dialect.
- ``_NEWEST_APPLICATIONS``: the order of accepted applications, newest first (SQLite:
  insertion order, ``rowid``; PostgreSQL: ``accepted_at``).
- ``_json_text(*path)``: a text field of a usage-log record's JSON, as an SQL expression;
  ``_INSTR``: the substring-position function.

Write transactions (``_tx``) all start by bumping ``store_generation.gen``: that row is
the serialisation point of every read-then-write (a redeemed 用证码, an accepted case,
a material), since the second writer waits on its row lock and then reads what the first
one committed (PostgreSQL, read committed: each statement sees the commits before it), and
it is the generation the caches watch. Authentication, grants and a holder's materials
are cached until the store changes: a write through this store object clears its cache at
once; another process's write is seen when a cached read re-reads the generation, at most
``GENERATION_CHECK_S`` (0.05 s) after the previous look — so a key or grant revoked by the
admin CLI, or by another replica, stops working within 50 ms. Usage-log appends do not
bump it. Accepted applications are never changed or removed, so one that was found is kept
regardless (:meth:`SqlStore.application`); the service loads the most recent ones at start.

Usage-log batches (:meth:`SqlStore._append_batch`, called by the group-commit writers of
:mod:`exchange.store.logwriter`) read the last record inside their transaction after
``_LOCK_CHAIN``, so batches from every writer and every process form one linear chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from exchange.store.base import GENESIS, Application, Client, LogRecord, Seal, StoreError, stored_time, chain_hash
from exchange.store.frontdesk import _MaterialMethods, _WebMethods
from exchange.store.logwriter import LogWriter
from exchange.store.schema import MIGRATIONS, MIGRATIONS_TABLE, statements

KEY_PREFIX = "ow_"
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a counter

LAST_RECORD_SQL = "SELECT seq, hash FROM usage_log ORDER BY seq DESC LIMIT 1"
INSERT_RECORD_SQL = "INSERT INTO usage_log VALUES (?, ?, ?, ?, ?)"


def chain_records(last: Sequence[Any] | None, batch: Sequence[tuple[str, str, str]]) -> list[LogRecord]:
    """The batch's records after ``last`` (the chain's (seq, hash), None when empty), in order.

    Each record comes as (text before the seq value, text after it, day): see
    :func:`~exchange.store.logwriter.log_template`; only the number is joined in here.
    """
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    out: list[LogRecord] = []
    for head, tail, day in batch:
        seq += 1
        text = f"{head}{seq}{tail}"
        digest = chain_hash(prev, text)
        out.append(LogRecord(seq, day, text, prev, digest))
        prev = digest
    return out


def record_rows(records: Sequence[LogRecord]) -> list[tuple[int, str, str, str, str]]:
    return [(r.seq, r.day, r.record, r.prev_hash, r.hash) for r in records]


class SqlStore(_MaterialMethods, _WebMethods):
    """:class:`~exchange.store.base.ServiceStore` on an SQL connection; subclasses give the dialect."""

    _BEGIN = "BEGIN"
    _LOCK_CHAIN: str | None = None
    _LOCK_SCHEMA: str | None = None
    _INSTR = "instr"
    _NEWEST_APPLICATIONS = "accepted_at DESC, case_number DESC"
    _INTEGRITY: type[Exception] = Exception
    _db: Any  # the main connection: execute(sql, args) -> cursor, like sqlite3's
    location: str  # where the store is, for messages (never a password)

    _CACHE_LIMIT = 200_000
    GENERATION_CHECK_S = 0.05

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], Any] = {}
        self._applications: dict[str, Application] = {}  # see application()
        self._generation = -1
        self._next_generation_check = 0.0
        self.schema_version = self._migrate()
        self._writer = LogWriter(self)

    # ------------------------------------------------------------------ dialect
    @staticmethod
    def _ddl(portable: str) -> str:
        return portable

    @staticmethod
    def _json_text(*path: str) -> str:
        raise NotImplementedError

    def _connect_writer(self) -> Any:
        """A connection of its own for a log writer (same settings as the main one)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ plumbing
    def _migrate(self) -> int:
        """Apply pending migrations (:mod:`exchange.store.schema`); return the schema version."""
        with self._lock:
            db = self._db
            db.execute(self._BEGIN)
            try:
                if self._LOCK_SCHEMA:
                    db.execute(self._LOCK_SCHEMA)  # two processes opening a new store at once
                db.execute(self._ddl(MIGRATIONS_TABLE))
                current = db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
                for version, ddl in enumerate(MIGRATIONS, start=1):
                    if version > current:
                        for statement in statements(self._ddl(ddl)):
                            db.execute(statement)
                        db.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                                   (version, stored_time(dt.datetime.now(dt.timezone.utc))))
                        current = version
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return current

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            db = self._db
            db.execute(self._BEGIN)
            try:
                db.execute("UPDATE store_generation SET gen = gen + 1 WHERE id = 1")  # first: see the module doc
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                self._cache.clear()
            db.execute("COMMIT")

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

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _close_writers(self) -> None:
        self._writer.stop()  # commits what is queued first

    def close(self) -> None:
        self._close_writers()
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
            except self._INTEGRITY:
                raise StoreError(f"client {client_id!r} exists already", code="client_exists") from None

    def _client(self, row: Any) -> Client:
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
                       (key_id, client_id, salt, digest, stored_time(at)))
        return f"{KEY_PREFIX}{key_id}.{secret}"

    def revoke_keys(self, client_id: str, *, at: dt.datetime) -> int:
        with self._tx() as db:
            return db.execute("UPDATE api_keys SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
                              (stored_time(at), client_id)).rowcount

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
            db.execute("INSERT INTO grants VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (department_code, licence_type_code, by, stored_time(at)))

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
        app = Application(case_number, item_code, holder_code, clerk_id, client_id, stored_time(at), basis)
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
        rows = self._rows(f"SELECT * FROM applications ORDER BY {self._NEWEST_APPLICATIONS} LIMIT ?",
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
                       (self._code_digest(code), holder_code, stored_time(at), stored_time(at + ttl)))
        return f"{code[:5]}-{code[5:]}"

    def redeem_code(self, code: str, holder_code: str, *, case_number: str, item_code: str,
                    clerk_id: str, client_id: str, at: dt.datetime) -> Application:
        """Use a 用证码 once: it authorises reads for ``holder_code`` in ``case_number`` from now on.

        Raises :class:`StoreError` with code ``authorisation_code_invalid`` (unknown or for
        another holder), ``authorisation_code_expired`` or ``authorisation_code_used``.
        """
        now = stored_time(at)
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

    def _append_batch(self, db: Any, batch: list[tuple[str, str, str]]) -> list[LogRecord]:
        """Append records in order in one transaction on ``db`` (a log writer's connection)."""
        db.execute(self._BEGIN)
        try:
            if self._LOCK_CHAIN:
                db.execute(self._LOCK_CHAIN)
            out = chain_records(db.execute(LAST_RECORD_SQL).fetchone(), batch)
            db.executemany(INSERT_RECORD_SQL, record_rows(out))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return out

    def log_extent(self) -> tuple[int, int]:
        """(record count, highest seq) of the usage log."""
        count, top = self._rows("SELECT count(*), coalesce(max(seq), 0) FROM usage_log")[0]
        return count, top

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
            db.execute("INSERT INTO seal_failures VALUES (?, ?, ?)", (day, stored_time(at), error))

    def seal_failures(self, *, unresolved_only: bool = True) -> list[tuple[str, str, str]]:
        sql = "SELECT f.* FROM seal_failures f"
        if unresolved_only:
            sql += " WHERE f.day NOT IN (SELECT day FROM seals)"
        return [tuple(r) for r in self._rows(sql + " ORDER BY f.attempted_at")]


