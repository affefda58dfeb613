"""市场监管 registry as a REST JSON API (the contract in docs/architecture.md).

``GET /api/v1/enterprises`` and ``GET /api/v1/food-licences`` page through rows with
``updated_since <= updated_at < updated_before``, ordered by ``updated_at`` then insertion.
``serve_in_background`` runs it with uvicorn on loopback for tests and demos.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from pathlib import Path
from types import TracebackType

from fastapi import FastAPI, HTTPException, Query

from exchange.departments.scjg import ENTERPRISES, FOOD_LICENCES
from exchange.departments.store import Schema
from exchange.departments.timeline import TS_FORMAT

MAX_PAGE_SIZE = 5000
CST = dt.timezone(dt.timedelta(hours=8))


def _bound(name: str, value: str | None) -> str | None:
    """An ISO date or datetime as the naive CST text the registry stores; 422 otherwise."""
    if value is None or value == "":
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"{name} must be an ISO 8601 date-time, got {value!r}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(CST).replace(tzinfo=None)
    text = moment.strftime(TS_FORMAT)
    return text + (f".{moment.microsecond:06d}" if moment.microsecond else "")


def create_app(db_path: str | Path) -> FastAPI:
    """The registry's REST API over the SQLite file at ``db_path`` (opened read-only per request)."""
    uri = f"{Path(db_path).resolve().as_uri()}?mode=ro"
    app = FastAPI(title="杭州市市场监督管理局 登记注册系统（模拟）", version="1.0")

    def query_page(schema: Schema, updated_since: str | None, updated_before: str | None,
             page_no: int, page_size: int) -> dict:
        lower, upper = _bound("updated_since", updated_since), _bound("updated_before", updated_before)
        where, args = [], []
        if lower is not None:
            where.append("updated_at >= ?")
            args.append(lower)
        if upper is not None:
            where.append("updated_at < ?")
            args.append(upper)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        conn = sqlite3.connect(uri, uri=True)
        try:
            total = conn.execute(f"SELECT count(*) FROM {schema.name}{clause}", args).fetchone()[0]
            rows = conn.execute(f"SELECT {', '.join(schema.columns)} FROM {schema.name}{clause} "
                                "ORDER BY updated_at, rowid LIMIT ? OFFSET ?",
                                [*args, page_size, (page_no - 1) * page_size]).fetchall()
        finally:
            conn.close()
        return {"items": [dict(zip(schema.columns, r)) for r in rows], "page": page_no,
                "page_size": page_size, "total": total,
                "next_page": page_no + 1 if page_no * page_size < total else None}

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness: the registry file can be read."""
        conn = sqlite3.connect(uri, uri=True)
        try:
            conn.execute("SELECT 1 FROM enterprises LIMIT 1").fetchall()
        finally:
            conn.close()
        return {"status": "ok"}

    @app.get("/api/v1/enterprises")
    def enterprises(updated_since: str | None = None, updated_before: str | None = None,
                    page: int = Query(1, ge=1), page_size: int = Query(500, ge=1, le=MAX_PAGE_SIZE)) -> dict:
        """Registered enterprises and 个体工商户 changed in [updated_since, updated_before)."""
        return query_page(ENTERPRISES, updated_since, updated_before, page, page_size)

    @app.get("/api/v1/food-licences")
    def food_licences(updated_since: str | None = None, updated_before: str | None = None,
                      page: int = Query(1, ge=1), page_size: int = Query(500, ge=1, le=MAX_PAGE_SIZE)) -> dict:
        """Food business licences (食品经营许可证) changed in [updated_since, updated_before)."""
        return query_page(FOOD_LICENCES, updated_since, updated_before, page, page_size)

    return app


class ServerHandle:
    """A uvicorn server on a background thread; ``url`` is the real bound base URL."""

    def __init__(self, server, thread: threading.Thread, url: str) -> None:
        self._server, self._thread, self.url = server, thread, url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_in_background(db_path: str | Path, host: str = "127.0.0.1", port: int = 0,
                        startup_timeout: float = 15.0) -> ServerHandle:
    """Start the API with uvicorn on a thread; port 0 picks a free port."""
    import uvicorn

    config = uvicorn.Config(create_app(db_path), host=host, port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="scjg-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"scjg API did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    return ServerHandle(server, thread, f"http://{bound[0]}:{bound[1]}")
