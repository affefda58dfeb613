"""Where everything lives: one data directory (default ``./var``).

Override with the ``ONEWINDOW_DATA_DIR`` environment variable or the CLI's
``--data-dir`` flag (which sets the variable for every child process, Airflow
tasks included).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "ONEWINDOW_DATA_DIR"
DEFAULT = "var"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the absolute data directory: explicit override, then env, then ``./var``."""
    raw = override if override is not None else os.environ.get(ENV_VAR, DEFAULT)
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class Layout:
    """Every path the hub writes, derived from one root."""

    root: Path

    @classmethod
    def from_env(cls, override: str | os.PathLike[str] | None = None) -> "Layout":
        return cls(data_dir(override))

    # department systems (simulated or real file drops)
    @property
    def departments(self) -> Path:
        return self.root / "departments"

    @property
    def defect_manifest(self) -> Path:
        return self.departments / "manifest.json"

    # lake
    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def raw(self) -> Path:
        return self.lake / "raw"

    @property
    def quarantine(self) -> Path:
        return self.lake / "quarantine"

    def raw_partition(self, source_id: str, interval_key: str) -> Path:
        return self.raw / f"source={source_id}" / f"interval={interval_key}"

    def quarantine_partition(self, source_id: str, interval_key: str) -> Path:
        return self.quarantine / f"source={source_id}" / f"interval={interval_key}"

    # warehouse
    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def library(self) -> Path:
        return self.warehouse / "library.duckdb"

    @property
    def snapshots(self) -> Path:
        return self.warehouse / "snapshots"

    @property
    def current_snapshot_pointer(self) -> Path:
        return self.snapshots / "CURRENT"

    # certificates / PKI
    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def trust(self) -> Path:
        return self.root / "trust"

    # quality reports
    @property
    def reports(self) -> Path:
        return self.root / "reports"

    # service store (front desk writes)
    @property
    def service(self) -> Path:
        return self.root / "service"

    # airflow home for the embedded default
    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    def ensure(self) -> "Layout":
        for p in (self.departments, self.raw, self.quarantine, self.warehouse, self.snapshots,
                  self.keys, self.trust, self.reports, self.service, self.airflow_home):
            p.mkdir(parents=True, exist_ok=True)
        return self
