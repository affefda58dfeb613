"""The source registry: which department systems the hub pulls, and how."""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from exchange.exceptions import SourceConfigError

REGISTRY_ENV = "ONEWINDOW_SOURCES"
_DEFAULT = Path(__file__).with_name("registry.toml")
KINDS = ("sql", "rest", "files")


@dataclass(frozen=True)
class Source:
    id: str
    department: str
    kind: str
    conn_id: str
    default: str
    dataset: str
    cursor: str
    schedule: str
    error_threshold: float
    options: dict[str, str] = field(default_factory=dict)

    def uri(self, data_dir: Path) -> str:
        """Connection URI: the Airflow connection (env ``AIRFLOW_CONN_<ID>``) if set, else the default."""
        env = os.environ.get(f"AIRFLOW_CONN_{self.conn_id.upper()}")
        if env:
            return env
        return self.default.format(data_dir=data_dir)


def registry_path() -> Path:
    return Path(os.environ.get(REGISTRY_ENV, _DEFAULT))


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> tuple[Source, ...]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceConfigError(f"source registry {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SourceConfigError(f"source registry {path} is not valid TOML: {exc}") from exc
    out: list[Source] = []
    seen: set[str] = set()
    known = {"id", "department", "kind", "conn_id", "default", "dataset", "cursor", "schedule", "error_threshold"}
    for i, entry in enumerate(raw.get("source", [])):
        missing = [k for k in ("id", "department", "kind", "conn_id", "default", "dataset", "cursor", "schedule")
                   if k not in entry]
        if missing:
            raise SourceConfigError(f"{path}: source entry #{i + 1} lacks {', '.join(missing)}",
                                    source_id=entry.get("id"))
        if entry["kind"] not in KINDS:
            raise SourceConfigError(f"kind must be one of {KINDS}, got {entry['kind']!r}", source_id=entry["id"])
        if entry["id"] in seen:
            raise SourceConfigError("duplicate source id in registry", source_id=entry["id"])
        seen.add(entry["id"])
        out.append(Source(
            id=entry["id"], department=entry["department"], kind=entry["kind"], conn_id=entry["conn_id"],
            default=entry["default"], dataset=entry["dataset"], cursor=entry["cursor"],
            schedule=entry["schedule"], error_threshold=float(entry.get("error_threshold", 0.2)),
            options={k: str(v) for k, v in entry.items() if k not in known},
        ))
    return tuple(out)


def load_sources(path: Path | None = None) -> tuple[Source, ...]:
    """Every registered source, validated."""
    return _load(path or registry_path())


def get_source(source_id: str, path: Path | None = None) -> Source:
    for s in load_sources(path):
        if s.id == source_id:
            return s
    known = ", ".join(s.id for s in load_sources(path))
    raise SourceConfigError(f"no source {source_id!r} in the registry (known: {known})")
