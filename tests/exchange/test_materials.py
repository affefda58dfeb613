"""The material library: content-addressed storage, limits, verification, reuse in once-only answers."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from exchange.api.deps import get_now
from exchange.api.main import create_app
from tests.exchange.factories import make_client, purpose_headers
from tests.exchange.test_api import NOW, RESTAURANT, assert_error, keyring, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture()
def hub(layout, world):
    app = create_app(layout, watch_interval=None)
    clock = {"now": NOW}
    app.dependency_overrides[get_now] = lambda: clock["now"]
    with TestClient(app) as http:
        store = app.state.service_store
        key = make_client(store, client_id="counter-1")
        co = world["co"]["subject_code"]
        store.accept_application("MAT-1", RESTAURANT, co, "clerk-007", "counter-1", at=NOW)
        yield {"app": app, "http": http, "key": key, "co": co, "clock": clock,
               "headers": purpose_headers(key, case="MAT-1")}


def submit(hub, data=PDF, media="application/pdf", mtype="premises_proof", holder=None, name="lease.pdf"):
    return hub["http"].post("/api/v1/materials", headers={"X-API-Key": hub["key"]},
                            files={"file": (name, data, media)},
                            data={"material_type": mtype, "holder_code": holder or hub["co"], "case_number": "MAT-1"})


def premises_line(hub, world):
    body = hub["http"].post("/api/v1/once-only", headers=hub["headers"], json={
        "applicant": {"code": hub["co"], "code_type": "001", "agent_code": world["rep"]["subject_code"]},
        "items": [RESTAURANT]}).json()
    return next(r for r in body["requirements"] if r["serves"][0]["material_key"] == "premises")


def test_same_file_is_stored_once(hub, world, layout):
    first = submit(hub)
    assert first.status_code == 201, first.text
    m = first.json()
    assert m["stored_new_file"] is True
    import hashlib

    digest = hashlib.sha256(PDF).hexdigest()
    assert m["material"]["digest"] == digest and m["material"]["verified_by"] is None
    assert (layout.service / "materials" / digest[:2] / digest).read_bytes() == PDF
    again = submit(hub).json()
    assert again["stored_new_file"] is False and again["material"]["material_id"] == m["material"]["material_id"]
    other_holder = submit(hub, holder=world["person"]["subject_code"]).json()
    assert other_holder["stored_new_file"] is False
    assert other_holder["material"]["material_id"] != m["material"]["material_id"]
    store = hub["app"].state.service_store
    assert store.material_blob_count() == 1
    assert len(list((layout.service / "materials").rglob("*"))) == 2  # one folder, one file


def test_limits_and_types_are_refused_with_clear_errors(hub):
    err = assert_error(submit(hub, data=b"%PDF-" + b"x" * (10_485_760)), 413, "material_too_large")
    assert err["detail"]["max_bytes"] == 10_485_760 and "上限" in err["message"]
    err = assert_error(submit(hub, data=PDF, media="application/zip", name="x.zip"), 415, "material_media_type")
    assert err["detail"]["accepted"] == ["application/pdf", "image/jpeg", "image/png"]
    assert_error(submit(hub, data=PNG, media="application/pdf"), 415, "material_content_mismatch")
    assert_error(submit(hub, data=b"", media="application/pdf"), 422, "material_empty")
    assert_error(submit(hub, mtype="spaceship_licence"), 422, "unknown_material_type")
    assert submit(hub, data=PNG, media="image/png", mtype="id_photo", name="p.png").status_code == 201
    assert_error(hub["http"].post("/api/v1/materials", files={"file": ("a.pdf", PDF, "application/pdf")},
                                  data={"material_type": "premises_proof", "holder_code": hub["co"]}),
                 401, "unauthenticated")


def test_verified_material_meets_requirement_until_it_expires(hub, world):
    line = premises_line(hub, world)
    assert line["status"] == "must_submit" and line["satisfied_by"] == "经营场所使用证明（材料库）"
    material_id = submit(hub).json()["material"]["material_id"]
    line = premises_line(hub, world)  # submitted but not verified: does not count
    assert line["status"] == "must_submit"
    assert [x["reason_code"] for x in line["not_counted"]] == ["material_unverified"]
    resp = hub["http"].post(f"/api/v1/materials/{material_id}/verify", headers={"X-API-Key": hub["key"]},
                            json={"verified_by": "clerk-007"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["reuse_until"] == "2027-11-20"  # 365 days from 2026-11-20
    line = premises_line(hub, world)
    assert line["status"] == "on_file"
    [used] = line["on_file"]
    assert used["kind"] == "material" and used["material_id"] == material_id and used["licence_id"] is None
    assert used["verified_by"] == "clerk-007" and used["valid_until"] == "2027-11-20"
    hub["clock"]["now"] = NOW + dt.timedelta(days=366)
    line = premises_line(hub, world)
    assert line["status"] == "must_submit"
    assert [x["reason_code"] for x in line["not_counted"]] == ["material_expired"]


def test_material_of_another_holder_does_not_count(hub, world):
    mid = submit(hub, holder=world["person"]["subject_code"]).json()["material"]["material_id"]
    hub["http"].post(f"/api/v1/materials/{mid}/verify", headers={"X-API-Key": hub["key"]},
                     json={"verified_by": "clerk-007"})
    assert premises_line(hub, world)["status"] == "must_submit"


def test_listing_materials_needs_purpose_and_holder_authorisation(hub, world):
    submit(hub)
    http = hub["http"]
    body = http.get("/api/v1/materials", params={"holder_code": hub["co"]}, headers=hub["headers"]).json()
    assert [m["material_type"] for m in body["materials"]] == ["premises_proof"]
    assert hub["co"] not in str(body)
    assert_error(http.get("/api/v1/materials", params={"holder_code": hub["co"]},
                          headers={"X-API-Key": hub["key"]}), 400, "purpose_required")
    assert_error(http.get("/api/v1/materials", params={"holder_code": world["person"]["subject_code"]},
                          headers=hub["headers"]), 403, "holder_not_authorised")


def test_verify_unknown_material_and_past_reuse_date(hub):
    http = hub["http"]
    assert_error(http.post("/api/v1/materials/nope/verify", headers={"X-API-Key": hub["key"]},
                           json={"verified_by": "c"}), 404, "material_not_found")
    mid = submit(hub).json()["material"]["material_id"]
    assert_error(http.post(f"/api/v1/materials/{mid}/verify", headers={"X-API-Key": hub["key"]},
                           json={"verified_by": "c", "reuse_until": "2020-01-01"}), 422, "invalid_reuse_until")
