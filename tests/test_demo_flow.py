"""The whole demo flow at small scale, through Airflow: departments → DAGs → library → signed licences."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from rich.console import Console

from tests.pipeline_helpers import query
from warehouse.datadir import Layout

PERSONS = 3000
DEFECT_RATE = 0.06  # enough rows of every defect kind at this size, well under the 20% batch threshold
ERROR_DEFECTS = {"id_check_char", "missing_required", "validity_end_before_start", "duplicate_key",
                 "impossible_date", "mis_encoded_text"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from exchange.runner import run_demo

    layout = Layout(tmp_path_factory.mktemp("demo") / "var").ensure()
    out = io.StringIO()
    stats = run_demo(layout, persons=PERSONS, seed=7, days=1, console=Console(file=out, width=200),
                     defect_rate=DEFECT_RATE)
    manifest = json.loads(layout.defect_manifest.read_text(encoding="utf-8"))
    return layout, stats, manifest, out.getvalue()


def _snap(layout):
    from warehouse.snapshot import current

    path = current(layout)
    assert path is not None and path.exists()
    return path


@pytest.mark.airflow
@pytest.mark.slow
def test_every_dag_ran_and_the_display_showed_counts(demo):
    _, _, _, output = demo
    for dag_id in ("ingest_gongan_population", "ingest_scjg_enterprises", "ingest_scjg_food_licences",
                   "ingest_minzheng_marriages", "ingest_zrzy_property", "library_build"):
        assert f"{dag_id}: ✔" in output, output[-3000:]
    assert "quarantined" in output and "signed" in output


@pytest.mark.airflow
@pytest.mark.slow
def test_library_counts(demo):
    layout, stats, _, _ = demo
    snap = _snap(layout)
    persons_ok = query(snap, "SELECT count(*) FROM subjects WHERE kind = 'person'")[0][0]
    assert 0.9 * PERSONS < persons_ok <= PERSONS * 1.05
    assert query(snap, "SELECT count(*) FROM subjects WHERE kind = 'organisation'")[0][0] > 0
    by_type = dict(query(snap, "SELECT licence_type_name, count(*) FROM certificates GROUP BY 1"))
    assert {"居民身份证", "居民户口簿", "营业执照", "食品经营许可证", "结婚证", "不动产权证书"} <= set(by_type)
    assert by_type["居民身份证"] == persons_ok
    # every certificate has a signed licence at its current version
    missing = query(snap, """SELECT count(*) FROM certificates c LEFT JOIN licences l
                             ON l.cert_key = c.cert_key AND l.version = c.version WHERE l.licence_id IS NULL""")
    assert missing == [(0,)]
    # day 1 brought changes, kept as history with new licence versions that record what they supersede
    assert query(snap, "SELECT count(*) FROM certificate_history")[0][0] > 0
    assert query(snap, "SELECT count(*) FROM licences WHERE version > 1 AND supersedes IS NOT NULL")[0][0] > 0


@pytest.mark.airflow
@pytest.mark.slow
def test_quarantine_matches_the_defect_manifest(demo):
    layout, _, manifest, _ = demo
    snap = _snap(layout)
    quarantined: dict[tuple[str, str], set[str]] = {}
    for source_id, key, reasons in query(snap, "SELECT source_id, record_key, reasons FROM quarantine"):
        quarantined.setdefault((source_id, key), set()).update(r["code"] for r in json.loads(reasons))
    errors = [d for d in manifest["defects"] if d["defect"] in ERROR_DEFECTS]
    assert {d["defect"] for d in errors} >= {"id_check_char", "missing_required", "validity_end_before_start",
                                            "duplicate_key"}
    for d in errors:
        codes = quarantined.get((d["source_id"], d["record_key"]))
        assert codes is not None, f"not quarantined: {d}"
        assert d["defect"] in codes, f"wrong reason for {d}: {codes}"
    # no clean row is quarantined: every quarantined record carries an injected error defect
    injected = {(d["source_id"], d["record_key"]) for d in errors}
    clean_but_quarantined = set(quarantined) - injected
    assert not clean_but_quarantined, sorted(clean_but_quarantined)[:10]


@pytest.mark.airflow
@pytest.mark.slow
def test_credit_code_check_failures_are_flagged_not_dropped(demo):
    layout, _, manifest, _ = demo
    snap = _snap(layout)
    warnings = [d for d in manifest["defects"] if d["defect"] == "uscc_check_char"]
    assert warnings
    for d in warnings:
        flags = query(snap, "SELECT flags FROM certificates WHERE source_id = ? AND cert_number = ?",
                      [d["source_id"], d["record_key"]])
        assert flags, f"flagged row was dropped: {d}"
        assert any("uscc_check_char" in (f[0] or []) for f in flags), d


@pytest.mark.airflow
@pytest.mark.slow
def test_a_licence_verifies_and_a_tampered_copy_does_not(demo):
    import base64

    from certificates import TrustStore, verify_licence

    layout, _, _, _ = demo
    snap = _snap(layout)
    trust = TrustStore.from_dir(layout.trust)
    at = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)
    tokens = [t for (t,) in query(snap, """SELECT l.token FROM licences l JOIN certificates c
                                          ON c.cert_key = l.cert_key AND c.version = l.version
                                          WHERE c.status = '01' AND (c.valid_until IS NULL OR c.valid_until > DATE '2026-11-04')
                                          ORDER BY l.licence_id LIMIT 5""")]
    assert tokens
    for token in tokens:
        assert verify_licence(token, trust, at=at).code == "valid"
        header, payload, sig = token.split(".")
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        body["holder"]["name"] = "张三"
        forged = base64.urlsafe_b64encode(json.dumps(body, ensure_ascii=False).encode()).rstrip(b"=").decode()
        assert verify_licence(f"{header}.{forged}.{sig}", trust, at=at).code == "tampered"


@pytest.mark.airflow
@pytest.mark.slow
def test_the_service_answers_from_the_published_snapshot(demo):
    """Lookup, licence fetch, verify (valid and tampered) and once-only, over the demo's own snapshot."""
    from fastapi.testclient import TestClient

    from exchange.api.main import create_app

    layout, _, _, _ = demo
    snap = _snap(layout)
    # a married property owner: 不动产转移登记 can take 身份证, 户口簿, 不动产权证书 and 结婚证 from the library
    owner = query(snap, """
        SELECT p.holder_code FROM certificates p
        JOIN certificates m ON m.holder_code = p.holder_code AND m.licence_type_name = '结婚证'
        JOIN certificates i ON i.holder_code = p.holder_code AND i.licence_type_name = '居民身份证' AND i.status = '01'
        WHERE p.licence_type_name = '不动产权证书' AND p.holder_code_type = '111' AND p.status = '01'
          AND (i.valid_until IS NULL OR i.valid_until > current_date)
        ORDER BY 1 LIMIT 1""")
    assert owner, "the simulated data should hold a married property owner"
    code = owner[0][0]
    from tests.exchange.factories import make_client, purpose_headers

    app = create_app(layout)
    with TestClient(app) as client:
        # a department client granted every licence type, reading in a case accepted for this holder
        key = make_client(app.state.service_store, client_id="demo-counter")
        app.state.service_store.accept_application("DEMO-CASE-1", "000173010000", code, "clerk-001",
                                                   "demo-counter", at=dt.datetime.now())
        client.headers.update(purpose_headers(key, case="DEMO-CASE-1", item="000173010000"))
        found = client.get(f"/api/v1/subjects/{code}/certificates")
        assert found.status_code == 200
        names = {c["licence_type"]["name"] for c in found.json()["certificates"]}
        assert {"居民身份证", "不动产权证书", "结婚证"} <= names
        licence_id = next(c["licence_id"] for c in found.json()["certificates"]
                          if c["licence_type"]["name"] == "不动产权证书")
        fetched = client.get(f"/api/v1/licences/{licence_id}")
        assert fetched.status_code == 200
        token = fetched.json()["token"]
        assert client.post("/api/v1/verify", json={"token": token}).json()["outcome"] == "valid"
        tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
        assert client.post("/api/v1/verify", json={"token": tampered}).json()["outcome"] != "valid"
        answer = client.post("/api/v1/once-only", json={"applicant": {"code": code, "code_type": "111"},
                                                        "items": ["000173010000"]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        on_file = {t for r in body["requirements"] if r["status"] == "on_file" for t in r["licence_types"]}
        assert "property" in on_file  # registry key of 不动产权证书
        assert body["on_file_count"] >= 2
        bad = client.get(f"/api/v1/subjects/{code[:-1]}{'0' if code[-1] != '0' else '1'}/certificates")
        assert bad.status_code == 422
