"""Sealing the usage log per day: Merkle root signed by the hub service key, Parquet export.

A day (CST) is sealed once it is over. The seal is a compact JWS (``typ``
``vnd.onewindow.usage-seal+jws``, Ed25519 with the hub service key, ``kid``
``hub-service-<thumbprint>``; seals made before the service key existed were signed by
the hub root key, ``kid`` its thumbprint) over canonical JSON::

    {"ver": 1, "day", "first_seq", "last_seq", "count", "merkle_root", "last_hash",
     "prev_digest", "file", "file_sha256"}

``prev_digest`` is the previous seal's digest (sha256 of its JWS; 64 zeros for the
first), and the export is ``usage-<day>-<prev_digest[:16]>.parquet`` with the seal
beside it as ``….seal.jws``. Days are sealed in order; a failure is recorded in the
store and retried on the next pass; the request path never waits for any of this.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.store.base import CST, GENESIS, Seal, ServiceStore, stored_time
from exchange.usagelog.exceptions import SealError
from exchange.usagelog.merkle import merkle_root
from warehouse.datadir import Layout

log = logging.getLogger("exchange.usagelog")

SEAL_TYPE = "vnd.onewindow.usage-seal+jws"
EXPORT_COLUMNS = ("seq", "at", "client_id", "department", "action", "decision", "rule",
                  "holder_masked", "record", "prev_hash", "hash")


def export_dir(layout: Layout) -> Path:
    return layout.service / "usage-log"


class HubSigner:
    """Signs seals with the hub service key (``certificates.pki.hub_service_key``: a certificate
    under the hub root for hub-signed documents, published in the trust bundle), not the root."""

    def __init__(self, layout: Layout, *, at: dt.datetime) -> None:
        from certificates.pki import hub_service_key

        self._service = hub_service_key(layout, at=at)
        self.kid = self._service.kid

    def sign(self, payload: dict[str, Any], *, typ: str = SEAL_TYPE) -> str:
        return self._service.sign(payload, typ=typ)


def export_rows(records: list[Any]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {c: [] for c in EXPORT_COLUMNS}
    for r in records:
        body = json.loads(r.record)
        cols["seq"].append(r.seq)
        cols["at"].append(body.get("at"))
        for name in ("client_id", "department", "action", "decision", "rule", "holder_masked"):
            cols[name].append(body.get(name))
        cols["record"].append(r.record)
        cols["prev_hash"].append(r.prev_hash)
        cols["hash"].append(r.hash)
    return cols


def _write_parquet(path: Path, cols: dict[str, list[Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(cols), tmp)
    os.replace(tmp, path)


def seal_day(store: ServiceStore, layout: Layout, signer: HubSigner, day: str, *,
             at: dt.datetime) -> Seal:
    """Seal one day (the previous days must be sealed already)."""
    seals = store.seals()
    if any(s.day == day for s in seals):
        raise SealError(day, "already sealed")
    earlier = [s for s in seals if s.day < day]
    prev_digest = earlier[-1].digest if earlier else GENESIS
    records = store.log_records(day=day)
    if not records:
        raise SealError(day, "no records on that day")
    out = export_dir(layout)
    out.mkdir(parents=True, exist_ok=True)
    name = f"usage-{day}-{prev_digest[:16]}"
    parquet = out / f"{name}.parquet"
    try:
        _write_parquet(parquet, export_rows(records))
        file_sha = hashlib.sha256(parquet.read_bytes()).hexdigest()
        payload = {"ver": 1, "day": day, "first_seq": records[0].seq, "last_seq": records[-1].seq,
                   "count": len(records), "merkle_root": merkle_root([r.hash for r in records]),
                   "last_hash": records[-1].hash, "prev_digest": prev_digest, "file": parquet.name,
                   "file_sha256": file_sha}
        jws = signer.sign(payload)
        seal_path = out / f"{name}.seal.jws"
        tmp = seal_path.with_name(f".{seal_path.name}.tmp")
        tmp.write_text(jws + "\n", encoding="ascii")
        os.replace(tmp, seal_path)
    except OSError as exc:
        raise SealError(day, str(exc)) from exc
    seal = Seal(day=day, first_seq=payload["first_seq"], last_seq=payload["last_seq"],
                count=payload["count"], merkle_root=payload["merkle_root"], prev_digest=prev_digest,
                digest=hashlib.sha256(jws.encode("ascii")).hexdigest(), jws=jws, file=parquet.name,
                sealed_at=stored_time(at))
    store.add_seal(seal)
    return seal


@dataclass
class SealReport:
    sealed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (day, error)
    pending: list[str] = field(default_factory=list)


def seal_due(store: ServiceStore, layout: Layout, signer: HubSigner | None, *,
             at: dt.datetime) -> SealReport:
    """Seal every complete (before ``at``'s CST day) unsealed day, in order.

    The first failure is recorded in the store and stops the pass (later days chain
    on its digest); the next pass retries it.
    """
    today = (at.astimezone(CST) if at.tzinfo else at).date().isoformat()
    sealed = {s.day for s in store.seals()}
    due = [d for d in store.log_days() if d < today and d not in sealed]
    report = SealReport()
    for i, day in enumerate(due):
        try:
            if signer is None:
                signer = HubSigner(layout, at=at)
            seal_day(store, layout, signer, day, at=at)
            report.sealed.append(day)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, reported and retried
            # Recorded with its cause and retried on the next pass; never raised into a request.
            store.record_seal_failure(day, f"{type(exc).__name__}: {exc}", at=at)
            log.error("usage-log seal of %s failed (will retry): %s", day, exc)
            report.failed.append((day, str(exc)))
            report.pending = due[i + 1:]
            break
    return report


class BackgroundSealer:
    """Runs :func:`seal_due` every ``interval`` seconds in a daemon thread."""

    def __init__(self, store: ServiceStore, layout: Layout, *, interval: float, clock: Any) -> None:
        self.store, self.layout, self.interval, self.clock = store, layout, interval, clock
        self.last_report: SealReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-log-sealer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.last_report = seal_due(self.store, self.layout, None, at=self.clock())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
