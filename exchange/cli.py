"""The ``onewindow`` command: simulate departments, run the pipeline through Airflow, serve, benchmark."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from exchange.commands import admin as admin_commands
from exchange.commands import audit as audit_commands
from exchange.commands import lake as lake_commands
from exchange.commands import licence as licence_commands
from exchange.commands import quality as quality_commands
from warehouse.datadir import ENV_VAR, Layout

app = typer.Typer(help="OneWindow Hub (一窗受理数据共享与电子证照交换枢纽).", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
departments_app = typer.Typer(help="Simulated department systems (公安, 市场监管, 民政, 自然资源).",
                              no_args_is_help=True)
pipeline_app = typer.Typer(help="Run ingest DAGs and the library build through Airflow.", no_args_is_help=True)
app.add_typer(departments_app, name="departments")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(licence_commands.app, name="licence")
app.add_typer(quality_commands.app, name="quality")
app.add_typer(admin_commands.app, name="admin")
app.add_typer(audit_commands.app, name="audit")
app.add_typer(lake_commands.app, name="lake")


console = Console()


@app.callback()
def main(data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help=f"Data directory (default ./var, or ${ENV_VAR}).")) -> None:
    """OneWindow Hub command line."""
    if data_dir is not None:
        os.environ[ENV_VAR] = str(data_dir.expanduser().resolve())


def _layout() -> Layout:
    return Layout.from_env().ensure()


# ------------------------------------------------------------------ departments
@departments_app.command("simulate")
def departments_simulate(
    persons: int = typer.Option(3000, help="Persons in the population registry."),
    seed: int = typer.Option(7, help="Random seed: same seed, same data."),
    day: int = typer.Option(0, help="0 = initial state; k ≥ 1 = that day's changes."),
    defect_rate: float = typer.Option(0.02, help="Share of rows carrying an injected defect (0–0.5)."),
    pg_dsn: Optional[str] = typer.Option(None, help="Write the 公安 registry to PostgreSQL instead of SQLite."),
) -> None:
    """Build the simulated department systems and the defect manifest."""
    from exchange.departments import simulate

    layout = _layout()
    with console.status(f"simulating departments (persons={persons}, seed={seed}, day={day}) …"):
        summary = simulate(layout, persons=persons, seed=seed, day=day, defect_rate=defect_rate, pg_dsn=pg_dsn)
    table = Table(title=f"simulated day {day} → {layout.departments}")
    for col in ("dataset", "source", "system", "rows", "defects", "location"):
        table.add_column(col, justify="right" if col in ("rows", "defects") else "left")
    for row in summary.as_rows():
        table.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    console.print(table)
    console.print(f"defect manifest: {layout.defect_manifest}")


@departments_app.command("serve-api")
def departments_serve_api(port: int = typer.Option(8091), host: str = typer.Option("127.0.0.1")) -> None:
    """Serve the simulated 市场监管 REST API (enterprises, food licences) in the foreground."""
    import uvicorn

    from exchange.departments.scjg_api import create_app

    layout = _layout()
    uvicorn.run(create_app(layout.departments / "scjg" / "registry.sqlite"), host=host, port=port,
                log_level="warning")


# ------------------------------------------------------------------ pipeline
def _day_of(day: Optional[int], date: Optional[str]) -> dt.date:
    from exchange.departments import BASE_DATE

    if date:
        try:
            return dt.date.fromisoformat(date)
        except ValueError:
            raise typer.BadParameter(f"--date must be YYYY-MM-DD, got {date!r}") from None
    return BASE_DATE + dt.timedelta(days=day or 0)


@pipeline_app.command("run")
def pipeline_run(
    source: Optional[list[str]] = typer.Option(None, "--source", help="Source id (repeatable); default: all."),
    day: Optional[int] = typer.Option(None, help="Simulated day k (interval = that calendar day, CST)."),
    date: Optional[str] = typer.Option(None, help="Interval day as YYYY-MM-DD (CST); overrides --day."),
    build: bool = typer.Option(True, help="Run the library build after the ingests."),
) -> None:
    """Run ingest DAGs for one day's interval, then the library build, through Airflow."""
    from exchange.runner import run_pipeline

    run_pipeline(_layout(), _day_of(day, date), sources=source or None, build=build, console=console)


# ------------------------------------------------------------------ serving
@app.command("serve")
def serve(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8000)) -> None:
    """Serve the hub (API and pages) from the last published snapshot."""
    from exchange.api.server import serve as run_server

    layout = _layout()
    console.print(f"serving OneWindow Hub at http://{host}:{port}/ (data: {layout.root})")
    run_server(layout, host=host, port=port)


@app.command("demo")
def demo(
    persons: int = typer.Option(3000, help="Persons in the simulated population registry."),
    seed: int = typer.Option(7, help="Random seed."),
    days: int = typer.Option(1, help="Days of changes to pull after the initial load."),
    port: int = typer.Option(8000, help="Port to serve the hub on."),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve the hub when done."),
) -> None:
    """Simulate departments, run every DAG through Airflow, then serve the hub."""
    from exchange.runner import run_demo

    os.environ.setdefault("ONEWINDOW_ENV", "development")  # the embedded default: development keys allowed
    layout = _layout()
    run_demo(layout, persons=persons, seed=seed, days=days, console=console)
    if serve_after:
        console.rule("[bold green]OneWindow Hub is ready")
        console.print(f"  open http://127.0.0.1:{port}/            landing page (中文)")
        console.print(f"  open http://127.0.0.1:{port}/docs        API (OpenAPI)")
        console.print(f"  open http://127.0.0.1:{port}/api/v1/items  service items (事项)")
        console.print(f"  open http://127.0.0.1:{port}/login       counter and audit pages (sign in as above)")
        console.print("  Ctrl-C to stop.")
        serve(host="127.0.0.1", port=port)


# ------------------------------------------------------------------ airflow
@app.command("airflow", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def airflow_cmd(ctx: typer.Context) -> None:
    """Run Airflow's own CLI on the hub's DAGs and data dir, e.g. `onewindow airflow standalone`."""
    from exchange.orchestrate import airflow_env, ensure_metadata_db

    layout = _layout()
    ensure_metadata_db(layout)
    args = ctx.args or ["standalone"]
    env = airflow_env(layout)
    env.setdefault("AIRFLOW__API__PORT", "8080")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "airflow", *args], env=env))


# ------------------------------------------------------------------ bench
@app.command("bench")
def bench(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object of figures."),
    persons: int = typer.Option(1_000_000, help="Population size for the ingest benchmark."),
    only: Optional[list[str]] = typer.Option(None, help="Run only these benchmarks."),
) -> None:
    """Run the named benchmarks; each figure is a ratio against an anchor measured in the same run."""
    from exchange.bench import run_benchmarks

    os.environ.setdefault("ONEWINDOW_ENV", "development")

    run_benchmarks(persons=persons, only=only, as_json=as_json, console=console)


if __name__ == "__main__":
    app()
