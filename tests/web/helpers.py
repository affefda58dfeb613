"""Helpers for tests outside tests/web that call pages behind a sign-in (e.g. /quality)."""

from __future__ import annotations

import re
from typing import Any

from exchange.web import accounts


def sign_in_as_auditor(client: Any, username: str = "test-auditor", password: str = "test auditor password") -> None:
    """Create an auditor account in the app's store and sign ``client`` (a TestClient) in with it."""
    accounts.add_user(client.app.state.service_store, username, password, role="auditor")
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"csrf": token, "username": username, "password": password},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
