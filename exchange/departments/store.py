"""Tables the simulated systems write to (SQLite or PostgreSQL) and the undo journal.

Every write on a day ``k >= 1`` goes through ``Journal.upsert`` which first saves the
rows it replaces, so re-running the latest day can undo it and produce the same state.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Schema:
    name: str
    columns: tuple[str, ...]
    key: str
    numeric: frozenset[str] = frozenset()  # REAL / double precision columns; others TEXT
    indexes: tuple[str, ...] = ("updated_at",)


class Table(Protocol):
    schema: Schema

    def reset(self) -> None: ...
    def insert(self, rows: Sequence[tuple]) -> None: ...
    def fetch(self, keys: Iterable[str]) -> list[tuple]: ...
    def delete(self, keys: Iterable[str]) -> None: ...
    def select(self, columns: Sequence[str]) -> list[tuple]: ...
    def commit(self) -> None: ...


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class SqliteTable:
    def __init__(self, conn: sqlite3.Connection, schema: Schema) -> None:
        self.conn, self.schema = conn, schema

    def reset(self) -> None:
        s = self.schema
        cols = ", ".join(f"{c} {'REAL' if c in s.numeric else 'TEXT'}"
                         + (" NOT NULL" if c == s.key else "") for c in s.columns)
        self.conn.execute(f"DROP TABLE IF EXISTS {s.name}")
        self.conn.execute(f"CREATE TABLE {s.name} ({cols})")

    def create_indexes(self) -> None:
        s = self.schema
        for col in (s.key, *s.indexes):
            self.conn.execute(f"CREATE INDEX IF NOT EXISTS ix_{s.name}_{col} ON {s.name} ({col})")

    def insert(self, rows: Sequence[tuple]) -> None:
        marks = ", ".join("?" * len(self.schema.columns))
        self.conn.executemany(f"INSERT INTO {self.schema.name} VALUES ({marks})", rows)

    def fetch(self, keys: Iterable[str]) -> list[tuple]:
        out: list[tuple] = []
        cols = ", ".join(self.schema.columns)
        for part in _chunks(sorted(set(keys))):
            marks = ", ".join("?" * len(part))
            out += self.conn.execute(f"SELECT {cols} FROM {self.schema.name} WHERE "
                                     f"{self.schema.key} IN ({marks}) ORDER BY {self.schema.key}, rowid", part).fetchall()
        return out

    def delete(self, keys: Iterable[str]) -> None:
        for part in _chunks(sorted(set(keys))):
            marks = ", ".join("?" * len(part))
            self.conn.execute(f"DELETE FROM {self.schema.name} WHERE {self.schema.key} IN ({marks})", part)

    def select(self, columns: Sequence[str]) -> list[tuple]:
        return self.conn.execute(f"SELECT {', '.join(columns)} FROM {self.schema.name} "
                                 f"ORDER BY {self.schema.key}, rowid").fetchall()

    def commit(self) -> None:
        self.conn.commit()


def open_sqlite(path: Path, fresh: bool = False) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh and path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=OFF" if fresh else "PRAGMA synchronous=NORMAL")
    return conn


class Journal:
    """Undo log of day ``k >= 1`` writes, kept in the simulator's own state file."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute("CREATE TABLE IF NOT EXISTS journal (day INTEGER, tbl TEXT, key TEXT, rows TEXT)")

    def upsert(self, table: Table, day: int, rows: Sequence[tuple]) -> None:
        """Replace every row with the keys in ``rows`` by ``rows``, saving what was there."""
        pos = table.schema.columns.index(table.schema.key)
        keys = sorted({str(r[pos]) for r in rows})
        before: dict[str, list[tuple]] = {k: [] for k in keys}
        for old in table.fetch(keys):
            before[str(old[pos])].append(old)
        seen = {k for (k,) in self.conn.execute(
            "SELECT key FROM journal WHERE day = ? AND tbl = ?", (day, table.schema.name))}
        self.conn.executemany("INSERT INTO journal VALUES (?, ?, ?, ?)",
                              [(day, table.schema.name, k, json.dumps(before[k], ensure_ascii=False))
                               for k in keys if k not in seen])
        table.delete(keys)
        table.insert(rows)

    def undo(self, tables: dict[str, Table], day: int) -> None:
        entries = self.conn.execute("SELECT tbl, key, rows FROM journal WHERE day = ? ORDER BY rowid",
                                    (day,)).fetchall()
        for tbl, key, rows in entries:
            tables[tbl].delete([key])
            old = [tuple(r) for r in json.loads(rows)]
            if old:
                tables[tbl].insert(old)
        self.conn.execute("DELETE FROM journal WHERE day = ?", (day,))

    def clear(self) -> None:
        self.conn.execute("DELETE FROM journal")
