"""Issue grants: which licence types a department may push results for (data, not code).

Kept in the service store next to the read grants (table ``issue_grants``), edited with
``onewindow admin grant-issue`` / ``revoke-issue``. A read grant never implies an issue
grant, nor the other way round.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS issue_grants (
    department_code TEXT NOT NULL REFERENCES departments(code), licence_type_code TEXT NOT NULL,
    granted_by TEXT NOT NULL, granted_at TEXT NOT NULL,
    PRIMARY KEY (department_code, licence_type_code));
"""


class IssueGrants:
    """Issue grants in a :class:`~exchange.store.sqlite.SqliteStore` (its connection and lock)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        with store._lock:
            store._db.executescript(SCHEMA)

    def grant(self, department_code: str, licence_type_code: str, *, by: str, at: dt.datetime) -> None:
        from exchange.store.base import StoreError
        from exchange.store.sqlite import _iso

        with self.store._tx() as db:
            if db.execute("SELECT 1 FROM departments WHERE code = ?", (department_code,)).fetchone() is None:
                raise StoreError(f"no department {department_code!r}", code="unknown_department")
            db.execute("INSERT OR IGNORE INTO issue_grants VALUES (?, ?, ?, ?)",
                       (department_code, licence_type_code, by, _iso(at)))

    def revoke(self, department_code: str, licence_type_code: str) -> bool:
        with self.store._tx() as db:
            return db.execute("DELETE FROM issue_grants WHERE department_code = ? AND licence_type_code = ?",
                              (department_code, licence_type_code)).rowcount > 0

    def of(self, department_code: str) -> frozenset[str]:
        return frozenset(r[0] for r in self.store._rows(
            "SELECT licence_type_code FROM issue_grants WHERE department_code = ?", (department_code,)))
