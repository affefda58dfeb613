"""Department access: the authorisation matrix, keys, purpose, holder authorisation, 用证码, usage-log entries."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json

import pytest
from fastapi.testclient import TestClient

from certificates.registry import load_registry
from exchange.api.deps import get_now
from exchange.api.main import create_app
from tests.exchange.factories import make_client, purpose_headers
from tests.exchange.test_api import NOW, RESTAURANT, assert_error, keyring, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL

# Three departments, each granted a different subset of the licence types in `world`.
DEPARTMENTS = {
    "11330100002496126K": ("杭州市公安局", {"id_card", "hukou"}),
    "113301000024962067": ("杭州市市场监督管理局", {"business_licence", "food_licence"}),
    "11330100002496476R": ("杭州市民政局", {"marriage", "id_card", "property"}),
}


@pytest.fixture()
def app(layout, world):
    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: NOW
    with TestClient(app) as c:
        app.state.keys = {dept: make_client(app.state.service_store, department=dept, department_name=name,
                                            client_id=f"sys-{dept}", types=types)
                          for dept, (name, types) in DEPARTMENTS.items()}
        app.state.http = c
        yield app


def last_log(app) -> dict:
    return json.loads(app.state.service_store.log_records()[-1].record)


def test_authorisation_matrix(app, world):
    """Every department × licence × granted? × purpose? × holder authorisation? → one answer and one log record."""
    http, store, reg = app.state.http, app.state.service_store, load_registry()
    by_code = {lt.code: key for key, lt in reg.licence_types.items()}
    n = 0
    for (dept, (_, granted)), (name, lic), with_purpose, with_holder in itertools.product(
            DEPARTMENTS.items(), world["lic"].items(), (True, False), (True, False)):
        n += 1
        type_key = by_code[lic["licence_type_code"]]
        case = f"M-{n}"
        if with_holder:
            store.accept_application(case, RESTAURANT, lic["holder_code"], "clerk-1", "counter", at=NOW)
        headers = purpose_headers(app.state.keys[dept], case=case)
        if not with_purpose:
            del headers["X-Clerk-Id"]
        before = len(store.log_records())
        resp = http.get(f"/api/v1/licences/{lic['licence_id']}", headers=headers)
        if not with_purpose:
            expected = (400, "purpose_required")
        elif type_key not in granted:
            expected = (403, "not_granted")
        elif not with_holder:
            expected = (403, "holder_not_authorised")
        else:
            expected = (200, None)
        where = (dept, name, with_purpose, with_holder)
        assert resp.status_code == expected[0], (where, resp.text)
        if expected[1]:
            assert resp.json()["error"]["code"] == expected[1], where
        else:
            assert resp.json()["licence_id"] == lic["licence_id"]
        assert len(store.log_records()) == before + 1, where
        rec = last_log(app)
        assert rec["department"] == dept and rec["target"] == lic["licence_id"]
        assert rec["decision"] == ("granted" if expected[0] == 200 else "denied"), where
        assert rec["rule"] == (expected[1] or "application:counter"), where
        assert rec["licence_types"] == [lic["licence_type_code"]]
        assert lic["holder_code"] not in json.dumps(rec, ensure_ascii=False)  # masked + encrypted only
    assert n == len(DEPARTMENTS) * len(world["lic"]) * 4


def test_authentication_failures_are_refused_and_logged(app, world):
    http, store = app.state.http, app.state.service_store
    lic = world["lic"]["id_card"]
    url = f"/api/v1/licences/{lic['licence_id']}"
    key = app.state.keys["11330100002496126K"]
    for headers in ({}, {"X-API-Key": "nonsense"}, {"X-API-Key": key[:-2] + "xx"}):
        hdrs = {**purpose_headers(key), **headers} if headers else {k: v for k, v in purpose_headers(key).items()
                                                                   if k != "X-API-Key"}
        err = assert_error(http.get(url, headers=hdrs), 401, "unauthenticated")
        assert "X-API-Key" in err["message"]
        rec = last_log(app)
        assert (rec["decision"], rec["rule"], rec["client_id"]) == ("denied", "unauthenticated", None)
    store.set_disabled("sys-11330100002496126K", True)
    assert_error(http.get(url, headers=purpose_headers(key)), 401, "unauthenticated")
    store.set_disabled("sys-11330100002496126K", False)
    store.revoke_keys("sys-11330100002496126K", at=NOW)
    assert_error(http.get(url, headers=purpose_headers(key)), 401, "unauthenticated")


def test_purpose_is_required_and_must_name_a_catalogue_item(app, world):
    http = app.state.http
    key = app.state.keys["11330100002496126K"]
    code = world["person"]["subject_code"]
    for missing in ("X-Purpose-Item", "X-Case-Number", "X-Clerk-Id"):
        headers = {k: v for k, v in purpose_headers(key).items() if k != missing}
        err = assert_error(http.get(f"/api/v1/subjects/{code}/certificates", headers=headers), 400,
                           "purpose_required")
        assert err["detail"]["missing"] == [missing]
    err = assert_error(http.get(f"/api/v1/subjects/{code}/certificates",
                                headers=purpose_headers(key, item="999999999999")), 403, "invalid_purpose")
    assert "999999999999" in err["message"]
    assert_error(http.post("/api/v1/once-only", json={"applicant": {"code": code, "code_type": "111"},
                                                      "items": [RESTAURANT]},
                           headers={"X-API-Key": key}), 400, "purpose_required")


def test_subject_listing_shows_only_granted_types(app, world):
    http, store = app.state.http, app.state.service_store
    code = world["person"]["subject_code"]
    store.accept_application("L-1", RESTAURANT, code, "clerk-1", "counter", at=NOW)
    body = http.get(f"/api/v1/subjects/{code}/certificates",
                    headers=purpose_headers(app.state.keys["11330100002496126K"], case="L-1")).json()
    assert {c["licence_type"]["name"] for c in body["certificates"]} == {"居民身份证", "居民户口簿"}
    # 市场监管 holds no grant for any of this person's types: refused, not an empty answer.
    assert_error(http.get(f"/api/v1/subjects/{code}/certificates",
                          headers=purpose_headers(app.state.keys["113301000024962067"], case="L-1")),
                 403, "not_granted")
    # A department with no grant at all is refused even for a holder with nothing on file.
    store.add_department("dept-none", "无授权部门")
    store.add_client("none", "dept-none", "none")
    key = store.issue_key("none", at=NOW)
    assert_error(http.get(f"/api/v1/subjects/{code}/certificates", headers=purpose_headers(key, case="L-1")),
                 403, "not_granted")


def test_case_of_another_holder_does_not_authorise(app, world):
    http, store = app.state.http, app.state.service_store
    store.accept_application("X-1", RESTAURANT, world["rep"]["subject_code"], "clerk-1", "counter", at=NOW)
    err = assert_error(http.get(f"/api/v1/licences/{world['lic']['id_card']['licence_id']}",
                                headers=purpose_headers(app.state.keys["11330100002496126K"], case="X-1")),
                       403, "holder_not_authorised")
    assert "another holder" in err["message"]


def test_authorisation_code_single_use_expiry_and_holder(app, world):
    http, store = app.state.http, app.state.service_store
    key = app.state.keys["11330100002496126K"]
    person = world["person"]["subject_code"]
    url = f"/api/v1/licences/{world['lic']['id_card']['licence_id']}"
    code = store.issue_code(person, at=NOW, ttl=dt.timedelta(minutes=30))
    assert http.get(url, headers=purpose_headers(key, case="C-1", code=code)).status_code == 200
    assert last_log(app)["rule"] == "authorisation_code"
    # The redeemed code bound case C-1 to the holder: later reads in that case need no code.
    assert http.get(url, headers=purpose_headers(key, case="C-1")).status_code == 200
    assert last_log(app)["rule"] == "application:code"
    # Single use: the same code in another case is refused.
    assert_error(http.get(url, headers=purpose_headers(key, case="C-2", code=code)), 403,
                 "authorisation_code_used")
    # Expired.
    old = store.issue_code(person, at=NOW - dt.timedelta(hours=1), ttl=dt.timedelta(minutes=30))
    assert_error(http.get(url, headers=purpose_headers(key, case="C-3", code=old)), 403,
                 "authorisation_code_expired")
    # Issued for another holder, or made up.
    other = store.issue_code(world["rep"]["subject_code"], at=NOW, ttl=dt.timedelta(minutes=30))
    assert_error(http.get(url, headers=purpose_headers(key, case="C-4", code=other)), 403,
                 "authorisation_code_invalid")
    assert_error(http.get(url, headers=purpose_headers(key, case="C-5", code="ABCDE-FGHJK")), 403,
                 "authorisation_code_invalid")
    # The refused code for another holder is still unused: its holder can use it.
    rep_licence = world["lic"]["rep_id"]["licence_id"]
    assert http.get(f"/api/v1/licences/{rep_licence}", headers=purpose_headers(key, case="C-6", code=other)
                    ).status_code == 200


def test_accept_application_route_needs_counter_role(app, world):
    http, store = app.state.http, app.state.service_store
    person = world["person"]["subject_code"]
    body = {"case_number": "A-1", "item_code": RESTAURANT, "holder_code": person, "clerk_id": "clerk-9"}
    assert_error(http.post("/api/v1/applications", json=body), 401, "unauthenticated")
    store.add_department("dept-x", "某部门")
    store.add_client("plain", "dept-x", "plain", [])
    plain = store.issue_key("plain", at=NOW)
    assert_error(http.post("/api/v1/applications", json=body, headers={"X-API-Key": plain}), 403, "not_counter")
    counter = app.state.keys["11330100002496126K"]
    resp = http.post("/api/v1/applications", json=body, headers={"X-API-Key": counter})
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["basis"] == "counter" and out["holder_code_masked"] != person and out["client_id"].startswith("sys-")
    assert store.application("A-1").holder_code == person
    # The same case for another holder is a conflict, not a silent overwrite.
    assert_error(http.post("/api/v1/applications", json={**body, "holder_code": world["rep"]["subject_code"]},
                           headers={"X-API-Key": counter}), 409, "case_conflict")
    # Now the case authorises the read.
    assert http.get(f"/api/v1/licences/{world['lic']['id_card']['licence_id']}",
                    headers=purpose_headers(counter, case="A-1")).status_code == 200


def test_open_endpoints_stay_open(app, world):
    http = app.state.http
    assert http.get("/healthz").status_code == 200
    assert http.get("/").status_code == 200
    assert http.get("/api/v1/items").status_code == 200
    assert http.get(f"/api/v1/items/{RESTAURANT}").status_code == 200
    assert http.post("/api/v1/verify", json={"token": world["lic"]["id_card"]["token"]}).json()["outcome"] == "valid"


def _stored_bytes(store, request) -> bytes:
    """Everything the store keeps: the SQLite file and its WAL, or a ``pg_dump`` of the PostgreSQL database."""
    if not hasattr(store, "path"):
        import subprocess

        pg_dump = request.getfixturevalue("pg_server").bindir / "pg_dump"
        return subprocess.run([str(pg_dump), store.url], check=True, capture_output=True).stdout
    wal = store.path.with_name(store.path.name + "-wal")
    return store.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_api_keys_are_stored_hashed(app, request):
    store = app.state.service_store
    key = app.state.keys["11330100002496126K"]
    secret = key.split(".", 1)[1]
    raw = _stored_bytes(store, request)
    assert b"sys-11330100002496126K" in raw  # the dump does hold the clients
    assert secret.encode() not in raw
    assert store.authenticate(key).client_id == "sys-11330100002496126K"
    assert store.authenticate(key + "x") is None


def _share_hub_keys(keyring, layout, tmp_path_factory):
    """Give the service's data dir the keys of the hub that signed ``world``'s licences (one hub
    signs licences and use-copies; the ``keyring`` fixture keeps its keys in its own data dir)."""
    import shutil

    from cryptography.hazmat.primitives import serialization

    root_pem = keyring.root_certificate.public_bytes(serialization.Encoding.PEM)
    [keys] = {p.parent.resolve() for p in tmp_path_factory.getbasetemp().glob("pki*/keys/root.cert.pem")
              if p.read_bytes() == root_pem}
    shutil.copytree(keys, layout.keys, dirs_exist_ok=True)


def test_licence_read_returns_a_use_copy_stamped_with_purpose_and_expiry(app, world, layout, keyring,
                                                                         tmp_path_factory):
    from certificates import Keyring, Outcome, TrustStore, verify_licence
    from certificates.usecopy import licence_digest

    _share_hub_keys(keyring, layout, tmp_path_factory)
    http, store = app.state.http, app.state.service_store
    lic = world["lic"]["id_card"]
    store.accept_application("U-1", RESTAURANT, lic["holder_code"], "clerk-1", "counter", at=NOW)
    body = http.get(f"/api/v1/licences/{lic['licence_id']}",
                    headers=purpose_headers(app.state.keys["11330100002496126K"], case="U-1",
                                            clerk="clerk-42")).json()
    copy = body["use_copy"]
    assert copy["expires_at"] == "2026-11-23T10:00:00+08:00"
    assert "U-1" in copy["stamp"] and "2026年11月23日" in copy["stamp"]
    # signed by the hub service key (published in the trust bundle), not the root
    trust = TrustStore.from_dir(layout.trust)
    h, p, s = copy["token"].split(".")
    assert json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["kid"] == \
        Keyring.load_or_create(layout, at=NOW).service.kid
    # the copy names the licence by digest and is presented with the answer's licence token
    assert body["token"] == lic["token"] and lic["token"] not in copy["token"]
    presented = f"{copy['token']}~{body['token']}"
    result = verify_licence(presented, trust, at=NOW)
    assert result.outcome is Outcome.VALID and result.licence_id == lic["licence_id"]
    assert verify_licence(copy["token"], trust, at=NOW).detail == "licence_not_presented"
    payload = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    assert payload["licence_sha256"] == licence_digest(lic["token"]) and payload["licence_id"] == lic["licence_id"]
    assert result.use_copy["purpose"] == {"item": RESTAURANT, "case": "U-1", "clerk": "clerk-42"}
    assert result.use_copy["requester"] == {"client_id": "sys-11330100002496126K", "department": "11330100002496126K"}
    assert payload["log_seq"] == store.log_records()[-1].seq
    expired = verify_licence(presented, trust, at=NOW + dt.timedelta(hours=72))
    assert expired.outcome is Outcome.USE_COPY_EXPIRED
    forged = dict(payload)
    forged["purpose"] = {**payload["purpose"], "item": "000173010000"}
    from certificates import canonical_json
    from certificates.signing import b64url

    tampered = verify_licence(f"{h}.{b64url(canonical_json(forged))}.{s}~{body['token']}", trust, at=NOW)
    assert tampered.outcome is Outcome.TAMPERED


def test_reads_answered_together_are_sealed_under_one_hub_signature(app, world, layout, keyring,
                                                                      tmp_path_factory):
    """Concurrent reads on the server's event loop: their use-copies share one hub signature
    (a Merkle root over them), each with its own purpose and log seq, each verifying alone."""
    import httpx

    from certificates import Outcome, TrustStore, verify_licence
    from certificates.usecopy import SEALED_TYPE

    _share_hub_keys(keyring, layout, tmp_path_factory)
    http, store = app.state.http, app.state.service_store
    lic = world["lic"]["id_card"]
    cases = [f"S-{i}" for i in range(6)]
    for case in cases:
        store.accept_application(case, RESTAURANT, lic["holder_code"], "clerk-1", "counter", at=NOW)
    key = app.state.keys["11330100002496126K"]
    seals_before = app.state.use_copies.seals

    async def together():
        import asyncio

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as c:
            return await asyncio.gather(*(c.get(f"/api/v1/licences/{lic['licence_id']}",
                                                headers=purpose_headers(key, case=case)) for case in cases))

    responses = http.portal.call(together)  # on the app's own event loop
    assert [r.status_code for r in responses] == [200] * len(cases)
    trust = TrustStore.from_dir(layout.trust)
    records = {json.loads(r.record)["purpose"]["case"]: r.seq for r in store.log_records()}
    signatures = set()
    for case, resp in zip(cases, responses):
        answer = resp.json()
        copy = answer["use_copy"]["token"]
        token = f"{copy}~{answer['token']}"  # presented with the licence it names
        h, p, s = copy.split(".")
        header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
        assert header["typ"] == SEALED_TYPE and header["bsz"] == len(cases), header
        signatures.add(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))[5:69])
        result = verify_licence(token, trust, at=NOW)
        assert result.outcome is Outcome.VALID and result.licence_id == lic["licence_id"]
        assert result.use_copy["purpose"]["case"] == case and result.use_copy["log_seq"] == records[case]
        # and through the API's verify route, as a counter would check it
        assert http.post("/api/v1/verify", json={"token": token}).json()["outcome"] == "valid"
    assert len(signatures) == 1 and app.state.use_copies.seals == seals_before + 1


def test_once_only_withholds_numbers_of_ungranted_types(app, world):
    http, store = app.state.http, app.state.service_store
    person = world["person"]["subject_code"]
    store.accept_application("O-1", RESTAURANT, person, "clerk-1", "counter", at=NOW)
    # 公安 is granted id_card and hukou only; the property item also uses 不动产权证书 and 结婚证.
    body = http.post("/api/v1/once-only", json={"applicant": {"code": person, "code_type": "111"},
                                                "items": ["000173010000"]},
                     headers=purpose_headers(app.state.keys["11330100002496126K"], case="O-1")).json()
    shown = {u["licence_type"]: u for r in body["requirements"] for u in r["on_file"]}
    assert shown["居民身份证"]["licence_id"] == world["lic"]["id_card"]["licence_id"]
    assert shown["居民身份证"]["withheld"] is False
    marriage = shown["结婚证"]
    assert marriage["withheld"] is True and marriage["licence_id"] is None and marriage["cert_number"] == ""
    [prop] = [r for r in body["requirements"] if r["licence_types"] == ["property"]]
    assert prop["not_counted"][0]["licence_id"] is None and prop["not_counted"][0]["cert_number"] == ""
    # 民政 holds marriage and property grants: it sees those numbers.
    body = http.post("/api/v1/once-only", json={"applicant": {"code": person, "code_type": "111"},
                                                "items": ["000173010000"]},
                     headers=purpose_headers(app.state.keys["11330100002496476R"], case="O-1")).json()
    shown = {u["licence_type"]: u for r in body["requirements"] for u in r["on_file"]}
    assert shown["结婚证"]["licence_id"] == world["lic"]["marriage"]["licence_id"]
