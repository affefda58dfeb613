"""Publish an immutable, read-only snapshot of the library for the service.

The snapshot is written to a temporary file, renamed into place, and only then
``snapshots/CURRENT`` is replaced (atomically) with its name. A failed build
never touches CURRENT, so the last good snapshot keeps serving.

Licences are not copied row by row: the library's licence files are immutable, so the
snapshot hard-links them (copies them where a link is not possible) into its own
directory ``library-<id>.licences/`` and holds ``licence_store``, ``licence_files`` and
the ``licences`` view over those links (:mod:`warehouse.licence_store`); readers see the
same ``licences`` columns, ``token`` included, as in the library.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.datadir import Layout
from warehouse.duck import connect, literal
from warehouse.library import Library
from warehouse.licence_store import files_dir, registered, view_sql
from warehouse.lock import writer_lock
from warehouse.schema import content_hash

SERVED_TABLES = ("subjects", "certificates", "certificate_history", "licences", "quarantine", "quality_runs",
                 "watermarks", "crosscheck_findings")
KEEP = 3
CST = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    path: Path
    library_hash: str
    counts: dict[str, int]


def publish(layout: Layout, *, built_at: dt.datetime) -> Snapshot:
    """Copy the served tables into a new snapshot file and point CURRENT at it."""
    layout.snapshots.mkdir(parents=True, exist_ok=True)
    if built_at.tzinfo is not None:  # stored naive in China Standard Time, like every timestamp here
        built_at = built_at.astimezone(CST).replace(tzinfo=None)
    library = Library.from_env(layout)
    # embedded: the library's writer lock (held by library.reader() below); DuckLake: no lock on the
    # library, only on this data directory's CURRENT, so two publishers here take turns
    with (writer_lock(layout.current_snapshot_pointer) if library.shared else contextlib.nullcontext()), \
            library.reader() as con:
        tmp = layout.snapshots / f".library-{uuid.uuid4().hex}.tmp"
        con.execute(f"ATTACH {literal(tmp)} AS snap")
        try:
            con.execute("BEGIN")  # one library snapshot for everything read below (DuckLake)
            lib_hash = content_hash(con)
            snapshot_id = f"{built_at:%Y%m%dT%H%M%S}-{lib_hash[:12]}"
            final = layout.snapshots / f"library-{snapshot_id}.duckdb"
            links = _link_licence_files(con, layout, final)
            counts = {}
            for table in SERVED_TABLES:
                if table == "licences":  # the view, over the linked files
                    for part in ("licence_store", "licence_files"):
                        con.execute(f"CREATE TABLE snap.{part} AS SELECT * FROM {part}")
                    continue
                con.execute(f"CREATE TABLE snap.{table} AS SELECT * FROM {table}")
                counts[table] = con.execute(f"SELECT count(*) FROM snap.{table}").fetchone()[0]
            counts["licences"] = con.execute("SELECT count(*) FROM licences").fetchone()[0]
            con.execute("CREATE TABLE snap.snapshot_meta (snapshot_id VARCHAR, built_at TIMESTAMP, library_hash VARCHAR)")
            con.execute("INSERT INTO snap.snapshot_meta VALUES (?, ?, ?)",
                        [snapshot_id, built_at, lib_hash])
            con.execute("COMMIT")
            con.execute("DETACH snap")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            with contextlib.suppress(duckdb.Error):
                con.execute("DETACH snap")
            tmp.unlink(missing_ok=True)
            raise
        snap = connect(tmp)
        try:
            snap.execute(view_sql(links))
        finally:
            snap.close()
        os.replace(tmp, final)
        _write_pointer(layout.current_snapshot_pointer, final.name)
        _prune(layout, keep=final.name)
    return Snapshot(snapshot_id, final, lib_hash, counts)


def licence_links(snapshot: Path) -> Path:
    """The directory holding a snapshot's links to its licence files."""
    return snapshot.with_name(snapshot.name.removesuffix(".duckdb") + ".licences")


def _link_licence_files(con, layout: Layout, final: Path) -> list[Path]:
    """Hard-link (or copy) every registered licence file into the snapshot's directory. A link
    already there is the same file (names are unique and files never change), so a snapshot
    published again — perhaps being served — keeps its links."""
    source = files_dir(layout)
    target = licence_links(final)
    target.mkdir(parents=True, exist_ok=True)
    links = []
    for name in registered(con):
        link = target / name
        if not link.exists():
            tmp = target / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                os.link(source / name, tmp)
            except OSError:  # another file system, or links not allowed: a copy
                shutil.copyfile(source / name, tmp)
            os.replace(tmp, link)
        links.append(link)
    return links


def current(layout: Layout) -> Path | None:
    """Path of the snapshot being served, or None before the first publish."""
    try:
        name = layout.current_snapshot_pointer.read_text().strip()
    except FileNotFoundError:
        return None
    return layout.snapshots / name if name else None


def _write_pointer(pointer: Path, name: str) -> None:
    tmp = pointer.with_name(f".CURRENT.{uuid.uuid4().hex}")
    tmp.write_text(name + "\n")
    os.replace(tmp, pointer)


def _prune(layout: Layout, *, keep: str) -> None:
    """Keep the newest few snapshots; a reader that still has an old one open keeps its inode."""
    snaps = sorted(layout.snapshots.glob("library-*.duckdb"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in snaps[KEEP:]:
        if old.name != keep:
            old.unlink(missing_ok=True)
    for stale in layout.snapshots.glob(".library-*.tmp"):
        stale.unlink(missing_ok=True)
    kept = {licence_links(p).name for p in layout.snapshots.glob("library-*.duckdb")}
    for links in layout.snapshots.glob("library-*.licences"):
        if links.name not in kept:  # its snapshot was pruned (or never renamed into place)
            shutil.rmtree(links, ignore_errors=True)
