"""Counter rules without a browser: CSRF, case ownership, accounts without a counter client, upload limits."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from exchange.api.deps import get_now
from exchange.api.main import create_app
from exchange.web import accounts
from tests.exchange.test_api import NOW, RESTAURANT, keyring, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture()
def app(world, layout):
    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: NOW
    with TestClient(app):
        store = app.state.service_store
        accounts.ensure_counter_client(store)
        store.add_client("other-counter", "frontdesk", "另一窗口", ["counter"])
        accounts.add_user(store, "c1", "first clerk pass", role="clerk")
        accounts.add_user(store, "c2", "second clerk pass", role="clerk", client_id="other-counter")
        accounts.add_user(store, "root", "administrator pass", role="administrator")
        yield app


def _signed_in(app, user: str, password: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    token = _csrf(client.get("/login").text)
    r = client.post("/login", data={"csrf": token, "username": user, "password": password})
    assert r.status_code == 200, r.text
    return client, _csrf(r.text)


def _open(client: TestClient, token: str, world) -> str:
    r = client.post("/counter", data={"csrf": token, "code": world["co"]["subject_code"],
                                      "agent": world["rep"]["subject_code"], "items": [RESTAURANT], "action": "open"})
    assert "/counter/cases/" in str(r.url), r.text
    return str(r.url).rsplit("/", 1)[-1]


def test_posts_without_the_csrf_token_are_refused(app, world):
    client, token = _signed_in(app, "c1", "first clerk pass")
    before = len(app.state.service_store.log_records())
    r = client.post("/counter", data={"code": world["co"]["subject_code"], "items": [RESTAURANT], "action": "open"})
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post("/counter", data={"csrf": token + "x", "code": world["co"]["subject_code"],
                                      "items": [RESTAURANT], "action": "open"})
    assert r.status_code == 403
    assert len(app.state.service_store.log_records()) == before  # nothing was read or recorded


def test_a_case_belongs_to_its_counter(app, world):
    c1, t1 = _signed_in(app, "c1", "first clerk pass")
    case = _open(c1, t1, world)
    c2, t2 = _signed_in(app, "c2", "second clerk pass")
    r = c2.get(f"/counter/cases/{case}")
    assert r.status_code == 403 and "不属于本窗口" in r.text
    assert c2.post(f"/counter/cases/{case}/accept", data={"csrf": t2}).status_code == 403
    assert c2.get(f"/counter/cases/{case}/receipt").status_code == 403
    r = c1.get("/counter/cases/NOPE-1")
    assert r.status_code == 404 and "请核对办件编号" in r.text


def test_an_account_without_a_counter_client_is_told_why(app, world):
    root, token = _signed_in(app, "root", "administrator pass")
    r = root.post("/counter", data={"csrf": token, "code": world["co"]["subject_code"], "items": [RESTAURANT],
                                    "action": "open"})
    assert r.status_code == 403 and "未关联可用的窗口客户端" in r.text
    app.state.service_store.set_disabled("web-counter", True)
    c1, t1 = _signed_in(app, "c1", "first clerk pass")
    r = c1.post("/counter", data={"csrf": t1, "code": world["co"]["subject_code"], "items": [RESTAURANT],
                                  "action": "open"})
    assert r.status_code == 403 and "web-counter" in r.text


def test_upload_limits_say_what_to_fix(app, world):
    client, token = _signed_in(app, "c1", "first clerk pass")
    case = _open(client, token, world)
    big = b"%PDF-" + b"0" * (10 * 1024 * 1024)
    r = client.post(f"/counter/cases/{case}/materials", data={"csrf": token, "material_type": "premises_proof"},
                    files={"file": ("big.pdf", big, "application/pdf")})
    assert r.status_code == 413 and "上限" in r.text and "请换用符合要求的文件" in r.text
    r = client.post(f"/counter/cases/{case}/materials", data={"csrf": token, "material_type": "premises_proof"},
                    files={"file": ("fake.pdf", b"GIF89a not a pdf", "application/pdf")})
    assert r.status_code == 415 and "文件内容不是声明的" in r.text
    r = client.post(f"/counter/cases/{case}/materials", data={"csrf": token, "material_type": "premises_proof"})
    assert r.status_code == 422 and "请先选择要上传的材料文件" in r.text
    denied = [r for r in app.state.service_store.log_records() if '"submit_material"' in r.record
              and '"denied"' in r.record]
    assert len(denied) == 2  # refused uploads are in the usage log with their rule
    same = b"%PDF-1.4 the same lease"
    for _ in range(2):
        r = client.post(f"/counter/cases/{case}/materials", data={"csrf": token, "material_type": "premises_proof"},
                        files={"file": ("lease.pdf", same, "application/pdf")})
        assert r.status_code == 201
    assert "已有同一文件" in r.text and app.state.service_store.material_blob_count() == 1
