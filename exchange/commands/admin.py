"""``onewindow admin …``: departments, API clients and keys, grants, accepted applications, 用证码.

Grants are data in the service store (``layout.service``), edited here, never in code.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from warehouse.datadir import Layout

app = typer.Typer(help="Administer department access: clients, API keys, grants, applications, 用证码.",
                  no_args_is_help=True)
console = Console()
CST = dt.timezone(dt.timedelta(hours=8), "CST")


def _now() -> dt.datetime:
    return dt.datetime.now(CST)


def _store():
    from exchange.store import open_store

    return open_store(Layout.from_env().ensure())


def licence_type_code(value: str) -> str:
    """A licence type registry key (``food_licence``) or its 21-character code, as the code."""
    from certificates.registry import load_registry

    reg = load_registry()
    if value in reg.licence_types:
        return reg.licence_type(value).code
    try:
        return reg.by_code(value).code
    except KeyError:
        raise typer.BadParameter(f"unknown licence type {value!r}; known keys: "
                                 f"{', '.join(sorted(reg.licence_types))}") from None


def _fail(exc: Exception) -> None:
    console.print(f"[red]{exc}[/]")
    raise typer.Exit(1)


@app.command("add-department")
def add_department(code: str = typer.Argument(..., help="Department credit code (or a short id)."),
                   name: str = typer.Argument(..., help="Department name, e.g. 杭州市民政局.")) -> None:
    """Register (or rename) a department."""
    store = _store()
    store.add_department(code, name)
    console.print(f"department {code} {name}")


@app.command("add-client")
def add_client(client_id: str = typer.Argument(..., help="Client id, e.g. minzheng-marriage-system."),
               department: str = typer.Option(..., help="Department code the client belongs to."),
               name: str = typer.Option("", help="Human-readable name."),
               counter: bool = typer.Option(False, "--counter", help="Front-desk client: may record accepted applications."),
               issuer: bool = typer.Option(False, "--issuer", help="Back-office system: may push results (办结结果) "
                                                                   "for the types its department may issue."),
               ) -> None:
    """Register an API client of a department and print its first API key (shown once)."""
    from exchange.store import StoreError

    store = _store()
    roles = (["counter"] if counter else []) + (["issuer"] if issuer else [])
    try:
        store.add_client(client_id, department, name or client_id, roles)
        key = store.issue_key(client_id, at=_now())
    except StoreError as exc:
        _fail(exc)
    console.print(f"client {client_id} ({department}); API key (store it now, it is not kept):")
    print(key)


@app.command("issue-key")
def issue_key(client_id: str = typer.Argument(...),
              revoke_old: bool = typer.Option(False, help="Revoke the client's existing keys first.")) -> None:
    """Issue another API key for a client (only its salted hash is stored)."""
    from exchange.store import StoreError

    store = _store()
    try:
        if revoke_old:
            console.print(f"revoked {store.revoke_keys(client_id, at=_now())} key(s)")
        key = store.issue_key(client_id, at=_now())
    except StoreError as exc:
        _fail(exc)
    print(key)


@app.command("revoke-keys")
def revoke_keys(client_id: str = typer.Argument(...)) -> None:
    """Revoke every API key of a client."""
    console.print(f"revoked {_store().revoke_keys(client_id, at=_now())} key(s)")


@app.command("grant")
def grant(department: str = typer.Argument(..., help="Department code."),
          licence_types: list[str] = typer.Argument(..., help="Licence type keys or codes."),
          by: str = typer.Option("admin", help="Who grants (kept with the grant).")) -> None:
    """Grant a department read access to licence types."""
    from exchange.store import StoreError

    store = _store()
    for value in licence_types:
        code = licence_type_code(value)
        try:
            store.grant(department, code, by=by, at=_now())
        except StoreError as exc:
            _fail(exc)
        console.print(f"granted {department} → {code}")


@app.command("revoke")
def revoke(department: str = typer.Argument(...), licence_types: list[str] = typer.Argument(...)) -> None:
    """Withdraw a department's grant for licence types."""
    store = _store()
    for value in licence_types:
        code = licence_type_code(value)
        console.print(f"{'revoked' if store.revoke_grant(department, code) else 'no grant'} {department} → {code}")


@app.command("list")
def list_access() -> None:
    """Departments, clients and grants."""
    store = _store()
    table = Table(title="clients")
    for col in ("client", "department", "name", "roles", "disabled"):
        table.add_column(col)
    for c in store.clients():
        table.add_row(c.client_id, f"{c.department_code} {c.department_name}", c.name, ",".join(c.roles),
                      "yes" if c.disabled else "")
    console.print(table)
    grants = Table(title="grants")
    for col in ("department", "licence type", "by", "at"):
        grants.add_column(col)
    for row in store.all_grants():
        grants.add_row(*row)
    console.print(grants)


@app.command("accept")
def accept(case_number: str = typer.Argument(...), item_code: str = typer.Option(...),
           holder: str = typer.Option(..., help="Holder's ID number or credit code."),
           clerk: str = typer.Option(...), client_id: str = typer.Option("admin-cli")) -> None:
    """Record an application accepted at the counter (authorises reads for that holder in that case)."""
    from exchange.onceonly.catalogue import load_catalogue
    from exchange.onceonly.exceptions import UnknownItemError
    from exchange.store import StoreError

    try:
        item = load_catalogue().get(item_code)
    except UnknownItemError as exc:
        _fail(exc)
    try:
        app_ = _store().accept_application(case_number, item.code, holder.strip().upper(), clerk, client_id,
                                           at=_now())
    except StoreError as exc:
        _fail(exc)
    console.print(f"accepted case {app_.case_number} ({app_.item_code}) at {app_.accepted_at}")


@app.command("issue-code")
def issue_code(holder: str = typer.Argument(..., help="Holder's ID number or credit code."),
               ttl_minutes: int = typer.Option(30, min=1, max=7 * 24 * 60, help="Validity in minutes."),
               ) -> None:
    """Issue a single-use authorisation code (用证码) for a holder; print it once."""
    code = _store().issue_code(holder.strip().upper(), at=_now(), ttl=dt.timedelta(minutes=ttl_minutes))
    print(code)


@app.command("disable-client")
def disable_client(client_id: str = typer.Argument(...),
                   enable: Optional[bool] = typer.Option(False, "--enable", help="Re-enable instead.")) -> None:
    """Disable (or re-enable) a client: its keys stop working at once."""
    from exchange.store import StoreError

    try:
        _store().set_disabled(client_id, not enable)
    except StoreError as exc:
        _fail(exc)
    console.print(f"client {client_id} {'enabled' if enable else 'disabled'}")


@app.command("issue-client-cert")
def issue_client_cert(client_id: str = typer.Argument(..., help="Client id (onewindow admin add-client)."),
                      out: str = typer.Option(..., "--out", help="Directory for <client>.key.pem, "
                                                                  "<client>.cert.pem and hub-root.pem."),
                      days: int = typer.Option(365, min=1, max=3650, help="Validity in days.")) -> None:
    """Issue a mutual-TLS client certificate under the hub root for a client (stronger than an API key)."""
    from pathlib import Path

    from certificates.exceptions import CertificateError
    from certificates.tls import issue_client_certificate
    from exchange.api.core.tls import ClientCertRegistry

    store = _store()
    client = store.client(client_id)
    if client is None:
        _fail(ValueError(f"no client {client_id!r}: add it first (onewindow admin add-client)"))
    try:
        issued = issue_client_certificate(Layout.from_env(), client.client_id, client.department_code,
                                          client.department_name, Path(out), at=_now(),
                                          validity=dt.timedelta(days=days))
    except (CertificateError, ValueError) as exc:
        _fail(exc)
    ClientCertRegistry(store).register(issued.certificate, client.client_id, at=_now())
    console.print(f"client certificate for {client_id}: {issued.cert_path} (key {issued.key_path}, "
                  f"hub root {issued.ca_path}); sha256 {issued.fingerprint}")


@app.command("revoke-client-certs")
def revoke_client_certs(client_id: str = typer.Argument(...)) -> None:
    """Revoke every client certificate of a client (TLS still completes; the service answers 401)."""
    from exchange.api.core.tls import ClientCertRegistry

    console.print(f"revoked {ClientCertRegistry(_store()).revoke(client_id, at=_now())} certificate(s)")


@app.command("issue-server-cert")
def issue_server_cert(names: list[str] = typer.Argument(..., help="DNS names / IP addresses the hub is served under."),
                      out: str = typer.Option(..., "--out", help="Directory for server.key.pem, server.cert.pem."),
                      days: int = typer.Option(365, min=1, max=3650)) -> None:
    """Issue the service's HTTPS certificate under the hub root (set ONEWINDOW_TLS_CERT / _KEY to it)."""
    from pathlib import Path

    from certificates.exceptions import CertificateError
    from certificates.tls import issue_server_certificate

    try:
        issued = issue_server_certificate(Layout.from_env(), names, Path(out), at=_now(),
                                          validity=dt.timedelta(days=days))
    except (CertificateError, ValueError) as exc:
        _fail(exc)
    console.print(f"server certificate {issued.cert_path} (key {issued.key_path}); "
                  f"ONEWINDOW_TLS_CERT={issued.cert_path} ONEWINDOW_TLS_KEY={issued.key_path}")


@app.command("add-user")
def add_user(username: str = typer.Argument(..., help="Sign-in name for the web pages."),
             role: str = typer.Option(..., help="clerk (窗口), auditor (审计) or administrator (管理员)."),
             name: str = typer.Option("", help="Display name, e.g. 张敏."),
             client_id: Optional[str] = typer.Option(None, "--client",
                                                     help="Counter client a clerk acts through (default web-counter)."),
             ) -> None:
    """Create (or reset the password of) a web account; password from ONEWINDOW_USER_PASSWORD or a prompt."""
    import os

    from exchange.web.accounts import add_user as create
    from exchange.web.exceptions import AccountError

    password = os.environ.get("ONEWINDOW_USER_PASSWORD") or typer.prompt(
        f"password for {username}", hide_input=True, confirmation_prompt=True)
    try:
        account = create(_store(), username, password, role=role, display_name=name or None, client_id=client_id)
    except AccountError as exc:
        _fail(exc)
    console.print(f"user {account.username} ({account.role}){' acting as ' + account.client_id if account.client_id else ''}")


@app.command("grant-issue")
def grant_issue(department: str = typer.Argument(..., help="Department code (the licence types' registered issuer)."),
                licence_types: list[str] = typer.Argument(..., help="Licence type keys or codes."),
                by: str = typer.Option("admin", help="Who grants (kept with the grant).")) -> None:
    """Let a department push back-office results (POST /api/v1/results) for licence types it issues."""
    from certificates.registry import load_registry
    from exchange.results import IssueGrants
    from exchange.store import StoreError

    grants, reg = IssueGrants(_store()), load_registry()
    for value in licence_types:
        code = licence_type_code(value)
        if reg.by_code(code).issuer.code != department:
            _fail(ValueError(f"{department} is not the registered issuer of {value} "
                             f"({reg.by_code(code).issuer.code} {reg.by_code(code).issuer.name} is)"))
        try:
            grants.grant(department, code, by=by, at=_now())
        except StoreError as exc:
            _fail(exc)
        console.print(f"may issue {department} → {code}")


@app.command("revoke-issue")
def revoke_issue(department: str = typer.Argument(...), licence_types: list[str] = typer.Argument(...)) -> None:
    """Withdraw a department's issue grant for licence types."""
    from exchange.results import IssueGrants

    grants = IssueGrants(_store())
    for value in licence_types:
        code = licence_type_code(value)
        console.print(f"{'revoked' if grants.revoke(department, code) else 'no issue grant'} {department} → {code}")
