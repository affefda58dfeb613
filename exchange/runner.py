"""What `onewindow pipeline run` and `onewindow demo` do, with a rich progress display."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from exchange.orchestrate import DagRequest, run_dags
from exchange.sources.registry import load_sources
from warehouse.datadir import Layout

CST = dt.timezone(dt.timedelta(hours=8))
SCJG_CONN_ENV = "AIRFLOW_CONN_SCJG_API"


@contextlib.contextmanager
def department_apis(layout: Layout, sources) -> Iterator[None]:
    """Serve the simulated 市场监管 REST API on loopback for the run, unless a connection is configured."""
    if not any(s.kind == "rest" for s in sources) or os.environ.get(SCJG_CONN_ENV):
        yield
        return
    from exchange.departments.scjg_api import serve_in_background

    db = layout.departments / "scjg" / "registry.sqlite"
    handle = serve_in_background(db, host="127.0.0.1", port=0)
    os.environ[SCJG_CONN_ENV] = handle.url
    try:
        yield
    finally:
        os.environ.pop(SCJG_CONN_ENV, None)
        handle.stop()


def day_requests(day: dt.date, source_ids: list[str] | None, build: bool) -> list[DagRequest]:
    """DAG runs for the interval ``[day, day+1)`` CST.

    Airflow infers a manual run's data interval as the last complete period
    before its logical date, so the logical date is the interval's end.
    """
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=CST).isoformat()
    sources = [s for s in load_sources() if not source_ids or s.id in source_ids]
    unknown = set(source_ids or ()) - {s.id for s in sources}
    if unknown:
        raise ValueError(f"unknown source ids: {', '.join(sorted(unknown))}")
    reqs = [DagRequest(f"ingest_{s.id}", end) for s in sources]
    if build:
        reqs.append(DagRequest("library_build", end))
    return reqs


def run_pipeline(layout: Layout, day: dt.date, *, sources: list[str] | None, build: bool,
                 console: Console) -> list[dict]:
    """Ingest one day's interval for the given sources, then build; progress shown per stage with counts."""
    reqs = day_requests(day, sources, build)
    selected = [s for s in load_sources() if not sources or s.id in sources]
    with department_apis(layout, selected), _progress(console) as progress:
        tasks = {r.dag_id: progress.add_task(f"{r.dag_id}: waiting", total=None, start=False) for r in reqs}

        def on_event(ev: dict) -> None:
            if ev["event"] == "dag_start":
                progress.start_task(tasks[ev["dag_id"]])
                progress.update(tasks[ev["dag_id"]], description=f"{ev['dag_id']}: running")
            elif ev["event"] == "step":
                dag_id = f"ingest_{ev['source_id']}" if "source_id" in ev else "library_build"
                progress.update(tasks[dag_id], description=f"{dag_id}: {_describe(ev)}")
            elif ev["event"] == "dag_end":
                t = tasks.get(ev["dag_id"])
                if t is not None:
                    progress.update(t, total=1, completed=1)
                    done = "✔" if ev["state"] == "success" else "✘ " + ev["state"]
                    desc = progress.tasks[t].description.split(": ", 1)[-1]
                    progress.update(t, description=f"{ev['dag_id']}: {done} {desc} ({ev.get('seconds', '?')} s)")

        return run_dags(layout, reqs, on_event=on_event)


def _describe(ev: dict) -> str:
    step = ev["step"]
    if step == "extract":
        return f"extracted {ev['rows']:,} rows"
    if step == "validate":
        return f"checked {ev['rows']:,}: {ev['passed']:,} passed, {ev['quarantined']:,} quarantined, {ev['flagged']:,} flagged"
    if step == "load":
        return (f"loaded {ev['certificates_new']:,} new + {ev['certificates_changed']:,} changed certificates, "
                f"{ev['subjects_upserted']:,} subjects, {ev['quarantined']:,} quarantined")
    if step == "issue":
        return f"signed {ev['issued']:,} new + {ev['reissued']:,} new-version licences ({ev['licences_total']:,} total)"
    if step == "publish":
        return f"published snapshot {ev['snapshot_id']}"
    return step


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=12), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        yield progress


def run_demo(layout: Layout, *, persons: int, seed: int, days: int, console: Console,
             defect_rate: float = 0.02) -> dict:
    """The embedded default end to end: simulate day 0..days, pull each day through Airflow, build."""
    from exchange.departments import BASE_DATE, simulate

    started = time.monotonic()
    console.rule("[bold]OneWindow Hub demo (一窗受理 · 证照库 · 材料库)")
    console.print(f"data directory: {layout.root}")
    for k in range(days + 1):
        with console.status(f"simulating department systems, day {k} …"):
            summary = simulate(layout, persons=persons, seed=seed, day=k, defect_rate=defect_rate)
        console.print(f"[bold]day {k}[/] department systems: " + ", ".join(
            f"{r[0]} {r[3]:,} rows ({r[4]} defects, {r[2]})" for r in summary.as_rows()))
        console.print(f"pulling day {k} ({BASE_DATE + dt.timedelta(days=k)}) through Airflow:")
        run_pipeline(layout, BASE_DATE + dt.timedelta(days=k), sources=None, build=True, console=console)
    stats = library_stats(layout)
    table = Table(title="library (证照库) after the demo")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in stats.items():
        table.add_row(k, f"{v:,}")
    console.print(table)
    console.print(f"demo pipeline wall time: {time.monotonic() - started:.1f} s")
    from exchange.store import open_store
    from exchange.web.accounts import create_demo_accounts

    store = open_store(layout)
    try:
        for user, role, password in create_demo_accounts(store):
            console.print(f"web sign-in (/login) {role}: user [bold]{user}[/] password [bold]{password}[/]")
    finally:
        store.close()
    return stats


def library_stats(layout: Layout) -> dict[str, int]:
    from warehouse.snapshot import current
    from warehouse.duck import connect

    snap = current(layout)
    if snap is None:
        return {}
    con = connect(snap, read_only=True)
    try:
        q = {
            "subjects (持证主体)": "SELECT count(*) FROM subjects",
            "certificates (证照)": "SELECT count(*) FROM certificates",
            "certificate versions in history": "SELECT count(*) FROM certificate_history",
            "signed licences (电子证照)": "SELECT count(*) FROM licences",
            "quarantined rows (隔离)": "SELECT count(*) FROM quarantine WHERE resolved_interval IS NULL",
        }
        return {k: con.execute(v).fetchone()[0] for k, v in q.items()}
    finally:
        con.close()
