"""Lean routes for the hot paths: FastAPI documents them, the endpoint does its own work.

FastAPI's request handler solves every parameter and dependency of a route per request
(for a route with five dependencies ~130 µs of the ~700 µs a certificate read took under
load, measured with py-spy). A :class:`LeanRoute` keeps what FastAPI derives from the
endpoint's signature — the OpenAPI operation, the path parameters, the body model — but
its handler only passes the request, the path parameters as matched (strings) and the
body validated against its model; the endpoint reads everything else (credentials,
snapshot lease, app state) from the request itself.

Allowed signatures: ``request: Request``, ``str`` path parameters, at most one body
parameter that is a pydantic model; anything else (dependencies, query, header or cookie
parameters) is refused when the route is declared. Request bodies fail the way FastAPI
fails them: ``RequestValidationError`` (answered 422 ``invalid_request``) with the same
``json_invalid`` / ``missing`` / model error locations under ``"body"``.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, request_response
from pydantic import BaseModel, ValidationError


class LeanRoute(APIRoute):
    """An :class:`APIRoute` whose handler skips FastAPI's per-request parameter solving."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        d = self.dependant
        where = f"lean route {path} ({endpoint.__name__})"
        if d.dependencies or d.query_params or d.header_params or d.cookie_params:
            raise TypeError(f"{where}: takes only the request, str path parameters and one body model")
        if d.request_param_name != "request":
            raise TypeError(f"{where}: the endpoint needs a `request: Request` parameter")
        for p in d.path_params:
            if p.field_info.annotation is not str:
                raise TypeError(f"{where}: path parameter {p.name} must be str (passed as matched)")
        self._body: tuple[str, type[BaseModel]] | None = None
        if d.body_params:
            (field,) = d.body_params
            model = field.field_info.annotation
            if len(d.body_params) != 1 or not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"{where}: the body must be one pydantic model")
            self._body = (field.name, model)
        self.handler = self.get_route_handler()
        self.app = request_response(self.handler)  # APIRoute built it before _body was known
        #: answered by the hot lane (exchange.api.core.hotlane) ahead of the middleware stack
        self.hot = bool(getattr(endpoint, "_hot_lane", False))

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint, body = self.endpoint, getattr(self, "_body", None)

        async def handler(request: Request) -> Response:
            if body is None:
                return await endpoint(request, **request.path_params)
            name, model = body
            return await endpoint(request, **request.path_params, **{name: await json_body(request, model)})

        return handler


def lean_route(router: APIRouter, path: str, *, methods: list[str], hot: bool = False,
               **kwargs: Any) -> Callable[[Any], Any]:
    """Declare ``path`` on ``router`` as a :class:`LeanRoute` (``router.get``'s arguments otherwise);
    ``hot``: the hot lane answers it ahead of the middleware stack and the router."""

    def declare(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint._hot_lane = hot  # type: ignore[attr-defined]  # kept when a router is included
        router.add_api_route(path, endpoint, methods=methods, route_class_override=LeanRoute, **kwargs)
        return endpoint

    return declare


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def json_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """The request body as ``model``, or :class:`RequestValidationError` as FastAPI raises it."""
    raw = await request.body()
    data: Any = None
    if raw:
        content_type = request.headers.get("content-type")
        if content_type and (content_type == "application/json" or _is_json(content_type)):
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise RequestValidationError(
                    [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                      "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from exc
        else:  # not declared JSON: FastAPI does not parse it either, and the model refuses bytes
            data = raw
    if data is None:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required",
                                       "input": None}])
    try:
        return model.model_validate(data, from_attributes=True)  # as FastAPI validates a body field
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)],
                                     body=data) from None
