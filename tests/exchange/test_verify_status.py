"""POST /api/v1/verify takes revocation and suspension from the published signed status lists.

Real pipeline pieces: library rows, ``issue_pending`` (licences, trust, status lists),
the department data changing, ``publish_status_lists`` signing new lists; the service
then answers from those lists — the same ones ``onewindow licence verify`` caches.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from fastapi.testclient import TestClient

from tests.pipeline_helpers import query

AT = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
CHECK = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture()
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from exchange.api.deps import get_now
    from exchange.api.main import create_app
    from tests.warehouse.test_build import _library
    from warehouse.build import issue_pending

    layout = _library(tmp_path / "var", 3)
    issue_pending(layout, at=AT)
    tokens = [t for (t,) in query(layout.library, "SELECT token FROM licences ORDER BY cert_key")]
    app = create_app(layout, watch_interval=None)
    moment = {"now": CHECK}
    app.dependency_overrides[get_now] = lambda: moment["now"]
    with TestClient(app) as client:
        yield layout, tokens, client, moment


def _set_status(layout, statuses: dict[int, str], *, at: dt.datetime) -> None:
    """Change the department data (library certificates) and sign new status lists, as the pipeline does."""
    from certificates import Keyring
    from warehouse.build import publish_status_lists
    from warehouse.load import open_library

    con = open_library(layout)
    try:
        keys = [k for (k,) in con.execute("SELECT cert_key FROM certificates ORDER BY cert_key").fetchall()]
        for i, status in statuses.items():
            con.execute("UPDATE certificates SET status = ? WHERE cert_key = ?", [status, keys[i]])
        publish_status_lists(con, Keyring.load_or_create(layout, at=at), layout, at=at)
    finally:
        con.close()


def verify(client, token):
    resp = client.post("/api/v1/verify", json={"token": token})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_revoke_in_department_data_then_new_list_then_verify_says_revoked(world):
    layout, tokens, client, _ = world
    assert [verify(client, t)["outcome"] for t in tokens] == ["valid"] * 3
    _set_status(layout, {0: "07", 1: "02"}, at=AT + dt.timedelta(hours=1))
    body = verify(client, tokens[0])
    assert body["outcome"] == "revoked" and body["detail"] == "withdrawn" and "吊销" in body["reason_zh"]
    assert body["payload"]["status"] == "01"  # the signed licence still says 有效: the list decided
    assert verify(client, tokens[1])["outcome"] == "suspended"
    assert verify(client, tokens[2])["outcome"] == "valid"
    _set_status(layout, {1: "01"}, at=AT + dt.timedelta(hours=2))  # suspension lifted
    assert verify(client, tokens[1])["outcome"] == "valid"


def test_no_snapshot_status_is_used(world):
    """The service has no snapshot at all here; the status still comes (from the lists)."""
    layout, tokens, client, _ = world
    assert client.get("/healthz").status_code == 503  # no snapshot published
    _set_status(layout, {2: "03"}, at=AT + dt.timedelta(hours=1))
    assert verify(client, tokens[2])["outcome"] == "revoked"


def test_status_unavailable_when_the_list_is_missing_expired_or_tampered(world):
    layout, tokens, client, moment = world
    status = layout.root / "status"
    [path] = list(status.glob("*.jws"))
    moment["now"] = CHECK + dt.timedelta(days=5)  # lists are valid for 2 days
    body = verify(client, tokens[0])
    assert body["outcome"] == "status_unavailable" and "validity window" in body["detail"]
    moment["now"] = CHECK
    assert verify(client, tokens[0])["outcome"] == "valid"
    saved = path.read_text()
    i = len(saved) // 2
    path.write_text(saved[:i] + ("A" if saved[i] != "A" else "B") + saved[i + 1:])
    body = verify(client, tokens[0])
    assert body["outcome"] == "status_unavailable" and "not cached" in body["detail"]
    shutil.move(path, layout.root / "moved.jws")
    assert verify(client, tokens[0])["outcome"] == "status_unavailable"
    shutil.move(layout.root / "moved.jws", path)
    path.write_text(saved)
    assert verify(client, tokens[0])["outcome"] == "valid"


def test_a_use_copy_is_verified_through_the_same_path(world):
    from certificates.pki import hub_service_key
    from certificates.usecopy import make_use_copy
    from warehouse.build import issue_pending  # noqa: F401 (the fixture ran it)

    layout, tokens, client, moment = world
    [(licence_id,)] = query(layout.library, "SELECT licence_id FROM licences WHERE token = ?", [tokens[0]])
    copy = make_use_copy(hub_service_key(layout, at=AT), licence_id=licence_id, licence_token=tokens[0],
                         purpose={"item": "000120003000", "case": "K-9", "clerk": "c-1"},
                         requester={"client_id": "sys-x", "department": "11330100002496126K"},
                         at=CHECK - dt.timedelta(hours=1), ttl=dt.timedelta(hours=72), log_seq=3)["token"]
    body = verify(client, copy)
    assert body["outcome"] == "valid" and body["use_copy"]["purpose"]["case"] == "K-9"
    assert body["licence_id"] == licence_id
    _set_status(layout, {0: "07"}, at=AT + dt.timedelta(hours=1))
    assert verify(client, copy)["outcome"] == "revoked"
    moment["now"] = CHECK + dt.timedelta(hours=80)
    assert verify(client, copy)["outcome"] == "use_copy_expired"
