"""The FastAPI application: ``create_app(layout)`` wires settings, snapshot store, routes, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from exchange.api.core import audit, logs, openapi, tls
from exchange.api.core.config import Settings
from exchange.api.core.hotlane import HubApp
from exchange.api.core.snapshot import SnapshotStore
from exchange.api.deps import TrustCache
from exchange.api.exceptions import ApiError
from exchange.api.routes import applications, health, items, licences, materials, onceonly, subjects, usagelog
from exchange.api.routes import quality as quality_routes
from exchange.api.routes import results as results_routes
from exchange.api.routes import status as status_routes
from exchange.onceonly.catalogue import load_catalogue
from warehouse.datadir import Layout

log = logging.getLogger("exchange.api")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _error(status: int, code: str, message: str, detail: object = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict = {"code": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status_code == 503 else None
        return _error(exc.status_code, exc.code, exc.message, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                    for e in exc.errors()]
        where = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
        return _error(422, "invalid_request", f"请求参数不正确。Invalid request: {where}",
                      {"problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return _error(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


def create_app(layout: Layout | None = None, *, settings: Settings | None = None,
               watch_interval: float | None = 1.0) -> FastAPI:
    """Build the service for ``layout`` (default: the data directory from the environment).

    ``watch_interval`` is how often a background thread checks ``snapshots/CURRENT``
    (None: only the per-request check).
    """
    settings = settings or Settings.from_env()
    if layout is not None:
        settings = replace(settings, data_dir=layout.root)
    layout = settings.layout
    store = SnapshotStore(layout)
    logs.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.refresh(wait=True)
        if store.current is None:
            log.warning("no snapshot yet (%s); answering 503 until the pipeline publishes one",
                        store.last_error or layout.current_snapshot_pointer)
        if watch_interval:
            store.start_watching(watch_interval)
        audit.start(app)
        from exchange.api.core.certexpiry import log_expiring, now_for_expiry

        log_expiring(app, now_for_expiry(app))  # 证书到期提醒 in the service log at start
        try:
            yield
        finally:
            audit.stop(app)
            store.close()

    app = HubApp(  # FastAPI, with the hot lane for the two hot routes (exchange.api.core.hotlane)
        title="OneWindow Hub",
        summary="一窗受理数据共享与电子证照枢纽 — certificate library, once-only check, licence verification",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.layout = layout
    app.state.snapshots = store
    app.state.catalogue = load_catalogue()
    app.state.trust = TrustCache(layout)
    audit.install(app, layout, settings, app.state.catalogue)
    tls.install(app, layout)
    _install_error_handlers(app)
    for module in (health, subjects, licences, items, onceonly, applications, materials, usagelog):
        app.include_router(module.router)
    app.include_router(quality_routes.router)
    app.include_router(results_routes.router)
    app.include_router(status_routes.router)
    _summaries_from_docstrings(app)
    from exchange import web  # the pages (not in the OpenAPI schema), sessions, /quality guard

    web.install(app)
    openapi.install(app)
    return app


def _summaries_from_docstrings(app: FastAPI) -> None:
    """Each route's one-line docstring becomes its OpenAPI summary (FastAPI would use the name)."""
    for route in app.routes:
        if isinstance(route, APIRoute) and route.summary is None:
            doc = (route.endpoint.__doc__ or "").strip()
            if not doc:
                raise RuntimeError(f"route {route.path} needs a one-line docstring (its summary)")
            route.summary = doc.splitlines()[0]
