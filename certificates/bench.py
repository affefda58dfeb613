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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography import x509
from cryptography.x509.oid import NameOID

from certificates.exceptions import OpenSSLUnavailable
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
    cmd = ["openssl", "speed", "-seconds", str(seconds), "ed25519"]
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
    return float(match.group(1))


if __name__ == "__main__":
    ours, theirs = bench_sign(), openssl_ed25519_sign_rate()
    print(f"sign_licence: {ours:,.0f}/s   openssl speed ed25519: {theirs:,.0f}/s   "
          f"ratio {ours / theirs:.2f}")
