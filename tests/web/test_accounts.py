"""Web accounts: scrypt hashes with per-user salt, roles, the admin command, the /quality guard."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.store import open_store
from exchange.web import accounts
from exchange.web.exceptions import AccountError, SignInRefused

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL


def test_passwords_are_salted_scrypt_and_checked(layout):
    store = open_store(layout)
    accounts.ensure_counter_client(store)
    accounts.add_user(store, "a1", "correct horse", role="auditor")
    accounts.add_user(store, "a2", "correct horse", role="auditor")
    r1, r2 = store.account("a1"), store.account("a2")
    assert r1["salt"] != r2["salt"] and r1["digest"] != r2["digest"]  # per-user salt
    assert b"correct horse" not in r1["digest"] and len(r1["digest"]) == 32
    assert accounts.authenticate(store, "a1", "correct horse").role == "auditor"
    with pytest.raises(SignInRefused):
        accounts.authenticate(store, "a1", "correct horsE")
    with pytest.raises(SignInRefused):
        accounts.authenticate(store, "nobody", "correct horse")
    with pytest.raises(AccountError, match="at least"):
        accounts.add_user(store, "a3", "short", role="auditor")
    with pytest.raises(AccountError, match="role"):
        accounts.add_user(store, "a3", "long enough pw", role="janitor")
    with pytest.raises(AccountError, match="counter client"):
        accounts.add_user(store, "c1", "long enough pw", role="clerk", client_id="missing")


def test_admin_add_user_reads_password_from_env(layout, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(layout.root))
    monkeypatch.setenv("ONEWINDOW_USER_PASSWORD", "a long secret 1")
    run = CliRunner().invoke
    out = run(app, ["admin", "add-user", "zhang", "--role", "clerk"])
    assert out.exit_code == 1 and "web-counter" in out.output  # no counter client yet: says how to fix
    accounts.ensure_counter_client(open_store(layout))
    out = run(app, ["admin", "add-user", "zhang", "--role", "clerk", "--name", "张敏"])
    assert out.exit_code == 0, out.output
    assert accounts.authenticate(open_store(layout), "zhang", "a long secret 1").display_name == "张敏"
    assert run(app, ["admin", "add-user", "li", "--role", "boss"]).exit_code == 1


def test_demo_accounts_have_fresh_passwords(layout):
    store = open_store(layout)
    made = accounts.create_demo_accounts(store)
    assert {(u, r) for u, r, _ in made} == {("clerk", "clerk"), ("auditor", "auditor")}
    for user, role, password in made:
        assert accounts.authenticate(store, user, password).role == role
    assert accounts.create_demo_accounts(store)[0][2] != made[0][2]


def test_quality_needs_an_auditor_session(layout):
    from fastapi.testclient import TestClient

    from exchange.api.main import create_app

    app = create_app(layout, watch_interval=None)
    with TestClient(app) as client:
        store = app.state.service_store
        accounts.ensure_counter_client(store)
        accounts.add_user(store, "aud", "auditor pass 1", role="auditor")
        accounts.add_user(store, "clk", "clerk pass 12", role="clerk")
        r = client.get("/quality", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fquality"
        assert "ow_session" not in client.get("/api/v1/items").headers.get("set-cookie", "")

        def sign_in(user: str, password: str):
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
            return client.post("/login", data={"csrf": token, "username": user, "password": password},
                               follow_redirects=False)

        r = client.post("/login", data={"username": "aud", "password": "auditor pass 1"})
        assert r.status_code == 403 and "CSRF" in r.text  # no token, no sign-in
        r = sign_in("clk", "clerk pass 12")
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert client.get("/quality", follow_redirects=False).status_code == 303  # a clerk is not an auditor
        assert client.get("/audit").status_code == 403
        client.cookies.clear()
        assert sign_in("aud", "auditor pass 1").headers["location"] == "/audit"
        r = client.get("/quality", follow_redirects=False)
        assert r.status_code != 303  # passes the guard (the route itself answers: 503 without a snapshot)
        assert client.get("/audit").status_code == 200
        accounts.add_user(store, "aud", "auditor pass 1", role="clerk")  # role changed by an administrator
        assert client.get("/quality", follow_redirects=False).status_code == 303
        assert client.get("/audit", follow_redirects=False).headers["location"].startswith("/login")
        assert all(not p.startswith(("/counter", "/audit", "/login")) for p in client.get("/openapi.json").json()["paths"])


def test_store_log_search_filters_in_sql(layout):
    import datetime as dt

    store = open_store(layout)
    at = dt.datetime(2026, 11, 20, 9, 0)
    for i, (dept, item, decision, holder) in enumerate((("D1", "000120003000", "granted", "330106********0038"),
                                                         ("D2", "000173010000", "denied", "330106********0038"),
                                                         ("D1", "000173010000", "granted", "913301********035J"))):
        store.append_log({"department": dept, "purpose": {"item": item, "case": f"K{i}", "clerk": "c"},
                          "decision": decision, "holder_masked": holder, "action": "x", "rule": "ok"},
                         at=at + dt.timedelta(days=i))
    cases = lambda rs: [json.loads(r.record)["purpose"]["case"] for r in rs]  # noqa: E731
    assert cases(store.search_log()) == ["K2", "K1", "K0"]
    assert cases(store.search_log(department="D1")) == ["K2", "K0"]
    assert cases(store.search_log(item="0001730")) == ["K2", "K1"]
    assert cases(store.search_log(decision="denied", holder_masked="330106********0038")) == ["K1"]
    assert cases(store.search_log(day_from="2026-11-21", day_to="2026-11-21")) == ["K1"]
    assert cases(store.search_log(limit=1)) == ["K2"]


def test_sign_in_returns_only_to_local_paths():
    from exchange.web.routes.auth import safe_next

    assert safe_next("/audit/log") == "/audit/log" and safe_next("/quality?x=1") == "/quality?x=1"
    for bad in ("//evil.example/", "/\\evil.example/", "https://evil.example/", "javascript:alert(1)",
                "/a\\b", "/a\nb", ""):
        assert safe_next(bad) == "", bad


def test_sign_in_throttle_after_repeated_failures():
    throttle = accounts.SignInThrottle(limit=3, window=60)
    for t in (0, 1, 2):
        assert throttle.wait_seconds("Zhang", t) == 0
        throttle.failed("zhang", t)
    assert throttle.wait_seconds("zhang", 3) == 58  # until the first failure leaves the window
    assert throttle.wait_seconds("li", 3) == 0
    assert throttle.wait_seconds("zhang", 61) == 0  # one failure left the window
    throttle.failed("zhang", 61)
    throttle.succeeded("zhang")
    assert throttle.wait_seconds("zhang", 62) == 0


def test_sign_in_page_refuses_after_five_failures(layout):
    from fastapi.testclient import TestClient

    from exchange.api.main import create_app
    from exchange.web.routes.auth import THROTTLE

    app = create_app(layout, watch_interval=None)
    with TestClient(app) as client:
        accounts.add_user(app.state.service_store, "guessme", "the real password", role="auditor")
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)

        def attempt(password: str):
            return client.post("/login", data={"csrf": token, "username": "guessme", "password": password},
                               follow_redirects=False)

        try:
            for i in range(5):
                assert "用户名或密码不正确" in attempt(f"guess {i}").text
            r = attempt("the real password")
            assert r.status_code == 401 and "次数过多" in r.text and "分钟后再试" in r.text
        finally:
            THROTTLE.succeeded("guessme")
        assert attempt("the real password").status_code == 303
