"""What the material library and the web pages keep in the service store (both backends).

Material library (材料库) metadata — the files themselves live content-addressed on disk
(:mod:`exchange.materials`) — and the web pages' sign-in accounts (scrypt hash, per-user
salt; hashing and checks live in :mod:`exchange.web`) and the cases opened at the counter.
Mixed into :class:`~exchange.store.sql.SqlStore`: portable SQL through its ``_tx`` and
``_rows``; the one dialect piece is the usage-log search's JSON access (``_json_text``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from exchange.store.base import LogRecord, StoreError, stored_time


class _MaterialMethods:
    """Material library (材料库) metadata; the files themselves live content-addressed on disk."""

    _tx: Any
    _rows: Any
    _cached: Any

    def add_material(self, *, digest: str, size: int, media_type: str, material_id: str,
                     material_type: str, holder_code: str, filename: str | None, case_number: str | None,
                     submitted_by: str, at: dt.datetime) -> tuple[dict[str, Any], bool]:
        """Record a submission; returns (the material record, whether the blob is new)."""
        with self._tx() as db:
            new_blob = db.execute("INSERT INTO materials VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                  (digest, size, media_type, stored_time(at))).rowcount == 1
            row = db.execute("SELECT * FROM material_records WHERE digest = ? AND material_type = ? "
                             "AND holder_code = ?", (digest, material_type, holder_code)).fetchone()
            if row is None:
                db.execute("INSERT INTO material_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                           (material_id, digest, material_type, holder_code, filename, case_number,
                            submitted_by, stored_time(at)))
                row = db.execute("SELECT * FROM material_records WHERE material_id = ?", (material_id,)).fetchone()
        return dict(row), new_blob

    def verify_material(self, material_id: str, *, verified_by: str, reuse_until: dt.date,
                        at: dt.datetime) -> dict[str, Any]:
        with self._tx() as db:
            if db.execute("UPDATE material_records SET verified_by = ?, verified_at = ?, reuse_until = ? "
                          "WHERE material_id = ?", (verified_by, stored_time(at), reuse_until.isoformat(),
                                                    material_id)).rowcount == 0:
                raise StoreError(f"no material {material_id!r}", code="material_not_found")
            return dict(db.execute("SELECT * FROM material_records WHERE material_id = ?",
                                   (material_id,)).fetchone())

    def material(self, material_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT r.*, m.size, m.media_type FROM material_records r "
                          "JOIN materials m USING (digest) WHERE material_id = ?", (material_id,))
        return dict(rows[0]) if rows else None

    def materials_of(self, holder_code: str) -> list[dict[str, Any]]:
        """A holder's materials; cached like grants (every once-only answer asks, most holders have none)."""
        return [dict(m) for m in self._cached("materials", holder_code, lambda: tuple(dict(r) for r in self._rows(
            "SELECT r.*, m.size, m.media_type FROM material_records r JOIN materials m USING (digest) "
            "WHERE holder_code = ? ORDER BY submitted_at, material_id", (holder_code,))))]

    def material_blob_count(self) -> int:
        return self._rows("SELECT count(*) FROM materials")[0][0]


class _WebMethods:
    """Accounts and counter cases of the web pages; hashing and checks live in exchange.web."""

    _tx: Any
    _rows: Any
    _INSTR: str
    _json_text: Any

    def add_account(self, username: str, *, role: str, display_name: str, client_id: str | None,
                    salt: bytes, digest: bytes, params: str, at: dt.datetime) -> None:
        """Create or replace an account (a new password replaces the old hash)."""
        with self._tx() as db:
            db.execute("INSERT INTO web_accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(username) DO UPDATE "
                       "SET role = excluded.role, display_name = excluded.display_name, "
                       "client_id = excluded.client_id, salt = excluded.salt, digest = excluded.digest, "
                       "params = excluded.params, disabled = 0",
                       (username, role, display_name, client_id, salt, digest, params, stored_time(at)))

    def account(self, username: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM web_accounts WHERE username = ?", (username,))
        return dict(rows[0]) if rows else None

    def accounts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows("SELECT username, role, display_name, client_id, created_at, disabled "
                                            "FROM web_accounts ORDER BY username")]

    def open_case(self, case_number: str, *, holder_code: str, code_type: str, agent_code: str | None,
                  item_codes: Sequence[str], clerk: str, client_id: str, at: dt.datetime) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO counter_cases (case_number, holder_code, code_type, agent_code, item_codes, "
                       "clerk, client_id, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (case_number, holder_code, code_type, agent_code, json.dumps(list(item_codes)), clerk,
                        client_id, stored_time(at)))

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
                           (stored_time(accepted_at), case_number))

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
                              (f"{self._json_text('holder_masked')} = ?", holder_masked),
                              (f"{self._json_text('department')} = ?", department),
                              (f"{self._INSTR}({self._json_text('purpose', 'item')}, ?) > 0", item),
                              (f"{self._json_text('decision')} = ?", decision)):
            if value:
                where.append(clause)
                args.append(value)
        rows = self._rows(f"SELECT * FROM usage_log WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
                          [*args, limit])
        return [LogRecord(r["seq"], r["day"], r["record"], r["prev_hash"], r["hash"]) for r in rows]
