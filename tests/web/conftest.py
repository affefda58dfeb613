"""Browser tests: the real service on a loopback ephemeral port, driven by headless Chromium (Playwright).

Screenshots of every page go to ``$ONEWINDOW_ARTIFACTS/screenshots`` (default
``tests/artifacts/screenshots``, git-ignored).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange.api.deps import get_now
from exchange.api.main import create_app
from exchange.web import accounts
from tests.exchange.test_api import NOW, keyring, world  # noqa: F401 (fixtures)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 768}
CLERK = ("clerk01", "窗口测试密码-2026-a")
AUDITOR = ("audit01", "审计测试密码-2026-b")


def artifacts_dir() -> Path:
    base = os.environ.get("ONEWINDOW_ARTIFACTS")
    path = Path(base) / "screenshots" if base else Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artefact and check the page fits 1366 px wide."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: page is {overflow} px wider than the 1366 px window"
    return path


def add_quality_history(layout: Any) -> None:
    """quality_runs rows (with the status column the report reads) in the current snapshot."""
    import duckdb

    path = layout.snapshots / layout.current_snapshot_pointer.read_text().strip()
    con = duckdb.connect(str(path))
    try:
        con.execute("ALTER TABLE quality_runs ADD COLUMN status VARCHAR")
        for run, source, interval, rows, passed, quarantined in (
                ("run-1", "gongan_population", "2026-11-18", 1000, 990, 10),
                ("run-2", "gongan_population", "2026-11-19", 1000, 998, 2),
                ("run-3", "scjg_enterprises", "2026-11-19", 400, 380, 20)):
            con.execute("INSERT INTO quality_runs (run_id, source_id, dataset, interval, rows, passed, quarantined, "
                        "flagged, per_rule, gx_success, status, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, true, ?, ?)",
                        [run, source, "persons" if source.startswith("gongan") else "enterprises", interval,
                         rows, passed, quarantined, json.dumps({"id_check_char": quarantined}),
                         "merged", dt.datetime.fromisoformat(interval) + dt.timedelta(hours=16)])  # CST midnight, in UTC
    finally:
        con.close()


class Hub:
    def __init__(self, app: Any, url: str) -> None:
        self.app, self.url = app, url

    @property
    def store(self) -> Any:
        return self.app.state.service_store


@pytest.fixture()
def hub(world, layout) -> Iterator[Hub]:
    """The service on 127.0.0.1:<ephemeral> with a demo-like front desk, a clerk and an auditor."""
    import uvicorn

    add_quality_history(layout)
    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: NOW
    store = app.state.service_store
    accounts.ensure_counter_client(store)
    accounts.add_user(store, CLERK[0], CLERK[1], role="clerk", display_name="张敏")
    accounts.add_user(store, AUDITOR[0], AUDITOR[1], role="auditor", display_name="李审计")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Hub(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make system-deps` installs Debian chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def new_page(browser: Any, *, javascript: bool = True) -> Any:
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=javascript, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def sign_in(page: Any, hub: Hub, user: tuple[str, str]) -> None:
    page.goto(f"{hub.url}/login")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("main button[type=submit]")  # not the header's sign-out button when already signed in


def text_of(page: Any, selector: str) -> str:
    return re.sub(r"\s+", " ", page.inner_text(selector))
