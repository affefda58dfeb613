"""The results inbox: one JSON-lines file per accepted push, written atomically.

File names carry the China Standard Time day of receipt (``results_<receipt>_<YYYYMMDD>.jsonl``),
which is how the ``files`` extractor picks a day's drops; each record's ``updated_at`` is
the moment of receipt, the source's cursor. A file appears complete or not at all
(temporary name, fsync, rename, fsync of the folder), so an extract running at the same
time never reads half a push.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.sources.interval import CST
from warehouse.datadir import Layout

RESULTS_SOURCE = "hub_results"


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    path: Path
    records: int
    received_at: str  # naive ISO, CST


class ResultInbox:
    def __init__(self, layout: Layout) -> None:
        from exchange.sources.registry import get_source

        self.source = get_source(RESULTS_SOURCE)
        self.folder = Path(self.source.uri(layout.root))

    def write(self, records: Iterable[Mapping[str, Any]], *, client_id: str, at: dt.datetime) -> Receipt:
        """Write ``records`` (raw ``licence_records`` columns) stamped with the pushing client and ``at``."""
        if at.tzinfo is not None:
            at = at.astimezone(CST).replace(tzinfo=None)
        stamp = at.isoformat(sep=" ", timespec="microseconds")
        receipt = f"R{at:%Y%m%d%H%M%S}{secrets.token_hex(4).upper()}"
        lines = [json.dumps({**rec, "reported_by": client_id, "updated_at": stamp}, ensure_ascii=False,
                            sort_keys=True) for rec in records]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"results_{receipt}_{at:%Y%m%d}.jsonl"
        tmp = self.folder / f".{path.name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return Receipt(receipt, path, len(lines), at.isoformat(timespec="seconds"))
