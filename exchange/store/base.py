"""The store interface, its records and their formats (stored timestamps, the usage-log chain link).

Backends: :mod:`exchange.store.sqlite` (embedded) and :mod:`exchange.store.postgres`
(production shape), both on the SQL of :mod:`exchange.store.sql`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from exchange.exceptions import ExchangeError

CST = dt.timezone(dt.timedelta(hours=8), "CST")
GENESIS = "0" * 64  # prev_hash of the first usage-log record


def stored_time(at: dt.datetime) -> str:
    """Stored timestamps: naive ISO in China Standard Time, like every other stored timestamp."""
    if at.tzinfo is not None:
        at = at.astimezone(CST).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def chain_hash(prev_hash: str, record_json: str) -> str:
    """The usage-log chain link: sha256 over the previous hash and this record's canonical JSON."""
    return hashlib.sha256(f"{prev_hash}\n{record_json}".encode("utf-8")).hexdigest()


class StoreError(ExchangeError):
    """The service store refused an operation; the message says what to fix."""

    def __init__(self, message: str, *, code: str = "store_error") -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Client:
    """An authenticated API client: one department system (部门) or a front-desk counter."""

    client_id: str
    department_code: str
    department_name: str
    name: str
    roles: tuple[str, ...]  # "counter": may record accepted applications and issue 用证码
    disabled: bool = False


@dataclass(frozen=True)
class Application:
    """An application accepted at the counter for a holder: the basis for reading their certificates."""

    case_number: str
    item_code: str
    holder_code: str
    clerk_id: str
    client_id: str
    accepted_at: str
    basis: str  # "counter" (accepted in person) or "code" (a 用证码 the holder gave)


@dataclass(frozen=True)
class AuthCode:
    holder_code: str
    issued_at: str
    expires_at: str
    used_at: str | None
    used_case: str | None


@dataclass(frozen=True)
class LogRecord:
    """One usage-log entry: ``record`` is the canonical JSON the chain hashes."""

    seq: int
    day: str
    record: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Seal:
    day: str
    first_seq: int
    last_seq: int
    count: int
    merkle_root: str
    prev_digest: str
    digest: str
    jws: str
    file: str
    sealed_at: str


class ServiceStore(Protocol):
    """What the service needs from its store; every backend implements all of it."""

    # departments, clients, keys, grants
    def add_department(self, code: str, name: str) -> None: ...
    def add_client(self, client_id: str, department_code: str, name: str,
                   roles: Sequence[str] = ()) -> None: ...
    def issue_key(self, client_id: str, *, at: dt.datetime) -> str: ...
    def revoke_keys(self, client_id: str, *, at: dt.datetime) -> int: ...
    def authenticate(self, api_key: str) -> Client | None: ...
    def grant(self, department_code: str, licence_type_code: str, *, by: str, at: dt.datetime) -> None: ...
    def revoke_grant(self, department_code: str, licence_type_code: str) -> bool: ...
    def grants_of(self, department_code: str) -> frozenset[str]: ...
    def clients(self) -> list[Client]: ...
    def departments(self) -> list[tuple[str, str]]: ...

    # holder authorisation
    def accept_application(self, case_number: str, item_code: str, holder_code: str, clerk_id: str,
                           client_id: str, *, at: dt.datetime, basis: str = "counter") -> Application: ...
    def application(self, case_number: str) -> Application | None: ...
    def issue_code(self, holder_code: str, *, at: dt.datetime, ttl: dt.timedelta) -> str: ...
    def redeem_code(self, code: str, holder_code: str, *, case_number: str, item_code: str,
                    clerk_id: str, client_id: str, at: dt.datetime) -> Application: ...

    # usage log
    def append_log(self, record: dict[str, Any], *, at: dt.datetime) -> LogRecord: ...
    def submit_log(self, record: dict[str, Any], *, at: dt.datetime) -> "Future[LogRecord]":
        """Queue a record; the future resolves once it is committed (group commit)."""
        ...
    def submit_log_async(self, record: dict[str, Any], *, at: dt.datetime) -> "asyncio.Future[LogRecord]":
        """The same from the event loop: an asyncio future of the running loop."""
        ...
    def log_records(self, *, first_seq: int = 1, last_seq: int | None = None,
                    day: str | None = None) -> list[LogRecord]: ...
    def log_days(self) -> list[str]: ...
    def add_seal(self, seal: Seal) -> None: ...
    def seals(self) -> list[Seal]: ...
    def record_seal_failure(self, day: str, error: str, *, at: dt.datetime) -> None: ...
    def seal_failures(self, *, unresolved_only: bool = True) -> list[tuple[str, str, str]]: ...

    def close(self) -> None: ...

