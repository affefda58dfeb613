"""Signing throughput of :func:`sign_licence` next to ``openssl speed ed25519``.

``bench_sign`` signs fresh, realistic payloads (every payload is a new dict, so the
canonicalisation cost is included) with a throw-away in-memory issuer key.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography import x509
from cryptography.x509.oid import NameOID

from certificates.exceptions import OpenSSLUnavailable

if TYPE_CHECKING:
    from certificates.pki import Keyring
from certificates.identifiers import make_identifier
from certificates.model import FORMAT
from certificates.pki import IssuerKey
from certificates.registry import load_registry
from certificates.signing import sign_licence
from certificates.trust import jwk_thumbprint


def _bench_issuer() -> IssuerKey:
    dept = load_registry().departments["scjg"]
    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    at = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(at).not_valid_after(at + dt.timedelta(days=1)).sign(key, None))
    return IssuerKey(dept, key, cert, cert, jwk_thumbprint(key.public_key()))


def sample_payload(i: int) -> dict[str, object]:
    """A realistic 食品经营许可证 payload, different for every ``i``."""
    issuer = "113301000024962067"
    serial = f"2026{i:016d}"
    return {
        "format": FORMAT,
        "licence_id": make_identifier("11100000000013418G002", issuer, serial, 1),
        "name": "食品经营许可证",
        "type_code": "11100000000013418G002",
        "number": f"JY133010{i:08d}",
        "version": 1,
        "issuer": {"name": "杭州市市场监督管理局", "code": issuer},
        "issue_date": "2026-03-01",
        "definer": {"name": "国家市场监督管理总局", "code": "11100000000013418G"},
        "holder": {"name": f"杭州第{i}号餐饮管理有限公司", "code": "91330100MA27XL0E2Y",
                   "code_type": "001"},
        "valid_from": "2026-03-01",
        "valid_until": "2031-02-28",
        "division_code": "330100",
        "extension": {"business_scope": "热食类食品制售；冷食类食品制售；自制饮品制售",
                      "address": f"杭州市西湖区文三路{i % 500}号"},
        "status": "01",
        "supersedes": None,
        "issued_at": "2026-11-02T10:00:00+08:00",
    }


def bench_sign(n: int = 5000, *, repeat: int = 3) -> float:
    """Signatures per second of :func:`sign_licence` over ``n`` fresh payloads.

    Best of ``repeat`` rounds (as ``timeit`` does): on a shared machine the slowest
    rounds measure the neighbours, not the code. Each round signs payloads it has
    not seen, so canonicalisation is always included.
    """
    issuer = _bench_issuer()
    best = 0.0
    for r in range(repeat):
        payloads = [sample_payload(r * n + i) for i in range(n)]
        start = time.perf_counter()
        for payload in payloads:
            sign_licence(payload, issuer)
        best = max(best, n / (time.perf_counter() - start))
    return best


def openssl_ed25519_sign_rate(seconds: int = 2) -> float:
    """Ed25519 sign/s reported by ``openssl speed -seconds N ed25519``."""
    return openssl_ed25519_rates(seconds)[0]


def openssl_ed25519_rates(seconds: int = 2, *, multi: int | None = None) -> tuple[float, float]:
    """(sign/s, verify/s) reported by ``openssl speed -seconds N ed25519`` (with ``-multi M``
    when ``multi`` is given: M processes, the rates summed)."""
    cmd = ["openssl", "speed", "-seconds", str(seconds), *(["-multi", str(multi)] if multi else []), "ed25519"]
    if shutil.which("openssl") is None:
        raise OpenSSLUnavailable(cmd, "openssl is not on PATH")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 30)
    except subprocess.TimeoutExpired as exc:
        raise OpenSSLUnavailable(cmd, "timed out") from exc
    if proc.returncode != 0:
        raise OpenSSLUnavailable(cmd, f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    # e.g. " 253 bits EdDSA (Ed25519)   0.0000s   0.0001s  21786.0   7611.0"
    match = re.search(r"\(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", proc.stdout)
    if not match:
        raise OpenSSLUnavailable(cmd, "could not find the Ed25519 sign/s column in its output")
    return float(match.group(1)), float(match.group(2))


def library_rows(n: int, *, start: int = 0) -> dict[str, list]:
    """``n`` library-like ``certificates`` rows as columns (``certificates.issue.ROW_COLUMNS``),
    as DuckDB hands them to the build: dates as ``date``, the extension as JSON text.
    Food licences of 杭州 (scjg) and property certificates (zrzy), every row different."""
    from certificates.issue import ROW_COLUMNS

    reg = load_registry()
    food, prop = reg.licence_type("food_licence"), reg.licence_type("property")
    cols: dict[str, list] = {c: [] for c in ROW_COLUMNS}
    issued, start_date, until = dt.date(2026, 3, 1), dt.date(2026, 3, 1), dt.date(2031, 2, 28)
    for i in range(start, start + n):
        lt = food if i % 3 else prop
        holder = f"913301{i % 1000:03d}MA27XL0E2Y"[:18]
        number = f"JY1330106{i:08d}"
        ext = (f'{{"address":"杭州市西湖区文三路{i % 500}号","business_scope":"热食类食品制售；冷食类食品制售"}}'
               if i % 3 else f'{{"area_m2":{80 + i % 90},"land_use":"住宅","parcel_no":"330106{i:09d}"}}')
        for c, v in (("cert_key", f"{lt.code}:{number}:{holder}"), ("licence_type_code", lt.code),
                     ("licence_type_name", lt.name), ("cert_number", number), ("holder_code", holder),
                     ("holder_code_type", "001"), ("holder_name", f"杭州第{i}号餐饮管理有限公司"),
                     ("issuer_name", lt.issuer.name), ("issuer_code", lt.issuer.code),
                     ("issue_date", issued), ("valid_from", start_date),
                     ("valid_until", until if i % 3 else None), ("status", "01"), ("extension", ext)):
            cols[c].append(v)
    return cols


def bench_keyring(workdir: Path) -> "Keyring":
    """A real hub keyring (root + one issuer per department) under ``workdir``, with a random passphrase."""
    import os

    from certificates.pki import Keyring
    from warehouse.datadir import Layout

    at = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    return Keyring.load_or_create(Layout(workdir / "bench-keys"), at=at, passphrase=os.urandom(16).hex().encode())


def bench_issue(n: int, *, keyring: "Keyring", mode: str, workdir: Path, workers: int | None = None,
                batch_size: int = 4096, keep_tokens: int = 20_000) -> tuple[float, list[str]]:
    """Licences/s end to end from library rows: status list entries, payload, identifier,
    canonical JSON, signature or Merkle proof, and the licences stored in a library (Parquet
    files registered in its DuckDB database with the ``licence_batches`` rows) — by
    :func:`warehouse.build.issue_rows`, the code the library build runs. Returns the rate and
    up to ``keep_tokens`` stored tokens, read back through the ``licences`` view (for the
    verify benchmark)."""
    import pyarrow as pa

    from warehouse.build import _StatusAssigner, issue_rows
    from warehouse.duck import connect
    from warehouse.schema import migrate

    cols = library_rows(n)
    cols["version"] = [1] * n
    cols["prev_licence_id"] = [None] * n
    pending = pa.table(cols)  # what the build's SELECT hands over: an Arrow table
    at = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
    con = connect(workdir / f"bench-{mode}.duckdb")
    migrate(con)
    start = time.perf_counter()
    issued, _ = issue_rows(con, pending, keyring=keyring, assigner=_StatusAssigner(con), mode=mode, at=at,
                           prefix="bench", files=workdir / f"bench-{mode}-licences", batch_size=batch_size,
                           workers=workers)
    elapsed = time.perf_counter() - start
    stored = con.execute("SELECT count(*) FROM licences").fetchone()[0]
    tokens = [t for (t,) in con.execute("SELECT token FROM licences LIMIT ?", [keep_tokens]).fetchall()]
    con.close()
    if issued != n or stored != n:
        raise RuntimeError(f"issued {issued} and stored {stored} licences, expected {n}")
    return n / elapsed, tokens


def issue_workers(n: int, workers: int | None = None) -> int:
    """How many processes :class:`certificates.issue.JobRunner` uses for ``n`` rows (for the report)."""
    from certificates.issue import pool_size

    return pool_size(n, workers)


def sha256_rate(n: int) -> float:
    """SHA-256 (hashlib) over the canonical payloads of the same ``n`` library rows, per second."""
    import hashlib

    from certificates.encoder import PayloadEncoder
    from certificates.issue import ROW_COLUMNS

    cols = library_rows(n)
    enc = PayloadEncoder(at=dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc))
    payloads = enc.encode_many({c: cols[c] for c in ROW_COLUMNS}, [1] * n, [None] * n)[2]
    sha = hashlib.sha256
    start = time.perf_counter()
    for p in payloads:
        sha(p).digest()
    return n / (time.perf_counter() - start)


def bench_verify(tokens: list[str], trust: object, *, rounds: int = 3) -> float:
    """verify_licence calls per second over ``tokens`` (all must verify), in one process.

    The tokens are split into ``rounds`` parts and the fastest part counts (as in
    :func:`bench_sign`): on a shared machine the slowest rounds measure the neighbours."""
    from certificates.verify import verify_licence

    at = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)
    size = -(-len(tokens) // max(1, rounds))
    best = 0.0
    for i in range(0, len(tokens), size):
        part = tokens[i:i + size]
        start = time.perf_counter()
        for token in part:
            if not verify_licence(token, trust, at=at).ok:  # type: ignore[arg-type]
                raise RuntimeError("a benchmark licence did not verify")
        best = max(best, len(part) / (time.perf_counter() - start))
    return best


if __name__ == "__main__":
    ours, theirs = bench_sign(), openssl_ed25519_sign_rate()
    print(f"sign_licence: {ours:,.0f}/s   openssl speed ed25519: {theirs:,.0f}/s   "
          f"ratio {ours / theirs:.2f}")
