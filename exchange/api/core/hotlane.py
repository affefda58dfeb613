"""The hot lane: the two hot routes answered ahead of the middleware stack and the router.

A certificate read (``GET /api/v1/licences/{licence_id}``) and a once-only check
(``POST /api/v1/once-only``) are :class:`~exchange.api.core.lean.LeanRoute` s declared
``hot=True``. :class:`HubApp` (the service's FastAPI class) hands an HTTP request whose
method and path such a route matches straight to that route's handler — the very
endpoint the router would call, so authentication, the purpose check, grants, holder
authorisation and the usage-log commit are the same code — and answers its exceptions
with the app's own exception handlers, as Starlette's exception middleware does (an
unhandled one: ``500 Internal Server Error`` and re-raised, as its server-error
middleware does). What the lane skips is the per-request cost of the layers that do
nothing for these routes: the server-error, page-session (API paths carry none) and
exception middlewares, and matching the path against every route before it.

It takes a request only when the router would give it to the same route: the route
matches fully (path and method), no route listed before it matches the path at all
(checked once per app for each hot route, when the lane is built: every earlier route
is asked about probe paths of the hot route's shape, and the lane refuses to start if
any would take one; tests probe further), and ``root_path`` is empty. Anything else goes
the whole way. ``ONEWINDOW_HOT_LANE=0`` (or ``app.state.hot_lane = False``) turns the
lane off; tests compare both paths answer for answer.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from starlette._exception_handler import _lookup_exception_handler
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from exchange.api.core.lean import LeanRoute

ENV_HOT_LANE = "ONEWINDOW_HOT_LANE"
#: path shapes the start-up check probes each hot route's predecessors with ({} = a parameter)
_PROBE_PARAMS = ("1.2.156.3005.2.11100000000013338W.0001", "x", "verify", "print", "a%2Fb", "..")


class HubApp(FastAPI):
    """The service's FastAPI app, with the hot lane in front (see the module doc)."""

    _lane: list[tuple[str, LeanRoute]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            lane = self._lane
            if lane is None:
                lane = self._lane = self._build_lane()
            if lane:
                path = scope["path"]
                for prefix, route in lane:
                    if path.startswith(prefix):
                        match, child = route.matches(scope)
                        if match is Match.FULL:
                            scope = {**scope, **child, "app": self}
                            await self._answer(route, scope, receive, send)
                            return
                        break
        await super().__call__(scope, receive, send)

    def _build_lane(self) -> list[tuple[str, LeanRoute]]:
        """(literal path prefix, route) of each hot route; [] when the lane is off."""
        if os.environ.get(ENV_HOT_LANE, "1").strip() == "0" or not getattr(self.state, "hot_lane", True):
            return []
        lane: list[tuple[str, LeanRoute]] = []
        for i, route in enumerate(self.router.routes):
            if isinstance(route, LeanRoute) and route.hot:
                check_first_match(self.router.routes[:i], route)
                lane.append((route.path.split("{", 1)[0], route))
        return lane

    async def _answer(self, route: LeanRoute, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await route.handler(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:  # as ServerErrorMiddleware: a 500 answer, then the exception
                server_error = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
                if server_error is None:
                    response = PlainTextResponse("Internal Server Error", status_code=500)
                else:
                    response = await _call(server_error, request, exc)
                await response(scope, receive, send)
                raise
            response = await _call(handler, request, exc)
            exc.__traceback__ = None
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Any:
        """The handler Starlette's ExceptionMiddleware would pick (500 / Exception are not its)."""
        handlers = {k: v for k, v in self.exception_handlers.items() if k not in (500, Exception)}
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        return _lookup_exception_handler({k: v for k, v in handlers.items() if not isinstance(k, int)}, exc)

    def reset_lane(self) -> None:
        """Rebuild the lane on the next request (after routes or ``state.hot_lane`` changed)."""
        self._lane = None


async def _call(handler: Any, request: Request, exc: Exception) -> Any:
    if is_async_callable(handler):
        return await handler(request, exc)
    return await run_in_threadpool(handler, request, exc)


def probe_paths(route: LeanRoute) -> list[str]:
    """Paths of ``route``'s shape: each parameter replaced by each probe value."""
    import re

    return [re.sub(r"\{[^}]*\}", value, route.path) for value in _PROBE_PARAMS]


def check_first_match(earlier: list[Any], route: LeanRoute) -> None:
    """Refuse a hot route that a route listed before it could take (for any method)."""
    for path in probe_paths(route):
        for method in route.methods or ("GET",):
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            if route.matches(scope)[0] is not Match.FULL:
                continue
            for other in earlier:
                if other.matches(scope)[0] is not Match.NONE:
                    raise RuntimeError(f"hot route {route.path} would take {method} {path}, "
                                       f"which the router gives to {getattr(other, 'path', other)!r} first")
