"""Issue grants: which licence types a department may push results for (data, not code).

Kept in the service store next to the read grants (table ``issue_grants``, created with the
store's schema, :mod:`exchange.store.schema`), edited with ``onewindow admin grant-issue`` /
``revoke-issue``. A read grant never implies an issue
grant, nor the other way round.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

class IssueGrants:
    """Issue grants in the service store (:class:`~exchange.store.sql.SqlStore`, either backend)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def grant(self, department_code: str, licence_type_code: str, *, by: str, at: dt.datetime) -> None:
        from exchange.store.base import StoreError, stored_time

        with self.store._tx() as db:
            if db.execute("SELECT 1 FROM departments WHERE code = ?", (department_code,)).fetchone() is None:
                raise StoreError(f"no department {department_code!r}", code="unknown_department")
            db.execute("INSERT INTO issue_grants VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (department_code, licence_type_code, by, stored_time(at)))

    def revoke(self, department_code: str, licence_type_code: str) -> bool:
        with self.store._tx() as db:
            return db.execute("DELETE FROM issue_grants WHERE department_code = ? AND licence_type_code = ?",
                              (department_code, licence_type_code)).rowcount > 0

    def of(self, department_code: str) -> frozenset[str]:
        return frozenset(r[0] for r in self.store._rows(
            "SELECT licence_type_code FROM issue_grants WHERE department_code = ?", (department_code,)))
