"""Stamping licence reads as use-copies (加注件) with the hub service key, loaded on first use."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Annotated, Any

from fastapi import Depends, Request

from certificates.usecopy import make_use_copy
from exchange.api.core.access import Decision
from warehouse.datadir import Layout

USE_COPY_TTL = dt.timedelta(hours=72)


class UseCopies:
    def __init__(self, layout: Layout, ttl: dt.timedelta = USE_COPY_TTL) -> None:
        self.layout, self.ttl = layout, ttl
        self._signer: Any = None
        self._lock = threading.Lock()

    def signer(self, at: dt.datetime) -> Any:
        """The hub service key (:class:`certificates.pki.HubServiceKey`), never the root key."""
        if self._signer is not None:
            return self._signer
        with self._lock:
            if self._signer is None:
                from certificates.pki import hub_service_key

                self._signer = hub_service_key(self.layout, at=at)
            return self._signer

    def stamp(self, decision: Decision, *, licence_id: str, token: str, at: dt.datetime) -> dict[str, Any]:
        p = decision.purpose
        return make_use_copy(self.signer(at), licence_id=licence_id, licence_token=token,
                             purpose={"item": p.item_code, "case": p.case_number, "clerk": p.clerk_id},
                             requester={"client_id": decision.client.client_id,
                                        "department": decision.client.department_code},
                             at=at, ttl=self.ttl, log_seq=decision.seq)


async def get_use_copies(request: Request) -> UseCopies:
    return request.app.state.use_copies


UseCopiesDep = Annotated[UseCopies, Depends(get_use_copies)]
