"""``onewindow licence …``: electronic licences (verify offline)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from warehouse.datadir import Layout

app = typer.Typer(help="Electronic licences: verify offline.", no_args_is_help=True)
console = Console()


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., exists=True, readable=True, help="A signed licence (compact JWS)."),
    trust_dir: Optional[Path] = typer.Option(None, help="Trust bundle folder (default <data-dir>/trust)."),
) -> None:
    """Verify a signed licence offline; the exit code tells the outcome (0 = valid)."""
    from certificates import Outcome, TrustStore, verify_licence

    layout = Layout.from_env()
    trust = TrustStore.from_dir(trust_dir or layout.trust)
    token = file.read_text(encoding="utf-8").strip()
    result = verify_licence(token, trust, at=dt.datetime.now(dt.timezone.utc))
    colour = "green" if result.outcome is Outcome.VALID else "red"
    console.print(f"[{colour}]{result.code}[/] — {result.reason_zh}")
    if result.licence_id:
        console.print(f"证照标识: {result.licence_id}")
    raise typer.Exit(exit_code(result.outcome))


def exit_code(outcome) -> int:
    """0 for valid; 10 + the outcome's position for each failure class (stable: append new outcomes at the end)."""
    from certificates import Outcome

    members = list(Outcome)
    return 0 if outcome is Outcome.VALID else 10 + members.index(outcome)
