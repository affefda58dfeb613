"""``onewindow admin``: grants are data edited by a command; keys printed once, stored hashed."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from typer.testing import CliRunner

from certificates.registry import load_registry
from exchange.cli import app
from exchange.store import open_store

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL


def test_admin_commands_edit_access_data(layout, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(layout.root))
    run = CliRunner().invoke
    assert run(app, ["admin", "add-department", "11330100002496476R", "杭州市民政局"]).exit_code == 0
    out = run(app, ["admin", "add-client", "mz-1", "--department", "11330100002496476R", "--counter"])
    assert out.exit_code == 0, out.output
    key = out.output.strip().splitlines()[-1]
    assert key.startswith("ow_")
    assert run(app, ["admin", "add-client", "mz-1", "--department", "11330100002496476R"]).exit_code == 1
    assert run(app, ["admin", "add-client", "x", "--department", "nope"]).exit_code == 1
    out = run(app, ["admin", "grant", "11330100002496476R", "marriage", "11100000000013338W001"])
    assert out.exit_code == 0, out.output
    assert run(app, ["admin", "grant", "11330100002496476R", "spaceship"]).exit_code != 0
    store = open_store(layout)
    reg = load_registry()
    assert store.grants_of("11330100002496476R") == {reg.licence_type("marriage").code, "11100000000013338W001"}
    client = store.authenticate(key)
    assert client is not None and client.roles == ("counter",)
    assert run(app, ["admin", "revoke", "11330100002496476R", "id_card"]).exit_code == 0
    # another process's write reaches this store's cache within GENERATION_CHECK_S (module doc)
    time.sleep(store.GENERATION_CHECK_S * 2)
    assert store.grants_of("11330100002496476R") == {reg.licence_type("marriage").code}
    listing = run(app, ["admin", "list"])
    assert "mz-1" in listing.output and reg.licence_type("marriage").code in listing.output
    code = run(app, ["admin", "issue-code", "330106198506150038", "--ttl-minutes", "5"]).output.strip()
    assert len(code) == 11 and code[5] == "-"
    store.redeem_code(code, "330106198506150038", case_number="K1", item_code="000173010000", clerk_id="c",
                      client_id="mz-1", at=dt.datetime.now(dt.timezone(dt.timedelta(hours=8))))
    assert store.application("K1").basis == "code"
    assert run(app, ["admin", "disable-client", "mz-1"]).exit_code == 0
    assert store.authenticate(key) is None
    assert run(app, ["admin", "revoke-keys", "mz-1"]).exit_code == 0
    assert run(app, ["admin", "disable-client", "mz-1", "--enable"]).exit_code == 0
    assert store.authenticate(key) is None  # revoked
    new_key = run(app, ["admin", "issue-key", "mz-1"]).output.strip()
    assert store.authenticate(new_key).client_id == "mz-1"
