"""Wiring of the service store, access control, the material library, the usage log and its sealer.

The auditor public key comes from ``ONEWINDOW_AUDITOR_PUBLIC_KEY`` or
``layout.keys / "auditor.pub.pem"``. Outside development a missing key stops the
service at start (a usage log whose identifiers nobody can recover is no audit trail);
in development a pair is created under ``layout.keys`` with the private key beside it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from exchange.api.core.access import AccessControl
from exchange.api.core.config import ConfigError, Settings
from exchange.api.core.identifiers import SessionSealer
from exchange.api.core.usecopies import UseCopies
from exchange.materials import MaterialLibrary
from exchange.onceonly.catalogue import Catalogue
from exchange.store import open_store
from exchange.usagelog import auditor
from exchange.usagelog.seal import BackgroundSealer
from warehouse.datadir import Layout

log = logging.getLogger("exchange.api.audit")

SEAL_INTERVAL_S = 60.0


def auditor_sealer(layout: Layout, settings: Settings) -> SessionSealer:
    path = auditor.public_key_path(layout)
    if not path.exists():
        if not settings.is_development:
            raise ConfigError(auditor.ENV_PUBLIC, str(path),
                              "no auditor public key: create one with `onewindow audit auditor-key` "
                              "and give auditors the private key")
        layout.keys.mkdir(parents=True, exist_ok=True)
        auditor.create_keypair(layout.keys / "auditor.key.pem", path, None)
        log.warning("development: created an auditor key pair under %s (private key unencrypted)",
                    layout.keys)
    return SessionSealer(auditor.load_public(path))


def install(app: FastAPI, layout: Layout, settings: Settings, catalogue: Catalogue) -> None:
    """Open the store, build access control and the sealer; started/stopped by the app's lifespan."""
    layout.service.mkdir(parents=True, exist_ok=True)
    store = open_store(layout)
    app.state.service_store = store
    app.state.access = AccessControl(store, auditor_sealer(layout, settings), catalogue)
    app.state.materials = MaterialLibrary(store, layout, catalogue)
    app.state.use_copies = UseCopies(layout)

    def now():  # the sealer's clock: the app's request clock (tests override it)
        from exchange.api.deps import get_now, now_cst

        override = app.dependency_overrides.get(get_now)
        return override() if override is not None else now_cst()

    app.state.sealer = BackgroundSealer(store, layout, interval=SEAL_INTERVAL_S, clock=now)


def start(app: FastAPI) -> None:
    kept = app.state.service_store.preload_applications()
    log.info("kept %d recently accepted applications for holder authorisation", kept)
    app.state.sealer.start()


def stop(app: FastAPI) -> None:
    app.state.sealer.stop()
    app.state.service_store.close()
