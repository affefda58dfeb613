"""``onewindow audit …``: seal the usage log, verify it offline, manage the auditor key."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from warehouse.datadir import Layout

app = typer.Typer(help="Usage log (用证记录): seal per day, verify offline, auditor key.", no_args_is_help=True)
console = Console()
CST = dt.timezone(dt.timedelta(hours=8), "CST")
ENV_AUDITOR_PASSPHRASE = "ONEWINDOW_AUDITOR_PASSPHRASE"


def _day(value: Optional[str], flag: str) -> Optional[str]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise typer.BadParameter(f"{flag} must be YYYY-MM-DD, got {value!r}") from None


@app.command("verify-log")
def verify_log(
    date_from: Optional[str] = typer.Option(None, "--from", help="First day (YYYY-MM-DD, CST)."),
    date_to: Optional[str] = typer.Option(None, "--to", help="Last day (YYYY-MM-DD, CST)."),
    exports: Optional[Path] = typer.Option(None, help="Export folder (default <data-dir>/service/usage-log)."),
    trust_dir: Optional[Path] = typer.Option(
        None, help="Published trust material: root.pem + bundle.pem with the hub service certificate "
                   "that signs the seals (default <data-dir>/trust)."),
    store: bool = typer.Option(False, "--store/--no-store",
                               help="Also verify the live store's chain after the last seal (needs the data dir)."),
) -> None:
    """Verify the sealed usage log offline; exit 1 and name the first broken record if altered."""
    from certificates import TrustStore, TrustStoreError
    from exchange.usagelog.seal import export_dir
    from exchange.usagelog.verify import verify_exports, verify_store_chain

    layout = Layout.from_env()
    try:
        trust = TrustStore.from_dir(trust_dir or layout.trust)
    except TrustStoreError as exc:
        console.print(f"[red]cannot load the published trust material: {exc}[/]")
        raise typer.Exit(2) from None
    report = verify_exports(exports or export_dir(layout), trust,
                            date_from=_day(date_from, "--from"), date_to=_day(date_to, "--to"))
    console.print(f"sealed days checked: {len(report.days)}  records: {report.records}")
    if report.intact and store:
        from exchange.store import open_store

        st = open_store(layout)
        seals = st.seals()
        last = seals[-1] if seals else None
        live = verify_store_chain(st, after_seq=last.last_seq if last else 0,
                                  prev_hash=None if last is None else _last_hash(last.jws))
        console.print(f"unsealed records in the store checked: {live.records}")
        report.problems.extend(live.problems)
    if report.intact:
        console.print("[green]usage log intact[/]")
        return
    console.print(f"[red]usage log broken — first broken: {report.first_broken}[/]")
    for p in report.problems[1:]:
        console.print(f"  also: {p}")
    raise typer.Exit(1)


def _last_hash(jws: str) -> str:
    import base64
    import json

    body = jws.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["last_hash"]


@app.command("seal")
def seal() -> None:
    """Seal every complete day of the usage log now (the service also does this in the background)."""
    from exchange.store import open_store
    from exchange.usagelog.seal import seal_due

    layout = Layout.from_env().ensure()
    st = open_store(layout)
    report = seal_due(st, layout, None, at=dt.datetime.now(CST))
    for day in report.sealed:
        console.print(f"sealed {day}")
    for day, error in report.failed:
        console.print(f"[red]seal of {day} failed (retried on the next pass): {error}[/]")
    for day in report.pending:
        console.print(f"pending {day}")
    failures = st.seal_failures()
    if failures:
        console.print(f"[yellow]{len(failures)} failed attempt(s) on days still unsealed[/]")
    raise typer.Exit(1 if report.failed else 0)


@app.command("auditor-key")
def auditor_key(
    private: Path = typer.Option(..., help="Where to write the auditor PRIVATE key (give it to auditors)."),
    public: Optional[Path] = typer.Option(None, help="Public key path (default <data-dir>/keys/auditor.pub.pem)."),
) -> None:
    """Create the auditor key pair (private key encrypted with $ONEWINDOW_AUDITOR_PASSPHRASE when set)."""
    from exchange.usagelog import auditor

    layout = Layout.from_env().ensure()
    passphrase = os.environ.get(ENV_AUDITOR_PASSPHRASE)
    try:
        auditor.create_keypair(private, public or auditor.public_key_path(layout),
                               passphrase.encode("utf-8") if passphrase else None)
    except auditor.AuditorKeyError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"auditor key pair written: private {private}, public {public or auditor.public_key_path(layout)}")


@app.command("reveal")
def reveal(sealed: str = typer.Argument(..., help="A holder_sealed value from the usage log (ow1.…)."),
           key: Path = typer.Option(..., help="The auditor private key.")) -> None:
    """Recover a full identifier from the usage log (auditors only: needs the auditor private key)."""
    from exchange.usagelog import auditor

    passphrase = os.environ.get(ENV_AUDITOR_PASSPHRASE)
    try:
        value = auditor.open_identifier(sealed, auditor.load_private(key, passphrase.encode() if passphrase else None))
    except auditor.AuditorKeyError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    print(value)
