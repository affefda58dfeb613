"""``onewindow lake …``: the lake of raw, checked and quarantine partitions (local or S3-compatible)."""

from __future__ import annotations

import typer
from rich.console import Console

from warehouse.datadir import Layout

app = typer.Typer(help="The lake (raw / checked / quarantine Parquet partitions), local or on S3 (ONEWINDOW_LAKE_URL).",
                  no_args_is_help=True)
console = Console()


def _lake():
    from warehouse.exceptions import LakeConfigError
    from warehouse.lake import Lake

    try:
        return Lake.from_env(Layout.from_env())
    except LakeConfigError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


@app.command("init")
def init() -> None:
    """Create the lake if missing (its bucket on S3) and prove a write, read and delete there."""
    from warehouse.exceptions import LakeIOError

    lake = _lake()
    try:
        steps = lake.init()
    except LakeIOError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    for step in steps:
        console.print(f"lake: {step}")


@app.command("list")
def list_files(prefix: str = typer.Argument(
        "", help="Folder under the lake root, e.g. raw/source=gongan_population.")) -> None:
    """Print every object under a folder of the lake, one location a line."""
    lake = _lake()
    for location in lake.files(*[p for p in prefix.split("/") if p]):
        console.print(location, highlight=False, soft_wrap=True)
