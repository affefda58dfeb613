"""The defect manifest ``departments/manifest.json`` (contract in docs/architecture.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from exchange.departments.errors import SimulationError


@dataclass
class Manifest:
    seed: int
    persons: int
    days: list[int] = field(default_factory=list)
    defects: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SimulationError(f"no defect manifest at {path}: simulate day 0 first",
                                  path=str(path)) from None
        return cls(seed=raw["seed"], persons=raw["persons"], days=list(raw["days"]),
                   defects=list(raw["defects"]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"seed": self.seed, "persons": self.persons, "days": sorted(self.days), "defects": self.defects}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)

    def drop_day(self, day: int) -> None:
        self.days = [d for d in self.days if d != day]
        self.defects = [d for d in self.defects if d["day"] != day]

    def add_day(self, day: int, defects: list[dict]) -> None:
        self.days = sorted(set(self.days) | {day})
        self.defects.extend(defects)

    def keys(self, dataset: str) -> set[str]:
        """Business keys of every row of ``dataset`` that carries a defect (any day)."""
        return {d["record_key"] for d in self.defects if d["dataset"] == dataset}
