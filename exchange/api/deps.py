"""Request dependencies: settings, the leased snapshot, the catalogue, the trust store, the clock."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from exchange.api.core.config import Settings
from exchange.api.core.snapshot import Snapshot, SnapshotStore
from exchange.api.exceptions import TrustUnavailable
from exchange.onceonly.catalogue import Catalogue
from warehouse.datadir import Layout

CST = dt.timezone(dt.timedelta(hours=8), "CST")


# Dependencies that only read app state are ``async def``: FastAPI runs a plain ``def``
# dependency in the thread pool, one hop per dependency per request.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_layout(request: Request) -> Layout:
    return request.app.state.layout


async def get_store(request: Request) -> SnapshotStore:
    return request.app.state.snapshots


async def refreshed(store: SnapshotStore) -> SnapshotStore:
    """``store`` after swapping to a newly published snapshot, if there is one.

    Checking ``snapshots/CURRENT`` is one ``stat``; only when it changed does the (possibly
    long) swap run, in the thread pool, never on the event loop.
    """
    if store.stale():
        await run_in_threadpool(store.refresh)
    return store


async def get_snapshot(store: Annotated[SnapshotStore, Depends(get_store)]) -> AsyncIterator[Snapshot]:
    """Lease the current snapshot for the whole request (503 ``no_snapshot`` when there is none);
    lean routes do the same with ``(await refreshed(store)).lease(refresh=False)``."""
    with (await refreshed(store)).lease(refresh=False) as snap:
        yield snap


async def get_catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue


def now_cst() -> dt.datetime:
    """The current moment, timezone-aware in China Standard Time."""
    return dt.datetime.now(CST)


def get_now() -> dt.datetime:
    """The request's moment, timezone-aware in China Standard Time (tests override this)."""
    return now_cst()


def request_now(request: Request) -> dt.datetime:
    """``get_now`` or its override, called directly: hot routes skip the thread-pool hop of a
    plain ``def`` dependency."""
    return request.app.dependency_overrides.get(get_now, now_cst)()


class TrustCache:
    """``certificates.TrustStore`` loaded from ``layout.trust``, reloaded when ``bundle.pem`` changes."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._store: Any = None

    def get(self) -> Any:
        from certificates import TrustStore, TrustStoreError

        try:
            st = os.stat(self.layout.trust / "bundle.pem")
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            raise TrustUnavailable(
                f"信任列表尚未发布（{self.layout.trust}/bundle.pem 不存在）。No trust bundle is "
                "published: run the pipeline (it calls certificates.publish_trust).") from None
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._store = TrustStore.from_dir(self.layout.trust)
                except TrustStoreError as exc:
                    raise TrustUnavailable(f"信任列表无法加载。{exc}") from exc
                self._stamp = stamp
            return self._store


def get_trust(request: Request) -> Any:
    return request.app.state.trust.get()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]
CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]
NowDep = Annotated[dt.datetime, Depends(get_now)]
TrustDep = Annotated[Any, Depends(get_trust)]
