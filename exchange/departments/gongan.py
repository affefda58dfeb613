"""公安 population registry: SQL table ``persons`` in SQLite, or PostgreSQL when a DSN is given."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from exchange.departments.people import PERSON_COLUMNS
from exchange.departments.store import Schema, SqliteTable, open_sqlite

PERSONS = Schema("persons", PERSON_COLUMNS, "id_number")


def sqlite_path(departments: Path) -> Path:
    return departments / "gongan" / "population.sqlite"


class SqlitePersons(SqliteTable):
    def __init__(self, path: Path, fresh: bool = False) -> None:
        super().__init__(open_sqlite(path, fresh=fresh), PERSONS)
        self.path = path

    def bulk_load(self, rows: Sequence[tuple]) -> None:
        self.reset()
        self.insert(rows)
        self.create_indexes()
        self.commit()

    def close(self) -> None:
        self.conn.close()


class PgPersons:
    """The same table in PostgreSQL (psycopg 3); bulk loads use COPY."""

    schema = PERSONS

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn: Any = psycopg.connect(dsn)

    def reset(self) -> None:
        cols = ", ".join(f"{c} text" + (" NOT NULL" if c == PERSONS.key else "") for c in PERSONS.columns)
        with self.conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS persons")
            cur.execute(f"CREATE TABLE persons ({cols})")

    def bulk_load(self, rows: Sequence[tuple]) -> None:
        self.reset()
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY persons ({', '.join(PERSONS.columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute("CREATE INDEX ix_persons_id_number ON persons (id_number)")
            cur.execute("CREATE INDEX ix_persons_updated_at ON persons (updated_at)")
        self.conn.commit()

    def insert(self, rows: Sequence[tuple]) -> None:
        marks = ", ".join(["%s"] * len(PERSONS.columns))
        with self.conn.cursor() as cur:
            cur.executemany(f"INSERT INTO persons VALUES ({marks})", list(rows))

    def fetch(self, keys: Iterable[str]) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(PERSONS.columns)} FROM persons WHERE id_number = ANY(%s) "
                        "ORDER BY id_number, ctid", (sorted(set(keys)),))
            return [tuple(r) for r in cur.fetchall()]

    def delete(self, keys: Iterable[str]) -> None:
        with self.conn.cursor() as cur:
            cur.execute("DELETE FROM persons WHERE id_number = ANY(%s)", (sorted(set(keys)),))

    def select(self, columns: Sequence[str]) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(columns)} FROM persons ORDER BY id_number, updated_at, name")
            return [tuple(r) for r in cur.fetchall()]

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def open_persons(departments: Path, pg_dsn: str | None, fresh: bool = False) -> SqlitePersons | PgPersons:
    if pg_dsn:
        return PgPersons(pg_dsn)
    return SqlitePersons(sqlite_path(departments), fresh=fresh)


def _move_house(row: dict, rng) -> None:
    """A different address in the same division (the duplicate's second row)."""
    row["address"] = str(row["address"]).replace("号", f"号之{rng.randint(1, 9)}", 1)


def person_rules() -> list:
    from exchange.departments import defects as d

    return [
        d.Rule("id_check_char", "id_number", d.wrong_ric_check("id_number")),
        d.Rule("impossible_date", "id_card_issue_date", d.impossible_date("id_card_issue_date")),
        d.Rule("validity_end_before_start", "id_card_valid_until",
               d.end_before_start("id_card_issue_date", "id_card_valid_until")),
        d.Rule("missing_required", "name", d.blank("name")),
        d.Rule("duplicate_key", "id_number", d.duplicate_marker("id_number", _move_house)),
        d.Rule("mis_encoded_text", "name", d.latin1_mojibake("name")),
    ]
