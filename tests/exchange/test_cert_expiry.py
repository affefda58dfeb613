"""证书到期提醒: signing certificates due within ONEWINDOW_CERT_WARN_DAYS, at service start (log),
on the auditor page (/quality) and as JSON (GET /api/v1/trust/expiry)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from fastapi.testclient import TestClient

from tests.exchange.factories import make_snapshot
from tests.web.helpers import sign_in_as_auditor

CST = dt.timezone(dt.timedelta(hours=8), "CST")
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=CST)
ISSUER_DAYS = 730  # certificates.pki.ISSUER_VALIDITY and SERVICE_VALIDITY


@pytest.fixture()
def hub(layout, monkeypatch):
    """Keys made at T0, 公安 rotated 200 days later (its old certificate retired but published)."""
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    monkeypatch.delenv("ONEWINDOW_CERT_WARN_DAYS", raising=False)
    from certificates import Keyring, publish_trust
    from certificates.pki import rotate_issuer

    Keyring.load_or_create(layout, at=T0)
    rotate_issuer(layout, "gongan", at=T0 + dt.timedelta(days=200))
    keyring = Keyring.load_or_create(layout, at=T0)
    publish_trust(keyring, layout.trust)
    _snapshot(layout, "snap-expiry")
    return keyring


def _snapshot(layout, snapshot_id):
    """An empty snapshot; quality_runs with the status column the report reads (as the pipeline writes it)."""
    import duckdb

    path = make_snapshot(layout, snapshot_id=snapshot_id)
    con = duckdb.connect(str(path))
    try:
        con.execute("ALTER TABLE quality_runs ADD COLUMN status VARCHAR")
    finally:
        con.close()


def _app(layout, now):
    from exchange.api.deps import get_now
    from exchange.api.main import create_app

    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: now
    return app


def test_json_names_each_current_certificate_due_and_not_the_retired_or_rotated_ones(layout, hub):
    now = T0 + dt.timedelta(days=ISSUER_DAYS - 20)
    with TestClient(_app(layout, now)) as client:
        body = client.get("/api/v1/trust/expiry").json()
    assert body["warn_days"] == 60 and body["checked_at"].startswith(now.date().isoformat())
    due = {c["code"]: c for c in body["certificates"]}
    rotated = hub.issuer("gongan").code
    assert rotated not in due  # its current certificate runs 200 days longer; the retired one is ignored
    assert set(due) == {i.code for i in hub.issuers.values()} - {rotated} | {"hub-service"}
    svc = due["hub-service"]
    assert svc["kind"] == "hub_service" and svc["kid"] == hub.service.kid and "服务签章证书" in svc["message_zh"]
    scjg = due[hub.issuer("scjg").code]
    assert scjg["kind"] == "licence_issuer" and scjg["days_left"] in (19, 20) and not scjg["expired"]
    assert scjg["kid"] == hub.issuer("scjg").kid and "剩余" in scjg["message_zh"]
    assert [c["not_after"] for c in body["certificates"]] == sorted(c["not_after"] for c in body["certificates"])


def test_window_is_configurable_and_expired_certificates_are_flagged(layout, hub, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_CERT_WARN_DAYS", "10")
    with TestClient(_app(layout, T0 + dt.timedelta(days=ISSUER_DAYS - 20))) as client:
        assert client.get("/api/v1/trust/expiry").json() == {
            "checked_at": "2027-12-16T09:00:00+08:00", "warn_days": 10, "certificates": []}
    with TestClient(_app(layout, T0 + dt.timedelta(days=ISSUER_DAYS + 1))) as client:
        body = client.get("/api/v1/trust/expiry").json()
    assert body["certificates"] and all(c["expired"] for c in body["certificates"]
                                        if c["code"] != hub.issuer("gongan").code)
    assert "已于" in body["certificates"][0]["message_zh"]


def test_quiet_when_nothing_is_due(layout, hub):
    with TestClient(_app(layout, T0 + dt.timedelta(days=30))) as client:
        assert client.get("/api/v1/trust/expiry").json()["certificates"] == []
        sign_in_as_auditor(client)
        page = client.get("/quality")
    assert page.status_code == 200 and "证书到期提醒" in page.text and "没有到期的签名证书" in page.text


def test_auditor_page_shows_the_same_warnings(layout, hub):
    with TestClient(_app(layout, T0 + dt.timedelta(days=ISSUER_DAYS - 20))) as client:
        sign_in_as_auditor(client)
        page = client.get("/quality")
        body = client.get("/api/v1/trust/expiry").json()
    assert page.status_code == 200 and "<h2>证书到期提醒</h2>" in page.text
    for cert in body["certificates"]:
        assert cert["name"] in page.text and cert["message_zh"] in page.text
    assert "枢纽服务签章" in page.text and hub.issuer("gongan").department.name not in page.text
    assert page.text.index("证书到期提醒") < page.text.index("各部门数据质量分趋势")  # first thing the auditor sees


def test_service_start_logs_each_warning(layout, hub, caplog):
    with caplog.at_level(logging.WARNING, logger="exchange.api.certexpiry"):
        with TestClient(_app(layout, T0 + dt.timedelta(days=ISSUER_DAYS - 20))):
            pass
    warnings = [r.getMessage() for r in caplog.records if r.name == "exchange.api.certexpiry"]
    assert len(warnings) == len(hub.issuers) - 1 + 1  # all but the rotated department, plus the hub service
    assert all(w.startswith("证书到期提醒") for w in warnings)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="exchange.api.certexpiry"):
        with TestClient(_app(layout, T0 + dt.timedelta(days=30))):
            pass
    assert not [r for r in caplog.records if r.name == "exchange.api.certexpiry"]


def test_without_trust_material(layout, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    _snapshot(layout, "snap-none")
    with TestClient(_app(layout, T0)) as client:
        resp = client.get("/api/v1/trust/expiry")
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "trust_unavailable"
        sign_in_as_auditor(client)
        page = client.get("/quality")
    assert page.status_code == 200 and "信任列表尚未发布" in page.text


def test_openapi_documents_the_endpoint(layout):
    from exchange.api.main import create_app

    spec = create_app(layout, watch_interval=None).openapi()
    op = spec["paths"]["/api/v1/trust/expiry"]["get"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/TrustExpiryResponse") and "503" in op["responses"]
    fields = spec["components"]["schemas"]["ExpiringCertificate"]["properties"]
    assert {"kind", "kid", "code", "not_after", "days_left", "expired", "message_zh"} <= set(fields)


def test_pipeline_library_build_logs_each_warning(tmp_path, monkeypatch, caplog):
    """The library build (warehouse.build.issue_pending, every pipeline run) logs the same warnings."""
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    monkeypatch.setenv("ONEWINDOW_CERT_WARN_DAYS", "30")
    from certificates import Keyring
    from tests.warehouse.test_build import _library
    from warehouse.build import issue_pending

    layout = _library(tmp_path / "var", 1)
    Keyring.load_or_create(layout, at=T0)  # keys made at T0
    with caplog.at_level(logging.WARNING, logger="certificates.pki"):
        issue_pending(layout, at=T0 + dt.timedelta(days=ISSUER_DAYS - 20))
    warnings = [r.getMessage() for r in caplog.records if r.name == "certificates.pki"]
    keyring = Keyring.load_or_create(layout, at=T0)
    assert len(warnings) == len(keyring.issuers) + 1
    assert sum("服务签章证书" in w for w in warnings) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="certificates.pki"):
        issue_pending(layout, at=T0 + dt.timedelta(days=ISSUER_DAYS - 40))
    assert not [r for r in caplog.records if r.name == "certificates.pki"]
