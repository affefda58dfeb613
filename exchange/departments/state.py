"""Shared plumbing for one simulation run: stores, state file, summary."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from exchange.departments import gongan, minzheng, scjg, zrzy
from exchange.departments.errors import SimulationError
from exchange.departments.store import Journal, SqliteTable, open_sqlite

SOURCE_IDS = {"persons": "gongan_population", "enterprises": "scjg_enterprises",
              "food_licences": "scjg_food_licences", "marriages": "minzheng_marriages",
              "properties": "zrzy_property"}
SYSTEMS = {"persons": "公安 SQL", "enterprises": "市场监管 REST", "food_licences": "市场监管 REST",
           "marriages": "民政 GBK CSV", "properties": "自然资源 XLSX"}


def state_path(departments: Path) -> Path:
    """The simulator's own memory (latest file-drop rows, undo journal); not a department system."""
    return departments / "simulator" / "state.sqlite"


@dataclass
class SimulationSummary:
    """What one ``simulate`` call wrote: rows and injected defects per dataset."""

    seed: int
    persons: int
    day: int
    rows: dict[str, int] = field(default_factory=dict)
    defects: dict[str, int] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)

    @property
    def total_defects(self) -> int:
        return sum(self.defects.values())

    def as_rows(self) -> list[tuple[str, str, str, int, int, str]]:
        """(dataset, source id, system, rows written, defects injected, location) per dataset."""
        return [(ds, SOURCE_IDS[ds], SYSTEMS[ds], self.rows.get(ds, 0), self.defects.get(ds, 0),
                 self.locations.get(ds, "")) for ds in SOURCE_IDS]


class Stores:
    """Every table one run writes to, opened together and committed together."""

    def __init__(self, departments: Path, pg_dsn: str | None, fresh: bool) -> None:
        self.departments = departments
        self.backend = "postgres" if pg_dsn else "sqlite"
        self.state: sqlite3.Connection = open_sqlite(state_path(departments), fresh=fresh)
        self.state.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        if not fresh:
            try:
                self.check_backend()
            except SimulationError:
                self.state.close()
                raise
        self.persons = gongan.open_persons(departments, pg_dsn, fresh=fresh)
        self.enterprises, self.food_licences = scjg.open_registry(departments, fresh=fresh)
        self.marriages = SqliteTable(self.state, minzheng.MARRIAGES)
        self.properties = SqliteTable(self.state, zrzy.PROPERTIES)
        self.journal = Journal(self.state)

    def tables(self) -> dict:
        return {"persons": self.persons, "enterprises": self.enterprises,
                "food_licences": self.food_licences, "marriages": self.marriages,
                "properties": self.properties}

    def check_backend(self) -> None:
        row = self.state.execute("SELECT value FROM meta WHERE key = 'backend'").fetchone()
        if row is None or row[0] != self.backend:
            raise SimulationError(
                f"day 0 stored the population in {row[0] if row else 'nothing'}, this run uses "
                f"{self.backend}: pass the same --pg-dsn as day 0 (or none)",
                backend=self.backend)

    def commit(self) -> None:
        self.persons.commit()
        self.enterprises.commit()
        self.state.commit()

    def close(self) -> None:
        self.persons.close()
        self.enterprises.conn.close()
        self.state.close()

    def locations(self) -> dict[str, str]:
        reg = str(scjg.registry_path(self.departments))
        return {"persons": "PostgreSQL table persons" if self.backend == "postgres"
                else str(gongan.sqlite_path(self.departments)),
                "enterprises": f"{reg} (GET /api/v1/enterprises)",
                "food_licences": f"{reg} (GET /api/v1/food-licences)"}
