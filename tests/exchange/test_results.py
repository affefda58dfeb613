"""Back-office results (办结结果): push → ingest (same quality suite) → build → the licence is served and verifies."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient

from certificates.registry import load_registry
from exchange.api.deps import get_now
from exchange.api.main import create_app
from exchange.results import IssueGrants
from quality.standards import make_uscc
from tests.exchange.factories import make_client, purpose_headers
from tests.exchange.test_api import NOW, assert_error
from tests.pipeline_helpers import data_dir, query, run_steps

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL

ZHUJIAN = ("113301000024969867", "杭州市城乡建设委员会")
MINZHENG = ("11330100002496476R", "杭州市民政局")
CONSTRUCTION_ITEM = "000182020000"  # 竣工验收备案: needs the 施工许可证


def permit(holder: str, number: str = "330106202611200101", **overrides) -> dict:
    rec = {"licence_type": "construction_permit", "cert_number": number, "holder_code": holder,
           "holder_code_type": "001", "holder_name": "杭州钱塘建设开发有限公司", "issue_date": "2026-11-19",
           "details": {"project_name": "钱塘研发中心项目", "contract_price_10k_yuan": 12800}}
    rec.update(overrides)
    return rec


@pytest.fixture()
def hub(layout):
    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: NOW
    with TestClient(app) as http:
        store = app.state.service_store
        keys = {
            "issuer": make_client(store, department=ZHUJIAN[0], department_name=ZHUJIAN[1], client_id="zj-approvals",
                                  types=[], roles=("issuer",)),
            "no_role": make_client(store, department=ZHUJIAN[0], department_name=ZHUJIAN[1], client_id="zj-portal",
                                   types=[], roles=()),
            "other_dept": make_client(store, department=MINZHENG[0], department_name=MINZHENG[1],
                                      client_id="mz-issuer", types=[], roles=("issuer",)),
            "reader": make_client(store, client_id="counter-1"),  # a counter granted every type
        }
        grants = IssueGrants(store)
        grants.grant(ZHUJIAN[0], load_registry().licence_type("construction_permit").code, by="test", at=NOW)
        grants.grant(MINZHENG[0], load_registry().licence_type("construction_permit").code, by="test", at=NOW)
        yield app, http, keys


def push(http, key: str | None, records: list[dict]):
    return http.post("/api/v1/results", json={"records": records}, headers={"X-API-Key": key} if key else {})


def last_log(app) -> dict:
    return json.loads(app.state.service_store.log_records()[-1].record)


def test_push_is_checked_for_shape_and_issuer(hub):
    app, http, keys = hub
    holder = make_uscc("9", "1", "330106", "70000001")
    assert_error(push(http, None, [permit(holder)]), 401, "unauthenticated")
    assert last_log(app)["action"] == "push_results" and last_log(app)["rule"] == "unauthenticated"
    assert_error(push(http, keys["no_role"], [permit(holder)]), 403, "not_issuer")
    # 民政 holds a grant but is not the registered issuer of 施工许可证
    err = assert_error(push(http, keys["other_dept"], [permit(holder)]), 403, "not_granted_issue")
    assert err["detail"]["licence_types"] == ["construction_permit"]
    # no issue grant for 竣工验收备案
    err = assert_error(push(http, keys["issuer"], [permit(holder, licence_type="completion_filing")]), 403,
                       "not_granted_issue")
    assert "grant-issue" in err["message"]
    # shape: every problem named with where it is
    err = assert_error(push(http, keys["issuer"], [permit(holder, issue_date="2026-02-30"),
                                                   permit(holder, holder_code_type="999")]),
                       422, "invalid_request")
    locs = {tuple(p["loc"]) for p in err["detail"]["problems"]}
    assert ("body", "records", 0, "issue_date") in locs and ("body", "records", 1, "holder_code_type") in locs
    rec = permit(holder)
    del rec["holder_name"]
    err = assert_error(push(http, keys["issuer"], [rec]), 422, "invalid_request")
    assert "records.0.holder_name" in err["message"]
    err = assert_error(push(http, keys["issuer"], [permit(holder, licence_type="building_licence")]), 422,
                       "invalid_result")
    assert "building_licence" in err["message"] and err["detail"]["problems"][0]["loc"][-1] == "licence_type"
    assert_error(push(http, keys["issuer"], [permit(holder, unexpected="x")]), 422, "invalid_request")
    assert_error(push(http, keys["issuer"], []), 422, "invalid_request")
    assert not list((app.state.layout.root / "inbox" / "results").glob("*.jsonl")) \
        if (app.state.layout.root / "inbox" / "results").exists() else True


def test_push_ingest_build_serves_a_verifying_licence_and_quarantines_a_defect(hub, layout):
    from exchange.pipeline import build_step, publish_step

    app, http, keys = hub
    good_holder = make_uscc("9", "1", "330106", "70000002")
    bad_holder = make_uscc("9", "1", "330106", "70000003")
    resp = push(http, keys["issuer"], [permit(good_holder, "330106202611200101")])
    assert resp.status_code == 202, resp.text
    receipt = resp.json()
    assert receipt["records"] == 1 and receipt["source_id"] == "hub_results"
    assert last_log(app)["target"] == receipt["receipt_id"] and last_log(app)["decision"] == "granted"
    # a defective result passes the shape check (dates are dates) but not the quality suite
    resp = push(http, keys["issuer"], [permit(bad_holder, "330106202611200102", valid_from="2026-11-19",
                                              valid_until="2026-11-01")])
    assert resp.status_code == 202, resp.text
    files = sorted((layout.root / "inbox" / "results").glob("results_*_20261120.jsonl"))
    assert len(files) == 2 and not list((layout.root / "inbox" / "results").glob(".*"))  # no temp left

    steps = run_steps(layout, "hub_results", NOW.date())
    assert steps["extracted"]["rows"] == 2
    assert steps["loaded"]["certificates_new"] == 1 and steps["loaded"]["quarantined"] == 1
    (reasons,) = query(layout.library, "SELECT reasons FROM quarantine WHERE source_id = 'hub_results' "
                                       "AND record_key = '330106202611200102'")[0]
    assert [r["code"] for r in json.loads(reasons)] == ["validity_end_before_start"]
    (cert,) = query(layout.library, "SELECT holder_code, licence_type_name, issuer_code, extension FROM certificates "
                                    "WHERE source_id = 'hub_results'")
    assert cert[:3] == (good_holder, "建筑工程施工许可证", ZHUJIAN[0])
    assert json.loads(cert[3]) == {"project_name": "钱塘研发中心项目", "contract_price_10k_yuan": 12800,
                                   "reported_by": "zj-approvals"}

    with data_dir(layout):
        built = build_step("2026-11-20T11:00:00+08:00")
        publish_step("2026-11-20T11:00:00+08:00")
    assert built["issued"] == 1

    later = NOW + dt.timedelta(hours=2)  # after the build: the keys it created are valid
    app.dependency_overrides[get_now] = lambda: later
    case = "HZ-RESULT-1"
    app.state.service_store.accept_application(case, CONSTRUCTION_ITEM, good_holder, "clerk-1", "counter-1", at=later)
    headers = purpose_headers(keys["reader"], case=case, item=CONSTRUCTION_ITEM)
    listing = http.get(f"/api/v1/subjects/{good_holder}/certificates", headers=headers)
    assert listing.status_code == 200, listing.text
    (entry,) = [c for c in listing.json()["certificates"] if c["licence_type"]["name"] == "建筑工程施工许可证"]
    licence = http.get(f"/api/v1/licences/{entry['licence_id']}", headers=headers)
    assert licence.status_code == 200, licence.text
    token = licence.json()["token"]
    verified = http.post("/api/v1/verify", json={"token": token}).json()
    assert verified["outcome"] == "valid", verified
    # the once-only check now answers the permit as on file for 竣工验收备案
    answer = http.post("/api/v1/once-only", json={"applicant": {"code": good_holder, "code_type": "001"},
                                                  "items": [CONSTRUCTION_ITEM]}, headers=headers)
    assert answer.status_code == 200, answer.text
    by_key = {r["serves"][0]["material_key"]: r for r in answer.json()["requirements"]}
    permits = by_key["permits"]  # 施工许可证 AND 建设工程规划许可证: the pushed half is on file
    assert permits["status"] == "must_submit" and permits["missing"] == ["建设工程规划许可证"]
    assert [(f["licence_id"], f["issuing_department"]) for f in permits["on_file"]] == [
        (entry["licence_id"], ZHUJIAN[1])]


def test_admin_commands_for_issuers(layout):
    from typer.testing import CliRunner

    from exchange.cli import app as cli
    from exchange.store import open_store

    runner = CliRunner()
    with data_dir(layout):
        assert runner.invoke(cli, ["admin", "add-department", ZHUJIAN[0], ZHUJIAN[1]]).exit_code == 0
        result = runner.invoke(cli, ["admin", "add-client", "zj-approvals", "--department", ZHUJIAN[0], "--issuer"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(cli, ["admin", "grant-issue", ZHUJIAN[0], "construction_permit", "completion_filing"])
        assert result.exit_code == 0, result.output
        refused = runner.invoke(cli, ["admin", "grant-issue", ZHUJIAN[0], "marriage"])
        assert refused.exit_code == 1 and "not the registered issuer" in refused.output
        assert runner.invoke(cli, ["admin", "revoke-issue", ZHUJIAN[0], "completion_filing"]).exit_code == 0
    store = open_store(layout)
    try:
        assert store.client("zj-approvals").roles == ("issuer",)
        reg = load_registry()
        assert IssueGrants(store).of(ZHUJIAN[0]) == {reg.licence_type("construction_permit").code}
        assert store.grants_of(ZHUJIAN[0]) == frozenset()  # an issue grant is not a read grant
    finally:
        store.close()


def test_a_push_of_only_defective_records_is_quarantined_not_rejected(hub, layout):
    app, http, keys = hub
    bad = make_uscc("9", "1", "330106", "70000009")[:-1] + "0"  # wrong check character: flagged, kept
    resp = push(http, keys["issuer"], [permit(bad, "330106202611200199", holder_code_type="111")])
    assert resp.status_code == 202, resp.text  # the shape is fine; the holder kind is not
    steps = run_steps(layout, "hub_results", NOW.date())
    assert steps["loaded"]["quarantined"] == 1 and steps["loaded"]["certificates_new"] == 0
    (reasons,) = query(layout.library, "SELECT reasons FROM quarantine WHERE record_key = '330106202611200199'")[0]
    assert "holder_kind_mismatch" in {r["code"] for r in json.loads(reasons)}
