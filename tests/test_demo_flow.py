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
