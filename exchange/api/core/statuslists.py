"""Published status lists as the service's status source: the same signed lists offline verifiers cache.

``POST /api/v1/verify`` and the verify page take revocation and suspension from the lists
the pipeline publishes under ``<data-dir>/status`` (:mod:`certificates.statuslist`), not
from the snapshot's rows, so the service and ``onewindow licence verify`` agree. A list is
verified against the trust store when loaded; the folder is re-read when a file in it
changes. A missing, expired or unverifiable list makes the licences it covers
``status_unavailable`` (the bad file is logged and skipped; other lists keep answering).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from exchange.api.deps import TrustDep
from warehouse.datadir import Layout

log = logging.getLogger("exchange.api.statuslists")


def status_dir(layout: Layout) -> Path:
    return layout.root / "status"


class StatusListCache:
    """:class:`certificates.statuslist.StatusLists` of ``<data-dir>/status``, reloaded on change."""

    def __init__(self, layout: Layout) -> None:
        self.directory = status_dir(layout)
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._trust: Any = None  # the trust store the cached lists were verified against
        self._lists: Any = None

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jws")) if self.directory.is_dir() else []

    def get(self, trust: Any) -> Any:
        from certificates.statuslist import StatusList, StatusListError, StatusLists

        files = self._files()
        stamp_parts: list[Any] = []
        for path in files:
            try:
                st = path.stat()
            except FileNotFoundError:  # replaced while listing: the next request sees the new one
                continue
            stamp_parts.append((path.name, st.st_ino, st.st_mtime_ns, st.st_size))
        stamp = tuple(stamp_parts)
        with self._lock:
            if stamp != self._stamp or trust is not self._trust:
                lists = []
                for path in files:
                    try:
                        lists.append(StatusList.verify(path.read_text(encoding="ascii"), trust))
                    except (OSError, UnicodeDecodeError, StatusListError) as exc:
                        log.error("status list %s is not usable (its licences answer status_unavailable): %s",
                                  path, exc)
                self._lists = StatusLists(lists)
                self._stamp, self._trust = stamp, trust
            return self._lists


def get_status_lists(request: Request, trust: TrustDep) -> Any:
    """The published status lists, verified against the current trust store."""
    state = request.app.state
    cache = getattr(state, "status_lists", None)
    if cache is None:
        with _INIT_LOCK:
            cache = getattr(state, "status_lists", None)
            if cache is None:
                cache = state.status_lists = StatusListCache(state.layout)
    return cache.get(trust)


_INIT_LOCK = threading.Lock()
StatusListsDep = Annotated[Any, Depends(get_status_lists)]
