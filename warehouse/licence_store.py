"""Where issued licences live: compact rows in immutable Parquet files, read through one view.

On a DuckLake library (:mod:`warehouse.library`) the licences live in the DuckLake
table ``licence_store`` instead — its data files are in the library's data store (S3 or
a shared directory), so any machine reads them: a build writes each job's file to a local
staging folder as below and copies its rows into ``licence_store`` in the chunk's
transaction (``register(..., copy=True)``); ``licence_files`` stays empty and the view is
``licence_store`` alone. The rest of this docstring is the embedded library.

A build writes each job's licences to a Parquet file under ``<data-dir>/warehouse/licences``
(beside ``library.duckdb``, always local: the lake may be remote, the library is not)
(:func:`certificates.issue.run_job`: written under a temporary name, fsynced, renamed) and
registers the chunk's files in ``licence_files`` in the same DuckDB transaction that
saves the chunk's batch roots and status-list fill. A file that is not registered is
not part of the library: a failed build leaves its files unregistered (they are removed
by :func:`remove_orphans` at the next build) and the last good state unchanged.

A stored row is the licence's columns plus its token as three segments (``token_header``,
``token_payload``, ``token_tail``; see :mod:`certificates.issue`). ``licences`` is a view
over the registered files and ``licence_store`` (rows migrated from the former
``licences`` table) that joins the segments back into ``token``, byte for byte, so every
reader of ``licences.token`` reads what it read before. The view names the files by
absolute path and is re-created whenever a file is registered and at every build
(:func:`refresh_view`), so a moved data directory is picked up by its next build.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from warehouse.duck import literal
from warehouse.exceptions import LicenceConflict, LicenceFilesMissing

#: The compact licence row, as stored (``certificates.issue.ISSUED_SCHEMA``, a test checks the two agree).
STORE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("licence_id", "VARCHAR"), ("base_id", "VARCHAR"), ("cert_key", "VARCHAR"), ("version", "INTEGER"),
    ("issued_at", "TIMESTAMP"), ("supersedes", "VARCHAR"), ("issuer_code", "VARCHAR"),
    ("licence_type_code", "VARCHAR"), ("holder_code", "VARCHAR"), ("mode", "VARCHAR"), ("batch_id", "VARCHAR"),
    ("status_list", "VARCHAR"), ("status_index", "INTEGER"), ("token_header", "VARCHAR"),
    ("token_payload", "VARCHAR"), ("token_tail", "VARCHAR"))
#: The ``licences`` relation's columns, in the order of the table it replaces.
LICENCE_COLUMNS = ("licence_id", "base_id", "cert_key", "version", "token", "issued_at", "supersedes",
                   "issuer_code", "licence_type_code", "holder_code", "mode", "batch_id", "status_list",
                   "status_index")
TOKEN_SQL = "token_header || '.' || token_payload || '.' || token_tail"

STORE_DDL = f"""
    CREATE TABLE licence_store ({', '.join(f'{c} {t}' for c, t in STORE_COLUMNS)}, PRIMARY KEY (licence_id));
    CREATE TABLE licence_files (
        seq INTEGER PRIMARY KEY,          -- registration order
        file VARCHAR NOT NULL UNIQUE,     -- name under <data-dir>/warehouse/licences
        rows BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        registered_at TIMESTAMP NOT NULL
    );
"""


def files_dir(layout: Any) -> Path:
    """Where the library's licence files live (next to the library database)."""
    return layout.warehouse / "licences"


def view_sql(paths: Sequence[str | Path]) -> str:
    """``CREATE OR REPLACE VIEW licences`` over ``licence_store`` and the Parquet files ``paths``."""
    names = ", ".join(c for c, _ in STORE_COLUMNS)
    source = f"SELECT {names} FROM licence_store"
    if paths:
        casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in STORE_COLUMNS)
        files = ", ".join(literal(str(p)) for p in paths)
        source += f" UNION ALL SELECT {casts} FROM read_parquet([{files}])"
    select = ", ".join(TOKEN_SQL + " AS token" if c == "token" else c for c in LICENCE_COLUMNS)
    return f"CREATE OR REPLACE VIEW licences AS SELECT {select} FROM ({source})"


def registered(con: Any) -> list[str]:
    return [name for (name,) in con.execute("SELECT file FROM licence_files ORDER BY seq").fetchall()]


def refresh_view(con: Any, directory: Path) -> None:
    """Point ``licences`` at the registered files in ``directory`` (raises if one is missing)."""
    names = registered(con)
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise LicenceFilesMissing(str(directory), missing)
    con.execute(view_sql([directory / n for n in names]))


def check_unique(con: Any, paths: Sequence[Path]) -> None:
    """Raise :class:`LicenceConflict` when the files ``paths`` repeat a licence id, among
    themselves or against ``licences`` as it stands."""
    if not paths:
        return
    new = f"read_parquet([{', '.join(literal(str(p)) for p in paths)}])"
    clash = [lid for (lid,) in con.execute(f"""
        SELECT licence_id FROM {new} GROUP BY licence_id HAVING count(*) > 1
        UNION ALL
        SELECT n.licence_id FROM {new} n SEMI JOIN licences l ON l.licence_id = n.licence_id
        LIMIT 100""").fetchall()]
    if clash:
        raise LicenceConflict(sorted(set(clash)))


class StoredIds:
    """Fingerprints of the stored licence ids (:func:`certificates.arrow_text.fingerprints`),
    loaded once per build, so that each chunk's ids are checked against them in memory
    instead of by scanning every stored file; only a fingerprint match (a repeat, or a
    2**-64 chance) runs the exact check in DuckDB (:func:`check_unique`)."""

    def __init__(self, con: Any) -> None:
        from certificates.arrow_text import fingerprints

        ids = con.execute("SELECT licence_id FROM licences").to_arrow_table().column(0)
        fps = fingerprints(ids)
        self.exact = fps is None  # an identifier too long to fingerprint: always the exact check
        self.parts = [np.sort(fps)] if fps is not None and len(fps) else []

    def clashes(self, new: Any) -> bool:
        """True when the fingerprints ``new`` (None: unknown) repeat or match a stored one."""
        if self.exact or new is None:
            return True
        new = np.sort(new)
        if len(new) > 1 and bool((new[1:] == new[:-1]).any()):
            return True
        for part in self.parts:
            at = np.minimum(np.searchsorted(part, new), len(part) - 1)
            if bool((part[at] == new).any()):
                return True
        return False

    def add(self, new: Any) -> None:
        if new is not None and len(new):
            self.parts.append(np.sort(new))


def register(con: Any, directory: Path, files: Iterable[tuple[str, int, int]], *, at: dt.datetime,
             ids: StoredIds | None = None, fingerprints: Any = None, copy: bool = False) -> None:
    """Inside the caller's transaction: check the new files ``(name, rows, bytes)`` for
    repeated licence ids (exactly, or first by their ``fingerprints`` against ``ids``),
    register them and re-create the view.

    ``copy`` (a DuckLake library, :mod:`warehouse.library`): the files' rows go into the
    ``licence_store`` table instead, i.e. into the DuckLake's own data files where every
    machine reads them; the local files are then only the build's staging."""
    files = list(files)
    if ids is None or ids.clashes(fingerprints):
        check_unique(con, [directory / name for name, _, _ in files])
    if copy:
        if files:
            casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in STORE_COLUMNS)
            paths = ", ".join(literal(str(directory / name)) for name, _, _ in files)
            con.execute(f"INSERT INTO licence_store SELECT {casts} FROM read_parquet([{paths}])")
        return
    seq = con.execute("SELECT coalesce(max(seq), 0) FROM licence_files").fetchone()[0]
    for k, (name, rows, size) in enumerate(files, start=1):
        con.execute("INSERT INTO licence_files VALUES (?, ?, ?, ?, ?)", [seq + k, name, rows, size, at])
    refresh_view(con, directory)


def remove_orphans(con: Any, directory: Path) -> list[str]:
    """Delete the files in ``directory`` that are not registered (left by a failed build)."""
    if not directory.is_dir():
        return []
    keep = set(registered(con))
    removed = []
    for path in directory.iterdir():
        if path.is_file() and path.name not in keep and (path.suffix == ".parquet" or path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
