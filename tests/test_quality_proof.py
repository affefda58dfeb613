"""Precision and recall of the quality step on the defect manifest, at several seeds.

The pipeline steps run directly (no Airflow) for every source on day 0.  Every
injected error defect must be quarantined with its reason code, every warning
(``uscc_check_char``) flagged on the kept record, every ``name_mismatch`` listed as a
cross-check finding on the right field, and no clean record quarantined, flagged or
reported as a name mismatch.
"""

from __future__ import annotations

import json
import os

import pytest

from exchange.departments import BASE_DATE, simulate
from tests.pipeline_helpers import query, run_steps
from warehouse.datadir import Layout

SEEDS = (11, 23, 47)
PERSONS = 1500
DEFECT_RATE = 0.06
SOURCES = ("gongan_population", "scjg_enterprises", "scjg_food_licences", "minzheng_marriages", "zrzy_property")
ERRORS = {"id_check_char", "impossible_date", "validity_end_before_start", "missing_required", "duplicate_key",
          "mis_encoded_text"}


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def loaded(request, tmp_path_factory):
    from exchange.departments.scjg_api import serve_in_background
    from exchange.sources.interval import Interval

    layout = Layout(tmp_path_factory.mktemp(f"proof{request.param}") / "var").ensure()
    simulate(layout, persons=PERSONS, seed=request.param, day=0, defect_rate=DEFECT_RATE)
    old = os.environ.get("AIRFLOW_CONN_SCJG_API")
    with serve_in_background(layout.departments / "scjg" / "registry.sqlite") as api:
        os.environ["AIRFLOW_CONN_SCJG_API"] = api.url
        try:
            runs = {s: run_steps(layout, s, BASE_DATE) for s in SOURCES}
        finally:
            if old is None:
                os.environ.pop("AIRFLOW_CONN_SCJG_API", None)
            else:
                os.environ["AIRFLOW_CONN_SCJG_API"] = old
    manifest = json.loads(layout.defect_manifest.read_text(encoding="utf-8"))
    return layout, manifest, runs, Interval.for_day(BASE_DATE).key


def _quarantined(layout) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for source_id, key, reasons in query(layout.library, "SELECT source_id, record_key, reasons FROM quarantine"):
        out.setdefault((source_id, key), set()).update(r["code"] for r in json.loads(reasons))
    return out


@pytest.mark.slow
def test_every_error_defect_is_quarantined_with_its_code_and_nothing_else(loaded):
    layout, manifest, _, _ = loaded
    quarantined = _quarantined(layout)
    errors = [d for d in manifest["defects"] if d["defect"] in ERRORS]
    assert {d["defect"] for d in errors} == ERRORS  # every error class is exercised at this size
    for d in errors:
        codes = quarantined.get((d["source_id"], d["record_key"]))
        assert codes is not None, f"not quarantined: {d}"
        assert d["defect"] in codes, f"wrong reason for {d}: {codes}"
    injected = {(d["source_id"], d["record_key"]) for d in errors}
    assert set(quarantined) <= injected, sorted(set(quarantined) - injected)[:10]  # precision


@pytest.mark.slow
def test_warnings_are_flagged_on_kept_records_and_clean_records_carry_no_flag(loaded):
    layout, manifest, _, _ = loaded
    warnings = [d for d in manifest["defects"] if d["defect"] == "uscc_check_char"]
    assert warnings
    flagged = {(s, n): set(f) for s, n, f in query(
        layout.library, "SELECT source_id, cert_number, flags FROM certificates WHERE len(flags) > 0")}
    for d in warnings:
        assert "uscc_check_char" in flagged.get((d["source_id"], d["record_key"]), set()), d
    assert set(flagged) <= {(d["source_id"], d["record_key"]) for d in warnings}


@pytest.mark.slow
def test_name_mismatches_are_cross_check_findings_exactly(loaded):
    layout, manifest, _, _ = loaded
    injected = {(d["source_id"], d["record_key"], d["field"]) for d in manifest["defects"]
                if d["defect"] == "name_mismatch"}
    assert injected  # (which departments get one depends on the seed at this size)
    found = set(query(layout.library, """SELECT source_id, record_key, field FROM crosscheck_findings
                                         WHERE "check" = 'name_mismatch'"""))
    assert found == injected  # recall and precision
    for values, in query(layout.library, """SELECT "values" FROM crosscheck_findings
                                            WHERE "check" = 'name_mismatch'"""):
        names = json.loads(values)
        assert len(names) == 2 and len(set(names.values())) == 2  # both departments' values, different


@pytest.mark.slow
def test_every_run_is_recorded_and_has_its_data_docs(loaded):
    layout, _, runs, interval = loaded
    recorded = {r[0]: r[1:] for r in query(layout.library,
                                           "SELECT source_id, rows, quarantined, flagged, status FROM quality_runs")}
    for source_id, run in runs.items():
        checked = run["checked"]
        assert recorded[source_id] == (checked["rows"], checked["quarantined"], checked["flagged"], "merged")
        docs = layout.reports / "data_docs" / source_id / interval
        assert (docs / "index.html").exists()
        assert len([p for p in docs.glob("*.html") if p.name != "index.html"]) == 1
