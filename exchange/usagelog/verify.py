"""Offline verification of the usage log: exports, seals, and (optionally) the live store's chain.

Needs only the export folder and the published trust material (``trust/root.pem`` +
``bundle.pem``, :class:`certificates.TrustStore`). Checks, per sealed day: the seal's
signature under the hub service key its ``kid`` names (a certificate the root vouches
for with the hub service extendedKeyUsage; seals made before that key existed were signed
by the root key itself and still verify under it), the seal chain (each seal names
its predecessor's digest, and the file name carries it), the Parquet file's sha256, and
each record: its chain hash, its link to the previous record (across days too), contiguous
``seq``, the derived columns against the record, and the count and Merkle root the seal
signed. The first problem names the record (day, seq) where the log stops being intact.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certificates.trust import TrustStore, jwk_thumbprint
from exchange.store.base import GENESIS, LogRecord, ServiceStore, chain_hash
from exchange.usagelog.merkle import merkle_root
from exchange.usagelog.seal import EXPORT_COLUMNS, SEAL_TYPE


@dataclass(frozen=True)
class Problem:
    day: str
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"record seq={self.seq}" if self.seq is not None else "seal"
        return f"{self.day} {where}: {self.reason}"


@dataclass
class LogReport:
    days: list[str] = field(default_factory=list)
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first_broken(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def _b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _seal_key(header: dict[str, Any], trust: TrustStore | Ed25519PublicKey) -> Ed25519PublicKey:
    """The key a seal must verify under: the hub service key its ``kid`` names, or (seals from
    before the service key) the root key; a bare key is used as it is."""
    if isinstance(trust, Ed25519PublicKey):
        return trust
    kid = header.get("kid")
    service = trust.service(kid) if isinstance(kid, str) else None
    if service is not None:
        return service.public_key
    root_key = trust.root.public_key()
    if isinstance(root_key, Ed25519PublicKey) and kid == jwk_thumbprint(root_key):
        return root_key
    raise ValueError(f"seal signed by key {kid!r}, which is neither the published hub service key "
                     "nor the hub root (unknown signer)")


def _check_seal(jws: str, trust: TrustStore | Ed25519PublicKey) -> dict[str, Any]:
    """The seal payload; raises ValueError saying why the seal is not valid."""
    try:
        header_b64, payload_b64, sig_b64 = jws.strip().split(".")
        header = json.loads(_b64d(header_b64))
        payload = json.loads(_b64d(payload_b64))
    except ValueError as exc:
        raise ValueError(f"seal is not a compact JWS ({exc})") from None
    if header.get("typ") != SEAL_TYPE or header.get("alg") != "Ed25519":
        raise ValueError(f"seal header is not a usage-log seal: {header}")
    key = _seal_key(header, trust)
    try:
        key.verify(_b64d(sig_b64), f"{header_b64}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        raise ValueError(f"seal signature does not verify under the key {header.get('kid')!r}") from None
    return payload


def _read_export(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    missing = set(EXPORT_COLUMNS) - set(table.column_names)
    if missing:
        raise ValueError(f"export lacks columns {sorted(missing)}")
    return table.to_pylist()


def _check_records(day: str, rows: list[dict[str, Any]], prev_hash: str | None, first_seq: int | None,
                   report: LogReport) -> str | None:
    """Check rows in file order; returns the last good hash (None once broken)."""
    expected_seq = first_seq
    for row in rows:
        seq = row.get("seq")
        if expected_seq is not None and seq != expected_seq:
            what = "missing or reordered" if seq is not None and seq > expected_seq else "out of order"
            report.problems.append(Problem(day, expected_seq, f"expected seq {expected_seq}, found {seq} "
                                                              f"(record {what})"))
            return None
        if prev_hash is not None and row["prev_hash"] != prev_hash:
            report.problems.append(Problem(day, seq, "does not link to the previous record "
                                                     "(a record before it was removed or altered)"))
            return None
        if chain_hash(row["prev_hash"], row["record"]) != row["hash"]:
            report.problems.append(Problem(day, seq, "content does not match its hash (record edited)"))
            return None
        body = json.loads(row["record"])
        for col in EXPORT_COLUMNS:
            if col in ("record", "prev_hash", "hash"):
                continue
            if row[col] != body.get(col):
                report.problems.append(Problem(day, seq, f"column {col!r} differs from the hashed record"))
                return None
        report.records += 1
        prev_hash = row["hash"]
        expected_seq = seq + 1
    return prev_hash


def verify_exports(directory: Path, trust: TrustStore | Ed25519PublicKey, *, date_from: str | None = None,
                   date_to: str | None = None) -> LogReport:
    """Verify the sealed exports in ``directory`` for days in [date_from, date_to].

    ``trust``: the published trust material (seals verify under the hub service key or,
    for old seals, the root), or one public key every seal must verify under."""
    report = LogReport()
    seals = sorted(Path(directory).glob("usage-*.seal.jws"))
    prev_digest = GENESIS
    prev_last_hash: str | None = GENESIS
    prev_last_seq = 0
    for seal_path in seals:
        jws = seal_path.read_text(encoding="ascii").strip()
        name_day = seal_path.name[len("usage-"):len("usage-") + 10]
        try:
            seal = _check_seal(jws, trust)
        except ValueError as exc:
            report.problems.append(Problem(name_day, None, str(exc)))
            return report
        day = seal["day"]
        if seal["prev_digest"] != prev_digest:
            report.problems.append(Problem(day, seal["first_seq"], "seal does not follow the previous seal "
                                           "(a sealed day was removed or replaced)"))
            return report
        expected_name = f"usage-{day}-{prev_digest[:16]}"
        if seal_path.name != f"{expected_name}.seal.jws" or seal["file"] != f"{expected_name}.parquet":
            report.problems.append(Problem(day, None, f"file name does not carry the previous seal's digest "
                                                      f"(expected {expected_name})"))
            return report
        in_range = (date_from is None or day >= date_from) and (date_to is None or day <= date_to)
        if in_range:
            report.days.append(day)
            parquet = seal_path.with_name(seal["file"])
            try:
                data = parquet.read_bytes()
            except OSError as exc:
                report.problems.append(Problem(day, seal["first_seq"], f"export missing ({exc})"))
                return report
            try:
                rows = _read_export(parquet)
            except (ValueError, OSError) as exc:
                report.problems.append(Problem(day, seal["first_seq"], f"export unreadable ({exc})"))
                return report
            link = prev_last_hash if seal["first_seq"] == prev_last_seq + 1 else None
            last = _check_records(day, rows, link, seal["first_seq"], report)
            if last is None:
                return report
            if len(rows) != seal["count"] or rows[-1]["seq"] != seal["last_seq"]:
                gone = (rows[-1]["seq"] + 1) if rows else seal["first_seq"]
                report.problems.append(Problem(day, gone, f"export has {len(rows)} records, the seal "
                                                          f"signed {seal['count']} (records truncated)"))
                return report
            if merkle_root([r["hash"] for r in rows]) != seal["merkle_root"] or last != seal["last_hash"]:
                report.problems.append(Problem(day, None, "Merkle root differs from the signed seal"))
                return report
            if hashlib.sha256(data).hexdigest() != seal["file_sha256"]:
                report.problems.append(Problem(day, None, "export file differs from the one sealed "
                                                          "(records intact; file rewritten)"))
                return report
        prev_digest = hashlib.sha256(jws.encode("ascii")).hexdigest()
        prev_last_hash, prev_last_seq = seal["last_hash"], seal["last_seq"]
    return report


def verify_store_chain(store: ServiceStore, *, after_seq: int = 0, prev_hash: str | None = None) -> LogReport:
    """Verify the live chain in the store (e.g. the unsealed tail after the last seal)."""
    report = LogReport()
    records: list[LogRecord] = store.log_records(first_seq=after_seq + 1)
    rows = [{"seq": r.seq, "record": r.record, "prev_hash": r.prev_hash, "hash": r.hash,
             **{c: json.loads(r.record).get(c) for c in EXPORT_COLUMNS
                if c not in ("seq", "record", "prev_hash", "hash")}} for r in records]
    if rows:
        _check_records(records[0].day, rows, prev_hash if prev_hash is not None else
                       (GENESIS if after_seq == 0 else None), after_seq + 1, report)
        report.days = sorted({r.day for r in records})
    return report
