"""The hot lane answers the two hot routes exactly as the whole FastAPI stack does: same answers,
same denials, same usage-log records; it takes only what the router would give those routes."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from exchange.api.core import hotlane
from exchange.api.core.hotlane import HubApp
from exchange.api.core.lean import lean_route
from tests.exchange.factories import purpose_headers
from tests.exchange.test_access import app  # noqa: F401 (fixture)
from tests.exchange.test_api import NOW, RESTAURANT, keyring, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("store_backend")  # on SQLite and on PostgreSQL

POLICE, MARKET = "11330100002496126K", "113301000024962067"


@pytest.fixture()
def lane_calls(monkeypatch):
    """How many requests the hot lane answered."""
    calls = []
    real = HubApp._answer

    async def counted(self, route, scope, receive, send):
        calls.append((scope["method"], scope["path"]))
        await real(self, route, scope, receive, send)

    monkeypatch.setattr(HubApp, "_answer", counted)
    return calls


def _requests(app, world) -> list[tuple[str, str, dict, dict]]:
    """(name, method+path, headers, request kwargs): every rule of the access order, and bad input."""
    store, keys = app.state.service_store, app.state.keys
    lic, person = world["lic"]["id_card"], world["person"]["subject_code"]
    co = world["co"]["subject_code"]
    store.accept_application("H-1", RESTAURANT, lic["holder_code"], "clerk-1", "counter", at=NOW)
    store.accept_application("H-2", RESTAURANT, co, "clerk-1", "counter", at=NOW)
    read = f"/api/v1/licences/{lic['licence_id']}"
    good = purpose_headers(keys[POLICE], case="H-1")
    body = {"applicant": {"code": person, "code_type": "111"}, "items": [RESTAURANT, "000173010000"]}
    no_clerk = {k: v for k, v in good.items() if k != "X-Clerk-Id"}
    cases = [
        ("read granted", "GET " + read, good, {}),
        ("read without key", "GET " + read, {k: v for k, v in good.items() if k != "X-API-Key"}, {}),
        ("read with a wrong key", "GET " + read, {**good, "X-API-Key": "ow_not-a-key"}, {}),
        ("read without clerk", "GET " + read, no_clerk, {}),
        ("read with a blank case", "GET " + read, {**good, "X-Case-Number": "  "}, {}),
        ("read with a long case", "GET " + read, {**good, "X-Case-Number": "K" * 65}, {}),
        ("read for an unknown item", "GET " + read, {**good, "X-Purpose-Item": "999999999999"}, {}),
        ("read not granted", "GET " + read, purpose_headers(keys[MARKET], case="H-1"), {}),
        ("read for a case not accepted", "GET " + read, purpose_headers(keys[POLICE], case="H-404"), {}),
        ("read for another holder's case", "GET " + read, purpose_headers(keys[POLICE], case="H-2"), {}),
        ("read with a bad code", "GET " + read, purpose_headers(keys[POLICE], case="H-9", code="NOPE"), {}),
        ("read an unknown licence", "GET /api/v1/licences/1.2.156.3005.2.nope", good, {}),
        ("read an unknown licence unauthenticated", "GET /api/v1/licences/x%20y", {}, {}),
        ("once-only", "POST /api/v1/once-only", purpose_headers(keys[POLICE], case="H-1"), {"json": {
            **body, "applicant": {"code": lic["holder_code"], "code_type": "111"}}}),
        ("once-only withheld types", "POST /api/v1/once-only", purpose_headers(keys[MARKET], case="H-2"),
         {"json": {"applicant": {"code": co, "code_type": "001"}, "items": [RESTAURANT]}}),
        ("once-only without purpose", "POST /api/v1/once-only", no_clerk, {"json": body}),
        ("once-only not authorised", "POST /api/v1/once-only", purpose_headers(keys[POLICE], case="H-404"),
         {"json": body}),
        ("once-only unknown item", "POST /api/v1/once-only", purpose_headers(keys[POLICE], case="H-1"),
         {"json": {**body, "items": ["999999999999"]}}),
        ("once-only bad identifier", "POST /api/v1/once-only", purpose_headers(keys[POLICE], case="H-1"),
         {"json": {**body, "applicant": {"code": "33010619800102001X", "code_type": "111"}}}),
        ("once-only not JSON", "POST /api/v1/once-only", {**good, "content-type": "application/json"},
         {"content": b'{"applicant": '}),
        ("once-only no body", "POST /api/v1/once-only", {**good, "content-type": "application/json"}, {}),
        ("once-only as text", "POST /api/v1/once-only", {**good, "content-type": "text/plain"},
         {"content": json.dumps(body).encode()}),
        ("once-only bad model", "POST /api/v1/once-only", good, {"json": {"items": [], "extra": 1}}),
    ]
    return cases


def _comparable(resp) -> tuple:
    body = resp.json()
    copy = body.get("use_copy") if isinstance(body, dict) else None
    if copy:  # the token carries the record's seq: compared without it below
        token = copy.pop("token")
        payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        payload.pop("log_seq")
        copy["payload"] = payload
    return resp.status_code, resp.headers.get("content-type"), body


def _record(app) -> dict:
    rec = json.loads(app.state.service_store.log_records()[-1].record)
    return {k: v for k, v in rec.items() if k not in ("seq", "at", "holder_sealed")}


def test_both_paths_give_the_same_answers_denials_and_log_records(app, world, lane_calls):
    http, store = app.state.http, app.state.service_store
    seen_codes = set()
    for name, what, headers, kw in _requests(app, world):
        method, path = what.split(" ", 1)
        answers, records = [], []
        for lane in (True, False):
            app.state.hot_lane = lane
            app.reset_lane()
            before, calls = len(store.log_records()), len(lane_calls)
            resp = http.request(method, path, headers=headers, **kw)
            assert len(lane_calls) == calls + lane, (name, lane)  # the lane took it only when on
            answers.append(_comparable(resp))
            logged = len(store.log_records()) - before
            records.append((logged, _record(app) if logged else None))
            seen_codes.add(resp.json().get("error", {}).get("code") if resp.status_code >= 400 else "ok")
        assert answers[0] == answers[1], (name, answers)
        assert records[0] == records[1], (name, records)
    assert {"ok", "unauthenticated", "purpose_required", "invalid_purpose", "not_granted", "holder_not_authorised",
            "authorisation_code_invalid", "licence_not_found", "invalid_request"} <= seen_codes, seen_codes


def test_every_read_through_the_lane_is_logged_before_its_answer(app, world, lane_calls):
    """Granted and denied reads on the lane each leave one usage-log record, with the rule."""
    http, store = app.state.http, app.state.service_store
    lic = world["lic"]["id_card"]
    store.accept_application("L-1", RESTAURANT, lic["holder_code"], "clerk-1", "counter", at=NOW)
    rules = []
    for headers in (purpose_headers(app.state.keys[POLICE], case="L-1"),
                    purpose_headers(app.state.keys[MARKET], case="L-1"),
                    purpose_headers(app.state.keys[POLICE], case="L-2"), {}):
        before = len(store.log_records())
        http.get(f"/api/v1/licences/{lic['licence_id']}", headers=headers)
        assert len(store.log_records()) == before + 1
        rules.append(json.loads(store.log_records()[-1].record)["rule"])
    assert rules == ["application:counter", "not_granted", "holder_not_authorised", "unauthenticated"]
    assert len(lane_calls) == 4


@pytest.mark.parametrize("path", ["/api/v1/licences/", "/api/v1/licences/a/b", "/api/v1/licences/x/",
                                  "/api/v1/once-only/", "/api/v1/once-onl", "/api/v1/licencesX"])
def test_other_paths_go_the_whole_way(app, world, lane_calls, path):
    http = app.state.http
    app.reset_lane()
    resp = http.get(path, follow_redirects=False)
    assert not lane_calls and resp.status_code in (307, 404, 405), (path, resp.status_code)


def test_other_methods_and_the_lane_off_by_environment(app, world, lane_calls, monkeypatch):
    http = app.state.http
    lic = world["lic"]["id_card"]
    assert http.post(f"/api/v1/licences/{lic['licence_id']}").status_code == 405
    assert http.get("/api/v1/once-only").status_code == 405
    assert not lane_calls
    monkeypatch.setenv(hotlane.ENV_HOT_LANE, "0")
    app.reset_lane()
    assert http.get(f"/api/v1/licences/{lic['licence_id']}").status_code == 401
    assert not lane_calls


def test_the_router_agrees_with_the_lane(app):
    """For every probe path (and more), the router's first matching route is the hot route."""
    from starlette.routing import Match

    hot = [r for r in app.router.routes if getattr(r, "hot", False)]
    assert {r.path for r in hot} == {"/api/v1/licences/{licence_id}", "/api/v1/once-only"}
    for route in hot:
        for path in hotlane.probe_paths(route) + [route.path.replace("{licence_id}", v)
                                                  for v in ("print", "status", "%E8%AF%81")]:
            if "{" in path:
                continue
            scope = {"type": "http", "path": path, "method": next(iter(route.methods)), "root_path": ""}
            first = next(r for r in app.router.routes if r.matches(scope)[0] is not Match.NONE)
            assert first is route, (path, first)


def test_a_hot_route_shadowed_by_an_earlier_route_is_refused():
    app, router = HubApp(), APIRouter()

    @router.get("/things/{name}")
    async def shadow(name: str) -> dict:
        return {"shadow": name}

    @lean_route(router, "/things/{name}", methods=["GET"], hot=True)
    async def thing(request: Request, name: str) -> JSONResponse:
        """A thing."""
        return JSONResponse({"hot": name})

    app.include_router(router)
    with TestClient(app) as http, pytest.raises(RuntimeError, match="router gives to '/things/{name}' first"):
        http.get("/things/x")


def test_an_unhandled_error_on_the_lane_is_a_500_as_on_the_stack():
    app, router = HubApp(), APIRouter()

    @lean_route(router, "/boom/{name}", methods=["GET"], hot=True)
    async def boom(request: Request, name: str) -> JSONResponse:
        """Fails."""
        raise ZeroDivisionError(name)

    app.include_router(router)
    answers = []
    for lane in (True, False):
        app.state.hot_lane = lane
        app.reset_lane()
        with TestClient(app, raise_server_exceptions=False) as http:
            resp = http.get("/boom/x")
            answers.append((resp.status_code, resp.text))
        with TestClient(app) as http, pytest.raises(ZeroDivisionError):
            http.get("/boom/x")
    assert answers == [(500, "Internal Server Error")] * 2
