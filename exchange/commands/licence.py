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

#: Exit code of each outcome; stable (scripts depend on it), so new outcomes get new numbers.
EXIT_CODES: dict[str, int] = {
    "valid": 0,
    "tampered": 11,
    "unknown_issuer": 12,
    "issuer_cert_expired": 13,
    "issuer_cert_not_yet_valid": 14,
    "revoked": 15,
    "suspended": 16,
    "expired": 17,
    "not_yet_valid": 18,
    "status_unavailable": 19,
    "malformed": 20,
    "use_copy_expired": 21,
}
#: The trust bundle itself cannot be loaded (not a verdict on the licence).
EXIT_NO_TRUST = 2


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., exists=True, readable=True,
                                help="A signed licence (compact JWS or batch token) or a use-copy "
                                     "(加注件) in a text file."),
    trust_dir: Optional[Path] = typer.Option(None, help="Trust bundle folder (default <data-dir>/trust)."),
    status_dir: Optional[Path] = typer.Option(
        None, help="Cached status lists (*.jws; default <data-dir>/status). Without any, the status "
                   "signed in the licence is used."),
    at: Optional[str] = typer.Option(None, help="Check at this moment (ISO 8601; default now)."),
) -> None:
    """Verify a signed licence offline; the exit code tells the outcome (0 = valid, see EXIT_CODES)."""
    from certificates import TrustStore, TrustStoreError, verify_licence
    from certificates.statuslist import StatusListError, StatusLists

    layout = Layout.from_env()
    try:
        trust = TrustStore.from_dir(trust_dir or layout.trust)
    except TrustStoreError as exc:
        console.print(f"[red]无法加载信任列表[/] {exc}")
        raise typer.Exit(EXIT_NO_TRUST) from None
    moment = dt.datetime.fromisoformat(at) if at else dt.datetime.now(dt.timezone.utc)
    token = file.read_text(encoding="utf-8").strip()
    lists_dir = status_dir or layout.root / "status"
    source = None
    if any(lists_dir.glob("*.jws")):
        try:
            source = StatusLists.from_dir(lists_dir, trust)
        except StatusListError as exc:
            console.print(f"[red]状态列表无效或被篡改[/] ({exc}); 无法确认证照状态")
            raise typer.Exit(EXIT_CODES["status_unavailable"]) from None
    result = verify_licence(token, trust, at=moment, status_source=source)
    colour = "green" if result.ok else "red"
    console.print(f"[{colour}]{result.code}[/] — {result.reason_zh}")
    if result.detail:
        console.print(f"detail: {result.detail}")
    if result.licence_id:
        console.print(f"证照标识: {result.licence_id}")
    if result.use_copy:
        console.print(f"加注件: {result.use_copy['stamp']}（截止 {result.use_copy['expires_at']}）")
    raise typer.Exit(exit_code(result.outcome))


def exit_code(outcome) -> int:
    """The process exit code of a verification outcome (:data:`EXIT_CODES`)."""
    return EXIT_CODES[outcome.value]
