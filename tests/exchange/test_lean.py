"""Lean routes answer bad requests as FastAPI's own routes do, document the same operation, refuse what they cannot do."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from exchange.api.core.lean import lean_route
from exchange.api.schemas.onceonly import OnceOnlyRequest
from exchange.api.schemas.licences import Licence


def _app() -> FastAPI:
    app, router = FastAPI(), APIRouter()

    @router.post("/plain/{name}")
    async def plain(request: Request, name: Annotated[str, Path()], body: OnceOnlyRequest) -> dict:
        return {"name": name, "items": body.items}

    @lean_route(router, "/lean/{name}", methods=["POST"])
    async def lean(request: Request, name: Annotated[str, Path()], body: OnceOnlyRequest) -> dict:
        return JSONResponse({"name": name, "items": body.items})

    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def errors(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"errors": [{"loc": list(e["loc"]), "type": e["type"]} for e in exc.errors()]},
                            status_code=422)

    return app


GOOD = {"applicant": {"code": "330106198001020011", "code_type": "111"}, "items": ["000120003000"]}


@pytest.mark.parametrize("content, headers", [
    ('{"applicant": ', {"content-type": "application/json"}),  # not JSON
    ("", {"content-type": "application/json"}),  # no body
    ('{"applicant": {"code": "x", "code_type": "999"}, "items": []}', {"content-type": "application/json"}),
    ('{"items": ["a"], "extra": 1}', {"content-type": "application/json; charset=utf-8"}),
    ('[1, 2]', {"content-type": "application/vnd.api+json"}),
    ('{"applicant": {"code": "x", "code_type": "111"}, "items": ["a"]}', {"content-type": "text/plain"}),
    ('{"applicant": {"code": "x", "code_type": "111"}, "items": ["a"]}', {}),
])
def test_bad_bodies_fail_as_on_a_fastapi_route(content, headers):
    with TestClient(_app()) as http:
        plain = http.post("/plain/n", content=content, headers=headers)
        lean = http.post("/lean/n", content=content, headers=headers)
    assert lean.status_code == plain.status_code == 422, (plain.text, lean.text)
    assert lean.json() == plain.json()


def test_good_body_and_path_parameter_reach_the_endpoint():
    with TestClient(_app()) as http:
        assert http.post("/lean/abc", json=GOOD).json() == {"name": "abc", "items": ["000120003000"]}
        assert http.post("/plain/abc", json=GOOD).json() == {"name": "abc", "items": ["000120003000"]}


def test_the_openapi_operation_is_the_one_fastapi_documents():
    spec = _app().openapi()["paths"]
    plain, lean = spec["/plain/{name}"]["post"], spec["/lean/{name}"]["post"]
    assert lean["parameters"] == plain["parameters"] and lean["requestBody"] == plain["requestBody"]


def test_signatures_a_lean_route_cannot_serve_are_refused():
    router = APIRouter()

    async def dep() -> int:
        return 1

    with pytest.raises(TypeError, match="only the request"):
        @lean_route(router, "/x", methods=["GET"])
        async def with_dependency(request: Request, n: Annotated[int, Depends(dep)]) -> None: ...
    with pytest.raises(TypeError, match="only the request"):
        @lean_route(router, "/y", methods=["GET"])
        async def with_query(request: Request, q: str) -> None: ...
    with pytest.raises(TypeError, match="must be str"):
        @lean_route(router, "/z/{n}", methods=["GET"])
        async def int_path(request: Request, n: int) -> None: ...
    with pytest.raises(TypeError, match="needs a `request"):
        @lean_route(router, "/w/{n}", methods=["GET"])
        async def no_request(n: str) -> None: ...


def test_the_licence_answer_is_a_valid_licence(world, client):
    from tests.exchange.test_api import as_case

    lic = world["lic"]["food"]
    resp = client.get(f"/api/v1/licences/{lic['licence_id']}", headers=as_case(client, world["co"]["subject_code"]))
    assert resp.headers["content-type"] == "application/json"
    parsed = Licence.model_validate_json(resp.content)
    assert list(resp.json()) == list(Licence.model_fields)  # every field, in the model's order
    assert parsed.use_copy is not None and parsed.token == lic["token"]


from tests.exchange.test_api import client, keyring, world  # noqa: E402,F401 (fixtures)


def test_credentials_of_reads_the_headers_as_starlette_does():
    from starlette.requests import Request as StarletteRequest

    from exchange.api.core.access import RequestCredentials, credentials_of

    headers = [(b"host", b"x"), (b"x-api-key", b" ow_k.secret "), (b"x-purpose-item", b"000120003000"),
               (b"x-case-number", b"HZ-1"), (b"x-case-number", b"HZ-2"),  # the first one counts
               (b"x-clerk-id", "办事员".encode("utf-8")), (b"x-authorisation-code", b"")]
    request = StarletteRequest({"type": "http", "method": "GET", "path": "/", "headers": headers})
    h = request.headers
    assert credentials_of(request) == RequestCredentials(
        "ow_k.secret", h.get("x-purpose-item"), h.get("x-case-number"), h.get("x-clerk-id"), None, None)
    assert credentials_of(request).case_number == "HZ-1"
    empty = StarletteRequest({"type": "http", "method": "GET", "path": "/", "headers": []})
    assert credentials_of(empty) == RequestCredentials(None, None, None, None, None, None)
