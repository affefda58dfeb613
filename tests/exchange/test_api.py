"""The HTTP service against snapshots built by the factories, with real signed licences."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import socket
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from exchange.api.deps import CST, get_now
from exchange.api.main import create_app
from quality.standards import make_ric, mask_identifier
from tests.exchange.factories import (make_certificate, make_client, make_company, make_licence,
                                      make_person, make_snapshot, publish_status_lists, purpose_headers,
                                      write_pointer)
from warehouse.datadir import Layout

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=CST)
RESTAURANT, PROPERTY = "000120003000", "000173010000"


@pytest.fixture(scope="module")
def keyring(tmp_path_factory):
    from certificates import Keyring

    return Keyring.load_or_create(Layout(tmp_path_factory.mktemp("pki")).ensure(),
                                  at=dt.datetime(2026, 1, 1))


@pytest.fixture()
def world(layout, keyring):
    """A person and a restaurant company on file, trust published, one snapshot current."""
    from certificates import publish_trust

    publish_trust(keyring, layout.trust)
    person = make_person(name="王晓明")
    rep = make_person(name="李四", sex="女")
    co = make_company(name="杭州味道餐饮有限公司", legal_rep_code=rep["subject_code"])
    certs = {
        "id_card": make_certificate("id_card", person, valid_until=dt.date(2040, 3, 1)),
        "hukou": make_certificate("hukou", person),
        "marriage": make_certificate("marriage", person, holder_name="王小明"),
        "rep_id": make_certificate("id_card", rep, valid_until=dt.date(2036, 1, 1)),
        "business": make_certificate("business_licence", co),
        "food": make_certificate("food_licence", co, issue_date=dt.date(2024, 1, 10),
                                 valid_until=dt.date(2029, 1, 9)),
        "property": make_certificate("property", person, status="03"),
    }
    lic = {k: make_licence(c, keyring, with_status=True) for k, c in certs.items()}
    make_snapshot(layout, subjects=[person, rep, co], certificates=certs.values(),
                  licences=lic.values(), snapshot_id="snap-1")
    publish_status_lists(layout, keyring, certs.values(), at=NOW - dt.timedelta(hours=1))
    return {"person": person, "rep": rep, "co": co, "certs": certs, "lic": lic}


@pytest.fixture()
def client(layout):
    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: NOW
    with TestClient(app) as c:
        c.api_key = make_client(app.state.service_store)  # a counter client granted every type
        yield c


def as_case(client, holder_code: str) -> dict[str, str]:
    """Headers of a read in a case accepted at the counter for ``holder_code``."""
    case = f"HZ-{holder_code}"
    client.app.state.service_store.accept_application(case, RESTAURANT, holder_code, "clerk-007", "test",
                                                      at=NOW)
    return purpose_headers(client.api_key, case=case)


def assert_error(resp, status, code):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


# ----------------------------------------------------------------------------- no snapshot
def test_503_before_any_snapshot(client):
    err = assert_error(client.get("/healthz"), 503, "no_snapshot")
    assert "pipeline" in err["message"] and "数据管道" in err["message"]
    code = make_ric('330106', dt.date(1990, 1, 1), 11)
    assert_error(client.get(f"/api/v1/subjects/{code}/certificates", headers=as_case(client, code)),
                 503, "no_snapshot")
    assert_error(client.post("/api/v1/once-only", json={
        "applicant": {"code": "11010519491231002X", "code_type": "111"}, "items": [PROPERTY]}),
        503, "no_snapshot")
    assert client.get("/api/v1/items").status_code == 200  # the catalogue needs no snapshot
    page = client.get("/")
    assert page.status_code == 200 and "尚无可用的证照库快照" in page.text


def test_unreadable_snapshot_keeps_503_with_reason(layout, client):
    (layout.snapshots / "broken.duckdb").write_bytes(b"not a database")
    write_pointer(layout, "broken.duckdb")
    err = assert_error(client.get("/healthz"), 503, "no_snapshot")
    assert "broken.duckdb" in err["message"]


# ----------------------------------------------------------------------------- health, docs
def test_healthz_and_landing(world, client):
    body = client.get("/healthz").json()
    assert body["snapshot_id"] == "snap-1" and body["built_at"].startswith("2026-11-01")
    assert body["counts"] == {"subjects": 3, "certificates": 7, "licences": 7}
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "/docs" in page.text and "/api/v1/items" in page.text and "/certificates" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no external assets


def test_every_route_has_summary_and_documented_errors(client):
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary") and not op["summary"].startswith(method.title()), (method, path)
    assert "404" in spec["paths"]["/api/v1/licences/{licence_id}"]["get"]["responses"]


def test_unknown_route_and_bad_body_use_error_envelope(world, client):
    assert_error(client.get("/api/v1/nothing"), 404, "not_found")
    err = assert_error(client.post("/api/v1/verify", json={}), 422, "invalid_request")
    assert "token" in err["message"]


# ----------------------------------------------------------------------------- subjects
def test_lookup_person(world, client):
    code = world["person"]["subject_code"]
    body = client.get(f"/api/v1/subjects/{code}/certificates", headers=as_case(client, code)).json()
    assert body["snapshot_id"] == "snap-1"
    assert body["holder"] == {"code": code, "code_type": "111", "name": "王晓明", "kind": "person",
                              "source_id": "gongan_population", "in_subject_register": True}
    by_type = {c["licence_type"]["name"]: c for c in body["certificates"]}
    assert set(by_type) == {"居民身份证", "居民户口簿", "结婚证", "不动产权证书"}
    idc = by_type["居民身份证"]
    assert idc["licence_id"] == world["lic"]["id_card"]["licence_id"]
    assert idc["issuer"] == {"code": "11330100002496126K", "name": "杭州市公安局"}
    assert idc["valid_until"] == "2040-03-01" and idc["status"] == {"code": "01", "name": "有效"}
    assert by_type["居民户口簿"]["valid_until"] is None
    assert by_type["不动产权证书"]["status"] == {"code": "03", "name": "撤销"}


def test_lookup_company_and_lowercase(world, client):
    code = world["co"]["subject_code"]
    body = client.get(f"/api/v1/subjects/{code.lower()}/certificates", headers=as_case(client, code)).json()
    assert body["holder"]["code_type"] == "001"
    assert {c["licence_type"]["name"] for c in body["certificates"]} == {"营业执照", "食品经营许可证"}


def test_lookup_not_found(world, client):
    code = make_ric("330106", dt.date(1970, 2, 2), 123)
    err = assert_error(client.get(f"/api/v1/subjects/{code}/certificates", headers=as_case(client, code)),
                       404, "subject_not_found")
    assert code not in err["message"]  # masked


def test_lookup_bad_check_character(world, client):
    good = world["person"]["subject_code"]
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    err = assert_error(client.get(f"/api/v1/subjects/{bad}/certificates"), 422, "invalid_identifier")
    assert "校验码" in err["message"] and "check character" in err["message"]
    assert err["detail"] == {"code_type": "111", "position": 18, "found": bad[17], "expected": good[17]}
    assert f"应为“{good[17]}”" in err["message"]


def test_credit_code_with_bad_check_char(world, client):
    good = world["co"]["subject_code"]
    bad = good[:17] + next(c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != good[17])
    err = assert_error(client.get(f"/api/v1/subjects/{bad}/certificates?code_type=001",
                                  headers=as_case(client, bad)), 422, "invalid_identifier")
    assert "统一社会信用代码" in err["message"] and err["detail"]["expected"] == good[17]


def test_garbage_code(world, client):
    assert_error(client.get("/api/v1/subjects/ABC/certificates"), 422, "invalid_identifier")


# ----------------------------------------------------------------------------- licences
def test_fetch_licence(world, client):
    lic = world["lic"]["food"]
    body = client.get(f"/api/v1/licences/{lic['licence_id']}",
                      headers=as_case(client, world["co"]["subject_code"])).json()
    assert body["token"] == lic["token"] and body["token"].count(".") == 2
    assert body["payload"]["licence_id"] == lic["licence_id"]
    assert body["payload"]["holder"]["code"] == world["co"]["subject_code"]
    assert body["status"] == "01" and body["superseded"] is False
    assert_error(client.get("/api/v1/licences/1.2.156.3005.2.nope", headers=purpose_headers(client.api_key)),
                 404, "licence_not_found")


def test_verify_valid(world, client):
    lic = world["lic"]["id_card"]
    body = client.post("/api/v1/verify", json={"token": lic["token"]}).json()
    assert body["outcome"] == "valid" and body["valid"] is True
    assert body["licence_id"] == lic["licence_id"] and body["issuer"] == "11330100002496126K"
    assert body["reason_zh"] and body["payload"]["holder"]["name"] == "王晓明"
    assert body["issuer_name"] == "杭州市公安局"
    assert body["checked_at"].startswith("2026-11-20T10:00")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_verify_tampered(world, client):
    from certificates import canonical_json

    header, payload, sig = world["lic"]["id_card"]["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["holder"]["name"] = "冒名顶替"
    forged = f"{header}.{_b64(canonical_json(claims))}.{sig}"
    body = client.post("/api/v1/verify", json={"token": forged}).json()
    assert body["outcome"] == "tampered" and body["valid"] is False and "篡改" in body["reason_zh"]


def test_verify_answers_revoked_from_the_published_status_list(world, client):
    # The property certificate is 03 (撤销); its published status list entry says so
    # (tests/exchange/test_verify_status.py: the list, not the snapshot, decides).
    lic = world["lic"]["property"]
    body = client.post("/api/v1/verify", json={"token": lic["token"]}).json()
    assert body["outcome"] == "revoked" and body["licence_id"] == lic["licence_id"]


def test_verify_without_trust_bundle(world, layout, client):
    (layout.trust / "bundle.pem").unlink()
    assert_error(client.post("/api/v1/verify", json={"token": "a.b.c"}), 503, "trust_unavailable")


# ----------------------------------------------------------------------------- items
def test_items_list_search_and_detail(client):
    all_items = client.get("/api/v1/items").json()
    assert all_items["total"] >= 4
    names = {i["name"] for i in all_items["items"]}
    assert {"开办餐饮店", "不动产转移登记", "新生儿出生一件事", "居民身份证换领"} <= names
    found = client.get("/api/v1/items", params={"q": "食品经营"}).json()
    assert [i["name"] for i in found["items"]] == ["开办餐饮店"]
    item = client.get(f"/api/v1/items/{RESTAURANT}").json()
    assert item["impl_code"].startswith(item["agency"]["code"])
    first = item["materials"][0]
    assert first["satisfied_by"] == "营业执照 且 食品经营许可证"
    assert first["satisfied_by_expr"] == "all(business_licence,food_licence)"
    assert [t["code"] for t in first["licence_types"]] == ["11100000000013418G001", "11100000000013418G002"]
    assert client.get(f"/api/v1/items/{item['impl_code']}").json()["code"] == RESTAURANT
    assert_error(client.get("/api/v1/items/000"), 404, "item_not_found")


# ----------------------------------------------------------------------------- once-only
def test_once_only_restaurant(world, client):
    co, rep = world["co"], world["rep"]
    body = client.post("/api/v1/once-only", json={
        "applicant": {"code": co["subject_code"], "code_type": "001", "agent_code": rep["subject_code"]},
        "items": [RESTAURANT]}, headers=as_case(client, co["subject_code"])).json()
    lines = {r["serves"][0]["material_key"]: r for r in body["requirements"]}
    assert lines["licences"]["status"] == "on_file"
    assert {u["licence_id"] for u in lines["licences"]["on_file"]} == {
        world["lic"]["business"]["licence_id"], world["lic"]["food"]["licence_id"]}
    food = next(u for u in lines["licences"]["on_file"] if u["licence_type"] == "食品经营许可证")
    assert food["issuing_department"] == "杭州市市场监督管理局" and food["valid_until"] == "2029-01-09"
    assert lines["premises"]["status"] == "must_submit"
    assert lines["agent_id"]["status"] == "on_file"
    assert body["on_file_count"] == 2 and body["must_submit_count"] == 1
    assert body["at"].startswith("2026-11-20T10:00")


def test_once_only_dedup_cross_check_and_revoked(world, client):
    person = world["person"]
    body = client.post("/api/v1/once-only", json={
        "applicant": {"code": person["subject_code"], "code_type": "111"},
        "items": [PROPERTY, "000141020000"]}, headers=as_case(client, person["subject_code"])).json()
    id_lines = [r for r in body["requirements"]
                if world["lic"]["id_card"]["licence_id"] in {u["licence_id"] for u in r["on_file"]}]
    assert len(id_lines) == 1 and len(id_lines[0]["serves"]) == 2
    [prop] = [r for r in body["requirements"] if r["licence_types"] == ["property"]]
    assert prop["status"] == "must_submit"
    assert prop["not_counted"][0]["reason_code"] == "status_not_valid"
    [finding] = body["findings"]
    assert finding["field"] == "name"
    assert {(v["department"], v["value"]) for v in finding["values"]} >= {
        ("杭州市公安局", "王晓明"), ("杭州市民政局", "王小明")}
    assert person["subject_code"] not in json.dumps(finding, ensure_ascii=False)  # masked


def test_once_only_rejects_bad_input(world, client):
    person = world["person"]
    bad = person["subject_code"][:17] + ("0" if person["subject_code"][17] != "0" else "1")
    assert_error(client.post("/api/v1/once-only", json={
        "applicant": {"code": bad, "code_type": "111"}, "items": [PROPERTY]}), 422, "invalid_identifier")
    assert_error(client.post("/api/v1/once-only", json={
        "applicant": {"code": person["subject_code"], "code_type": "111"}, "items": ["nope"]},
        headers=as_case(client, person["subject_code"])), 404, "item_not_found")
    assert_error(client.post("/api/v1/once-only", json={
        "applicant": {"code": person["subject_code"], "code_type": "999"}, "items": [PROPERTY]}),
        422, "invalid_request")


# ----------------------------------------------------------------------------- snapshot swap
def test_snapshot_swap_without_restart(world, layout, keyring, client):
    code = world["person"]["subject_code"]
    headers = as_case(client, code)
    assert len(client.get(f"/api/v1/subjects/{code}/certificates", headers=headers).json()["certificates"]) == 4
    store = client.app.state.snapshots
    old = store.current
    with store.lease():  # an in-flight request on the old snapshot
        ssc = make_certificate("social_security_card", world["person"], valid_until=dt.date(2034, 1, 1))
        certs = [*world["certs"].values(), ssc]
        lic = [*world["lic"].values(), make_licence(ssc, keyring)]
        make_snapshot(layout, subjects=[world["person"], world["rep"], world["co"]],
                      certificates=certs, licences=lic, snapshot_id="snap-2")
        assert client.get("/healthz").json()["snapshot_id"] == "snap-2"
        body = client.get(f"/api/v1/subjects/{code}/certificates", headers=headers).json()
        assert body["snapshot_id"] == "snap-2" and len(body["certificates"]) == 5
        assert not old.closed, "the old snapshot stays open while a request still uses it"
    assert old.closed
    # A broken publish leaves the last good snapshot serving.
    (layout.snapshots / "bad.duckdb").write_bytes(b"garbage")
    write_pointer(layout, "bad.duckdb")
    assert client.get("/healthz").json()["snapshot_id"] == "snap-2"
    assert "bad.duckdb" in store.last_error


def test_background_watcher_swaps(world, layout):
    app = create_app(layout, watch_interval=0.05)
    with TestClient(app):
        store = app.state.snapshots
        assert store.current.snapshot_id == "snap-1"
        make_snapshot(layout, subjects=[world["person"]], snapshot_id="snap-bg")
        deadline = time.monotonic() + 5
        while store.current.snapshot_id != "snap-bg" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.current.snapshot_id == "snap-bg"


def test_swaps_under_concurrent_requests(world, layout, keyring):
    """Readers never fail while snapshots are swapped, and every retired one is closed."""
    app = create_app(layout, watch_interval=None)
    code = world["person"]["subject_code"]
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()
    with TestClient(app):
        store = app.state.snapshots
        opened = [store.current]

        def reader() -> None:
            while not stop.is_set():
                try:
                    with store.lease() as snap:
                        assert snap.index.certificates_of(code)
                        seen.add(snap.snapshot_id)
                        assert not snap.closed
                except BaseException as exc:  # collected and re-raised in the test thread
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=reader) for _ in range(6)]
        for t in threads:
            t.start()
        for n in range(5):
            make_snapshot(layout, subjects=[world["person"]], certificates=world["certs"].values(),
                          licences=world["lic"].values(), snapshot_id=f"snap-c{n}")
            store.refresh(wait=True)
            opened.append(store.current)
            time.sleep(0.02)
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        assert len(seen) >= 2
        assert all(s.closed for s in opened[:-1]) and not opened[-1].closed


def test_settings_from_env(tmp_path):
    from exchange.api.core.config import ConfigError, Settings

    s = Settings.from_env({"ONEWINDOW_DATA_DIR": str(tmp_path), "ONEWINDOW_PORT": "8123",
                           "ONEWINDOW_HOST": "0.0.0.0", "ONEWINDOW_ENV": "Development"})
    assert (s.data_dir, s.port, s.host, s.env) == (tmp_path.resolve(), 8123, "0.0.0.0", "development")
    assert s.layout.root == tmp_path.resolve()
    assert Settings.from_env({}).env == "production"  # only an explicit development relaxes anything
    with pytest.raises(ConfigError, match="ONEWINDOW_PORT"):
        Settings.from_env({"ONEWINDOW_PORT": "http"})
    with pytest.raises(ConfigError, match="ONEWINDOW_ENV"):
        Settings.from_env({"ONEWINDOW_ENV": "staging"})


# ----------------------------------------------------------------------------- real server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.service
def test_real_server_over_http(world, layout, keyring):
    import uvicorn

    # real clock here: status lists valid now (verify reads them, as the offline verifier does)
    publish_status_lists(layout, keyring, world["certs"].values(), at=dt.datetime.now(dt.timezone.utc))
    port = _free_port()
    app = create_app(layout)
    key = make_client(app.state.service_store)
    code = world["co"]["subject_code"]
    app.state.service_store.accept_application("HZ-HTTP-1", RESTAURANT, code, "clerk-007", "test", at=NOW)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    access_lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            access_lines.append(record.getMessage())

    collector = Collect()
    logging.getLogger("uvicorn.access").addHandler(collector)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        with httpx.Client(base_url=base, timeout=5) as http:
            assert http.get("/healthz").json()["snapshot_id"] == "snap-1"
            body = http.get(f"/api/v1/subjects/{code}/certificates",
                            headers=purpose_headers(key, case="HZ-HTTP-1")).json()
            assert {c["licence_type"]["name"] for c in body["certificates"]} == {"营业执照", "食品经营许可证"}
            token = world["lic"]["business"]["token"]
            assert http.post("/api/v1/verify", json={"token": token}).json()["outcome"] == "valid"
            assert "一窗受理" in http.get("/").text
        lookups = [line for line in access_lines if "/certificates" in line]
        assert lookups and all(code not in line for line in lookups), "identifiers are masked in access logs"
        assert mask_identifier(code) in lookups[0]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        logging.getLogger("uvicorn.access").removeHandler(collector)


def test_identifier_masking_in_log_lines():
    from exchange.api.core.logs import mask_identifiers

    line = 'GET /api/v1/subjects/11010519491231002X/certificates?x=91110000600037341L HTTP/1.1'
    assert mask_identifiers(line) == ('GET /api/v1/subjects/110105********002X/certificates'
                                      '?x=911100********341L HTTP/1.1')
    licence = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"
    # The 18-character issuer code inside a licence identifier is masked too: harmless in a log.
    assert mask_identifiers(licence) == licence.replace("11430000006122244L", "114300********244L")
