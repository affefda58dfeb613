"""Stamping licence reads as use-copies (加注件) with the hub service key, loaded on first use.

On the event loop (:meth:`UseCopies.stamp_async`) the copies of the reads answered in one
round of the loop are sealed together: one hub signature over the Merkle root of their
payloads, a proof per copy (:func:`certificates.usecopy.seal_use_copies`). The reads whose
usage-log batch committed together resume in the same round, so under load a seal holds
about one log batch; a lone read gets the plain JWS. Either verifies through
``certificates.verify_licence``. A copy names its licence by digest; the read's answer
carries the licence token beside it, and the pair is presented as ``use_copy.token~token``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import threading
from typing import Annotated, Any

from fastapi import Depends, Request

from certificates.usecopy import PRESENT_SEP, make_use_copy, seal_use_copies, use_copy_payload
from exchange.api.core.access import Decision
from warehouse.datadir import Layout

USE_COPY_TTL = dt.timedelta(hours=72)
MAX_SEAL = 1024  # copies under one signature at most


class _Round:
    """The payloads waiting for the next seal on one event loop."""

    __slots__ = ("pending", "scheduled")

    def __init__(self) -> None:
        self.pending: list[tuple[dict[str, Any], asyncio.Future]] = []
        self.scheduled = False


class UseCopies:
    def __init__(self, layout: Layout, ttl: dt.timedelta = USE_COPY_TTL) -> None:
        self.layout, self.ttl = layout, ttl
        self._signer: Any = None
        self._lock = threading.Lock()
        self._rounds: dict[asyncio.AbstractEventLoop, _Round] = {}
        self._seal_ids = itertools.count(1)
        self._seal_prefix = f"{os.getpid():x}-{os.urandom(6).hex()}"
        self.seals = 0  # seals made on event loops (tests and the benchmark)

    def signer(self, at: dt.datetime) -> Any:
        """The hub service key (:class:`certificates.pki.HubServiceKey`), never the root key."""
        if self._signer is not None:
            return self._signer
        with self._lock:
            if self._signer is None:
                from certificates.pki import hub_service_key

                self._signer = hub_service_key(self.layout, at=at)
            return self._signer

    def _fields(self, decision: Decision, licence_id: str, token: str, at: dt.datetime) -> dict[str, Any]:
        p = decision.purpose
        return {"licence_id": licence_id, "licence_token": token,
                "purpose": {"item": p.item_code, "case": p.case_number, "clerk": p.clerk_id},
                "requester": {"client_id": decision.client.client_id, "department": decision.client.department_code},
                "at": at, "ttl": self.ttl, "log_seq": decision.seq}

    def stamp(self, decision: Decision, *, licence_id: str, token: str, at: dt.datetime) -> dict[str, Any]:
        """One use-copy, signed on its own (``{"token", "expires_at", "stamp"}``; ``token`` the copy
        alone, as :meth:`stamp_async` answers it)."""
        copy = make_use_copy(self.signer(at), **self._fields(decision, licence_id, token, at))
        return {**copy, "token": copy["token"].partition(PRESENT_SEP)[0]}

    async def stamp_async(self, decision: Decision, *, licence_id: str, token: str,
                          at: dt.datetime) -> dict[str, Any]:
        """:meth:`stamp` on the event loop: sealed with the other copies stamped in this round."""
        payload = use_copy_payload(**self._fields(decision, licence_id, token, at))
        signer = self.signer(at)
        loop = asyncio.get_running_loop()
        r = self._rounds.get(loop)
        if r is None:
            r = self._rounds.setdefault(loop, _Round())
        fut = loop.create_future()
        r.pending.append((payload, fut))
        if not r.scheduled:
            r.scheduled = True
            loop.call_soon(self._seal, r, signer)
        return {"token": await fut, "expires_at": payload["expires_at"], "stamp": payload["stamp"]}

    def _seal(self, r: _Round, signer: Any) -> None:
        batch, r.pending = r.pending[:MAX_SEAL], r.pending[MAX_SEAL:]
        if r.pending:
            asyncio.get_running_loop().call_soon(self._seal, r, signer)
        else:
            r.scheduled = False
        try:
            tokens: list[Any] = seal_use_copies(signer, [p for p, _ in batch],
                                                seal_id=f"{self._seal_prefix}-{next(self._seal_ids)}")
        except BaseException as exc:  # noqa: BLE001 — handed to every waiting read
            tokens = [exc] * len(batch)
        else:
            self.seals += 1
        for (_, fut), outcome in zip(batch, tokens):
            if fut.done():  # the read was cancelled (client went away)
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)


async def get_use_copies(request: Request) -> UseCopies:
    return request.app.state.use_copies


UseCopiesDep = Annotated[UseCopies, Depends(get_use_copies)]
