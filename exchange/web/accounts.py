"""Web accounts: scrypt password hashes with a per-user salt, roles, the demo accounts.

Roles: ``clerk`` (综合受理窗口), ``auditor`` (审计), ``administrator`` (管理员). A clerk
acts through a counter API client of the front-desk department (``client_id``): every
read the clerk makes goes through the same access rules and usage log as that client's
API calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from exchange.sources.interval import CST
from exchange.web.exceptions import AccountError, SignInRefused

ROLES = ("clerk", "auditor", "administrator")
ROLE_NAMES = {"clerk": "窗口人员", "auditor": "审计人员", "administrator": "管理员"}
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
MIN_PASSWORD = 10
FRONT_DESK = ("frontdesk", "市民中心综合受理窗口")
COUNTER_CLIENT = "web-counter"


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    display_name: str
    client_id: str | None


def _hash(password: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=params["n"], r=params["r"], p=params["p"],
                          maxmem=64 * 1024 * 1024, dklen=32)


def add_user(store: Any, username: str, password: str, *, role: str, display_name: str | None = None,
             client_id: str | None = None, at: dt.datetime | None = None) -> Account:
    """Create (or reset) an account; a clerk needs an existing counter client to act through."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise AccountError(f"user name {username!r}: 1–64 characters without spaces")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password for {username}: at least {MIN_PASSWORD} characters")
    if role == "clerk":
        client_id = client_id or COUNTER_CLIENT
        client = store.client(client_id)
        if client is None or "counter" not in client.roles:
            raise AccountError(f"clerk {username} acts through counter client {client_id!r}, which does not "
                               "exist or lacks the counter role: `onewindow admin add-client "
                               f"{client_id} --department <code> --counter` (or --client)")
    salt = secrets.token_bytes(16)
    store.add_account(username, role=role, display_name=display_name or username, client_id=client_id,
                      salt=salt, digest=_hash(password, salt, SCRYPT), params=json.dumps(SCRYPT),
                      at=at or dt.datetime.now(CST))
    return Account(username, role, display_name or username, client_id)


_DUMMY_SALT = secrets.token_bytes(16)


def authenticate(store: Any, username: str, password: str) -> Account:
    """The account if the password matches (constant-time compare); raises :class:`SignInRefused`."""
    row = store.account(username.strip()) if username.strip() else None
    if row is None or row["disabled"]:
        _hash(password, _DUMMY_SALT, SCRYPT)  # same cost whether or not the user exists
        raise SignInRefused(username)
    digest = _hash(password, row["salt"], json.loads(row["params"]))
    if not hmac.compare_digest(digest, row["digest"]):
        raise SignInRefused(username)
    return Account(row["username"], row["role"], row["display_name"], row["client_id"])


def ensure_counter_client(store: Any, *, at: dt.datetime | None = None) -> str:
    """The front-desk department and its web counter client, granted every licence type of the registry."""
    from certificates.registry import load_registry

    at = at or dt.datetime.now(CST)
    store.add_department(*FRONT_DESK)
    if store.client(COUNTER_CLIENT) is None:
        store.add_client(COUNTER_CLIENT, FRONT_DESK[0], "综合受理窗口网页端", ["counter"])
    for lt in load_registry().licence_types.values():
        store.grant(FRONT_DESK[0], lt.code, by="demo", at=at)
    return COUNTER_CLIENT


def create_demo_accounts(store: Any) -> list[tuple[str, str, str]]:
    """A demo clerk and auditor with fresh random passwords: [(user, role, password)]."""
    ensure_counter_client(store)
    out = []
    for user, role, name in (("clerk", "clerk", "窗口演示账户"), ("auditor", "auditor", "审计演示账户")):
        password = secrets.token_urlsafe(12)
        add_user(store, user, password, role=role, display_name=name)
        out.append((user, role, password))
    return out


class SignInThrottle:
    """Refuses sign-in for a user name after ``limit`` failures within ``window`` seconds (per process)."""

    def __init__(self, limit: int = 5, window: float = 900.0) -> None:
        import threading

        self.limit, self.window = limit, window
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, username: str, now: float) -> int:
        """Seconds until ``username`` may try again (0: now)."""
        with self._lock:
            recent = [t for t in self._failures.get(username.lower(), []) if now - t < self.window]
            self._failures[username.lower()] = recent
            return int(self.window - (now - recent[0])) + 1 if len(recent) >= self.limit else 0

    def failed(self, username: str, now: float) -> None:
        with self._lock:
            self._failures.setdefault(username.lower(), []).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username.lower(), None)
