"""The once-only answer for every shipped item (the catalogue is iterated: a new item is covered
automatically), against a library built by the pipeline steps from the department simulator.

For each item a holder who has the most of its licences and one who has the fewest are
asked; the expected answer per requirement comes from an independent reading of the
snapshot (certificates, newest licences) and the item's AND/OR expressions. A bundle of
every item of one applicant kind checks deduplication; on-file licences are verified; a
holder whose name differs between departments gets the cross-check finding.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections import defaultdict
from typing import Any

import pytest
from fastapi.testclient import TestClient

from certificates.registry import load_registry
from exchange.api.deps import CST, get_now
from exchange.api.main import create_app
from exchange.api.schemas.onceonly import OnceOnlyResponse
from exchange.onceonly.catalogue import (AllOf, AnyOf, MaterialRef, expr_canonical, expr_keys, expr_text,
                                         load_catalogue)
from tests.exchange.factories import make_client, purpose_headers
from tests.pipeline_helpers import data_dir, query, run_steps
from warehouse.datadir import Layout

PERSONS, SEED = 600, 23
AT = dt.datetime(2026, 11, 2, 10, 0, tzinfo=CST)  # the morning after the library build
_cases = itertools.count(1)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from exchange.departments import BASE_DATE, simulate
    from exchange.departments.scjg_api import serve_in_background
    from exchange.pipeline import build_step, publish_step
    from exchange.sources.registry import load_sources

    layout = Layout(tmp_path_factory.mktemp("onceonly") / "var").ensure()
    simulate(layout, persons=PERSONS, seed=SEED, defect_rate=0.05)
    old = os.environ.get("AIRFLOW_CONN_SCJG_API")
    with serve_in_background(layout.departments / "scjg" / "registry.sqlite", port=0) as handle:
        os.environ["AIRFLOW_CONN_SCJG_API"] = handle.url
        try:
            for source in load_sources():
                run_steps(layout, source.id, BASE_DATE)
        finally:
            os.environ.pop("AIRFLOW_CONN_SCJG_API", None) if old is None else os.environ.update(
                AIRFLOW_CONN_SCJG_API=old)
    with data_dir(layout):
        build_step("2026-11-02T01:00:00+08:00")
        publish_step("2026-11-02T01:00:00+08:00")
    return layout


@pytest.fixture(scope="module")
def snapshot(library) -> dict[str, Any]:
    """What the oracle reads: subjects and certificates (with their newest licence) by holder."""
    from warehouse.snapshot import current

    snap = current(library)
    cols = ("cert_key", "licence_type_code", "cert_number", "holder_code", "holder_name", "issuer_name",
            "issue_date", "valid_from", "valid_until", "status", "licence_id", "token")
    rows = query(snap, f"""
        SELECT {', '.join('c.' + c for c in cols[:-2])}, l.licence_id, l.token
        FROM certificates c LEFT JOIN (
            SELECT cert_key, arg_max(licence_id, version) AS licence_id, arg_max(token, version) AS token
            FROM licences GROUP BY cert_key) l USING (cert_key)""")
    certs: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        certs[r[3]].append(dict(zip(cols, r)))
    subjects = {code: {"kind": kind, "name": name, "legal_rep_code": rep}
                for code, kind, name, rep in query(snap, "SELECT subject_code, kind, name, legal_rep_code FROM subjects")}
    return {"certs": certs, "subjects": subjects}


@pytest.fixture(scope="module")
def service(library):
    app = create_app(library, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: AT
    with TestClient(app) as http:
        key = make_client(app.state.service_store, client_id="counter-oo")  # every type granted
        yield app, http, key


# ----------------------------------------------------------------------------- the oracle
def _date(value) -> dt.date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else \
        dt.date.fromisoformat(str(value)[:10])


def _counts(c: dict, day: dt.date) -> bool:
    start, end = _date(c["valid_from"]) or _date(c["issue_date"]), _date(c["valid_until"])
    return (c["status"] == "01" and c["licence_id"] is not None and (end is None or day <= end)
            and (start is None or day >= start))


def _outcome(c: dict, day: dt.date) -> str:
    """Why a licence on file does (``ok``) or does not count on ``day``."""
    start, end = _date(c["valid_from"]) or _date(c["issue_date"]), _date(c["valid_until"])
    if c["status"] != "01":
        return "status_not_valid"
    if end is not None and day > end:
        return "expired"
    if start is not None and day < start:
        return "not_yet_valid"
    return "ok" if c["licence_id"] else "not_signed"


def _evaluate(expr, certs: list[dict], day: dt.date, reg) -> tuple[bool, list[dict], list[str], list[tuple]]:
    """(met, licences used, names still missing, (licence id, reason) of licences that do not count)."""
    if isinstance(expr, str):
        lt = reg.licence_type(expr)
        mine = [c for c in certs if c["licence_type_code"] == lt.code]
        usable = [c for c in mine if _outcome(c, day) == "ok"]
        if not usable:
            return False, [], [lt.name], [(c["licence_id"], _outcome(c, day)) for c in mine]
        best = max(usable, key=lambda c: (_date(c["valid_until"]) or dt.date.max, _date(c["issue_date"]) or dt.date.min))
        return True, [best], [], []
    if isinstance(expr, MaterialRef):  # the material library is empty here
        return False, [], [expr.name], []
    parts = [_evaluate(m, certs, day, reg) for m in expr.members]
    rejected = [r for p in parts for r in p[3]]
    if isinstance(expr, AnyOf):
        for met, used, _, _ in parts:
            if met:
                return True, used, [], []
        return False, [], [expr_text(expr, reg)], rejected
    assert isinstance(expr, AllOf)
    return all(p[0] for p in parts), [u for p in parts for u in p[1]], [m for p in parts for m in p[2]], rejected


def expected_answer(items, applicant: str, agent: str | None, certs: dict[str, list[dict]], day: dt.date,
                    person: bool) -> list[dict]:
    """Deduplicated requirement lines, in first-seen order."""
    reg = load_registry()
    lines: dict[tuple, dict] = {}
    for item in items:
        for m in item.materials:
            # 经办人: the agent given, else a person applying in person is their own; an organisation needs one
            holder = applicant if m.holder == "applicant" else agent or (applicant if person else None)
            rejected: list[tuple] = []
            if m.satisfied_by is None:
                key, met, used, missing = ("material", item.code, m.key), False, [], []
            elif holder is None:
                key, met, used, missing = ("must_submit", m.holder, expr_canonical(m.satisfied_by)), False, [], \
                    [expr_text(m.satisfied_by, reg)]
            else:
                met, used, missing, rejected = _evaluate(m.satisfied_by, certs.get(holder, []), day, reg)
                key = (("on_file", m.holder, tuple(sorted(u["licence_id"] for u in used))) if met
                       else ("must_submit", m.holder, expr_canonical(m.satisfied_by)))
            line = lines.setdefault(key, {
                "status": "on_file" if met else "must_submit", "holder_role": m.holder,
                "on_file": [(u["licence_id"], u["issuer_name"], _date(u["valid_until"]) and _date(u["valid_until"]).isoformat())
                            for u in used],
                "missing": missing, "not_counted": rejected, "serves": []})
            line["serves"].append((item.code, m.key))
    return list(lines.values())


def actual_answer(body: dict) -> list[dict]:
    return [{"status": r["status"], "holder_role": r["holder_role"],
             "on_file": [(f["licence_id"], f["issuing_department"], f["valid_until"]) for f in r["on_file"]],
             "missing": r["missing"], "not_counted": [(x["licence_id"], x["reason_code"]) for x in r["not_counted"]],
             "serves": [(s["item_code"], s["material_key"]) for s in r["serves"]]}
            for r in body["requirements"]]


def ask(service, applicant: str, code_type: str, agent: str | None, item_codes: list[str]) -> dict:
    app, http, key = service
    case = f"OO-{next(_cases)}"
    app.state.service_store.accept_application(case, item_codes[0], applicant, "clerk-9", "counter-oo", at=AT)
    body = {"applicant": {"code": applicant, "code_type": code_type, "agent_code": agent}, "items": item_codes}
    resp = http.post("/api/v1/once-only", json=body, headers=purpose_headers(key, case=case, item=item_codes[0]))
    assert resp.status_code == 200, resp.text
    # exactly the JSON of the documented model: every field, no other, each of its type
    assert OnceOnlyResponse.model_validate_json(resp.content).model_dump(mode="json") == resp.json()
    return resp.json()


def _candidates(snapshot, kind: str) -> list[tuple[str, str | None]]:
    return sorted((code, s["legal_rep_code"] if kind == "organisation" else None)
                  for code, s in snapshot["subjects"].items() if s["kind"] == kind)


def _on_file(lines: list[dict]) -> int:
    return sum(line["status"] == "on_file" for line in lines)


# ----------------------------------------------------------------------------- tests
CATALOGUE = load_catalogue()


@pytest.mark.parametrize("item", CATALOGUE.items, ids=[i.code for i in CATALOGUE.items])
def test_every_item_against_simulated_data(item, snapshot, service):
    kinds = {"person": ["person"], "organisation": ["organisation"], "any": ["person", "organisation"]}
    day = AT.date()
    for kind in kinds[item.applicant_type]:
        code_type = "111" if kind == "person" else "001"
        scored = [(_on_file(expected_answer([item], code, agent, snapshot["certs"], day, kind == "person")), code, agent)
                  for code, agent in _candidates(snapshot, kind)]
        assert scored, f"no {kind} in the simulated library"
        rich = max(scored, key=lambda s: (s[0], s[1]))
        poor = min(scored, key=lambda s: (s[0], s[1]))
        assert rich[0] >= 1, f"{item.code} {item.name}: no {kind} has any of its licences on file"
        for _, code, agent in (rich, poor):
            body = ask(service, code, code_type, agent, [item.code])
            expected = expected_answer([item], code, agent, snapshot["certs"], day, kind == "person")
            assert actual_answer(body) == expected, (item.code, kind, code)
            assert body["on_file_count"] == _on_file(expected)
            assert body["must_submit_count"] == len(expected) - _on_file(expected)
        assert poor[0] <= rich[0]


def test_construction_bundle_deduplicates_and_everything_on_file_verifies(snapshot, service):
    """The five construction stages together, for the enterprise whose project reached 竣工验收."""
    reg = load_registry()
    stage_items = [i for i in CATALOGUE.items if i.code in
                   ("000173020000", "000173021000", "000173022000", "000182010000", "000182020000")]
    filing = reg.licence_type("completion_filing").code
    holders = sorted(code for code, cs in snapshot["certs"].items() if any(c["licence_type_code"] == filing for c in cs))
    assert holders, "the simulator issues a complete construction case"
    code = holders[0]
    agent = snapshot["subjects"].get(code, {}).get("legal_rep_code")
    body = ask(service, code, "001", agent, [i.code for i in stage_items])
    expected = expected_answer(stage_items, code, agent, snapshot["certs"], AT.date(), False)
    assert actual_answer(body) == expected
    # the builder's 营业执照 is asked by all five stages and answered once
    business = [line for line in expected if line["serves"][0][1] == "business_licence"]
    assert len(business) == 1 and len(business[0]["serves"]) == 5
    # every on-file licence verifies against the published trust material
    app, http, _ = service
    tokens = {c["licence_id"]: c["token"] for cs in snapshot["certs"].values() for c in cs}
    for line in body["requirements"]:
        for f in line["on_file"]:
            verdict = http.post("/api/v1/verify", json={"token": tokens[f["licence_id"]]}).json()
            assert verdict["outcome"] == "valid", (f["licence_id"], verdict)


@pytest.mark.parametrize("kind", ["person", "organisation"])
def test_bundle_of_every_item_of_a_kind(kind, snapshot, service):
    items = [i for i in CATALOGUE.items if i.applicant_type in (kind, "any")]
    scored = sorted(((_on_file(expected_answer(items, code, agent, snapshot["certs"], AT.date(), kind == "person")),
                      code, agent)
                     for code, agent in _candidates(snapshot, kind)), reverse=True)
    _, code, agent = scored[0]
    body = ask(service, code, "111" if kind == "person" else "001", agent, [i.code for i in items])
    expected = expected_answer(items, code, agent, snapshot["certs"], AT.date(), kind == "person")
    assert actual_answer(body) == expected
    assert sum(len(line["serves"]) for line in expected) == sum(len(i.materials) for i in items)
    assert len(expected) < sum(len(i.materials) for i in items), "some requirement is shared and listed once"


def test_cross_check_findings_are_listed(library, snapshot, service):
    """人社 pushes a 社会保障卡 whose holder name differs by one character from the population
    register: after ingest and build, the once-only answer lists the 比对 finding; a holder
    whose departments agree gets none."""
    from exchange.pipeline import build_step, publish_step
    from exchange.results import IssueGrants

    app, http, _ = service
    reg = load_registry()
    renshe = reg.departments["renshe"]
    persons = [code for code, s in snapshot["subjects"].items() if s["kind"] == "person"
               and len({c["holder_name"] for c in snapshot["certs"].get(code, [])} | {s["name"]}) == 1]
    assert len(persons) >= 2
    target, agreeing = persons[0], persons[1]
    name = snapshot["subjects"][target]["name"]
    other = name[:-1] + ("明" if name[-1] != "明" else "亮")
    key = make_client(app.state.service_store, department=renshe.code, department_name=renshe.name,
                      client_id="renshe-ssc", types=[], roles=("issuer",))
    IssueGrants(app.state.service_store).grant(renshe.code, reg.licence_type("social_security_card").code,
                                               by="test", at=AT)
    resp = http.post("/api/v1/results", headers={"X-API-Key": key}, json={"records": [{
        "licence_type": "social_security_card", "cert_number": f"SSC{target[-8:]}", "holder_code": target,
        "holder_code_type": "111", "holder_name": other, "issue_date": "2026-10-01",
        "valid_until": "2036-09-30"}]})
    assert resp.status_code == 202, resp.text
    loaded = run_steps(library, "hub_results", AT.date())["loaded"]
    assert loaded["certificates_new"] == 1
    with data_dir(library):
        build_step(AT.isoformat())
        publish_step(AT.isoformat())

    item = next(i for i in CATALOGUE.items if i.code == "000141020000")  # newborn bundle: asks for 社会保障卡
    body = ask(service, target, "111", None, [item.code])
    (finding,) = [f for f in body["findings"] if f["field"] == "name"]
    assert {v["value"] for v in finding["values"]} == {name, other}
    assert any(v["record"] == "社会保障卡" for v in finding["values"])
    ssc = [line for line in body["requirements"] if line["serves"][0]["material_key"] == "parent_ssc"]
    assert ssc[0]["status"] == "on_file" and ssc[0]["on_file"][0]["issuing_department"] == renshe.name
    assert ask(service, agreeing, "111", None, [item.code])["findings"] == []


def test_licences_on_file_that_do_not_count_say_why(snapshot, service):
    """A holder with an expired or not-valid licence: it is listed under not_counted with its reason."""
    items = [i for i in CATALOGUE.items if i.applicant_type in ("person", "any")]
    wanted = {k for i in items for m in i.materials if m.satisfied_by is not None
              for k in expr_keys(m.satisfied_by)}
    codes = {load_registry().licence_type(k).code for k in wanted}
    holders = sorted(code for code, cs in snapshot["certs"].items()
                     if snapshot["subjects"].get(code, {}).get("kind") == "person"
                     and any(c["licence_type_code"] in codes and _outcome(c, AT.date()) != "ok" for c in cs))
    assert holders, "the simulated library holds persons with licences that do not count"
    code = holders[0]
    body = ask(service, code, "111", None, [i.code for i in items])
    expected = expected_answer(items, code, None, snapshot["certs"], AT.date(), True)
    assert actual_answer(body) == expected
    reasons = {reason for line in expected for _, reason in line["not_counted"]}
    assert reasons and reasons <= {"status_not_valid", "expired", "not_yet_valid", "not_signed"}
