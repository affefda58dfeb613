"""DuckDB connections with extensions loaded from their PyPI packages, never downloaded."""

from __future__ import annotations

import glob
import importlib
import os
from pathlib import Path
from typing import Any

import duckdb

# extension name -> PyPI package module
_EXTENSIONS = {
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "excel": "duckdb_extension_excel",
    "httpfs": "duckdb_extension_httpfs",
    "ducklake": "duckdb_extension_ducklake",
}


# DuckDB's own default memory limit is 80% of the machine's memory, per database instance; a
# process that holds other data (a worker, a benchmark) can set a lower bound and where to spill
MEMORY_LIMIT_ENV = "ONEWINDOW_DUCKDB_MEMORY_LIMIT"  # e.g. "6GB"
TEMP_DIR_ENV = "ONEWINDOW_DUCKDB_TEMP_DIR"  # where operators spill beyond the limit


class ExtensionMissing(RuntimeError):
    """A DuckDB extension package is not installed; `make venv` installs it from requirements.lock."""


def extension_path(name: str) -> Path:
    """Path of the extension binary shipped inside its ``duckdb-extension-*`` wheel."""
    try:
        module = importlib.import_module(_EXTENSIONS[name])
    except KeyError:
        raise ExtensionMissing(f"unknown DuckDB extension {name!r}; known: {sorted(_EXTENSIONS)}") from None
    except ImportError as exc:
        raise ExtensionMissing(f"package for DuckDB extension {name!r} is not installed: {exc}") from exc
    found = glob.glob(os.path.join(os.path.dirname(module.__file__), "extensions", "*", f"{name}.duckdb_extension"))
    if not found:
        raise ExtensionMissing(f"no {name}.duckdb_extension inside {module.__file__}")
    return Path(found[0])


def literal(value: str | os.PathLike[str]) -> str:
    """A SQL string literal, for the few places DuckDB takes no parameters (ATTACH, table functions in DDL)."""
    return "'" + str(value).replace("'", "''") + "'"


def connect(path: str | os.PathLike[str] = ":memory:", *, read_only: bool = False,
            extensions: tuple[str, ...] = (), threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open DuckDB with automatic extension downloads switched off and the named extensions loaded.

    ``ONEWINDOW_DUCKDB_MEMORY_LIMIT`` / ``ONEWINDOW_DUCKDB_TEMP_DIR``, when set, bound the
    memory DuckDB's operators and buffer pool use and say where they spill beyond it.
    """
    config = {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    if threads:
        config["threads"] = str(threads)
    config |= _env_bounds()
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    for name in extensions:
        con.execute(f"LOAD '{extension_path(name)}'")
    return con


def apply_bounds(con: Any) -> None:
    """Bound an already open DuckDB database (one :func:`connect` did not open, e.g. the quality
    suite's in-memory database behind SQLAlchemy) by ``ONEWINDOW_DUCKDB_MEMORY_LIMIT`` /
    ``ONEWINDOW_DUCKDB_TEMP_DIR`` when they are set; both settings hold for the whole database."""
    for name, value in _env_bounds().items():
        con.execute(f"SET {name} = {literal(value)}")


def _env_bounds() -> dict[str, str]:
    """DuckDB settings from ``ONEWINDOW_DUCKDB_MEMORY_LIMIT`` / ``ONEWINDOW_DUCKDB_TEMP_DIR`` (the
    spill folder is created)."""
    bounds = {}
    if os.environ.get(MEMORY_LIMIT_ENV):
        bounds["memory_limit"] = os.environ[MEMORY_LIMIT_ENV]
    if os.environ.get(TEMP_DIR_ENV):
        Path(os.environ[TEMP_DIR_ENV]).mkdir(parents=True, exist_ok=True)
        bounds["temp_directory"] = os.environ[TEMP_DIR_ENV]
    return bounds
