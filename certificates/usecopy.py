"""Use-copies (加注件): a licence handed out for one stated purpose, stamped and signed by the hub.

A use-copy is a compact JWS signed with the hub service key (:class:`certificates.pki.HubServiceKey`,
certificate under the hub root with extendedKeyUsage :data:`certificates.trust.HUB_SERVICE_EKU`,
published in the trust bundle and the JWKS as ``hub-service-<thumbprint>``)::

    header  = {"alg": "Ed25519", "kid": "hub-service-…", "typ": "vnd.onewindow.use-copy+jws", "ver": 1}
    payload = {"ver": 2, "licence_id", "licence_sha256": BASE64URL(SHA-256(<the licence token>)),
               "purpose": {"item", "case", "clerk"}, "requester": {"client_id", "department"},
               "issued_at", "expires_at", "log_seq", "stamp": "仅供…使用，…前有效"}

The payload is RFC 8785 canonical JSON, so any JOSE library verifies the hub's signature
with the JWKS alone. ``log_seq`` ties the copy to the usage-log record of the read that
produced it.

The copy references the licence by the SHA-256 digest of its token's ASCII bytes instead of
carrying the ~2 KB token again (the licence read answers with the licence token beside the
copy, so the answer no longer holds the token twice, once base64url-encoded a second time).
A copy is therefore **presented** with its licence, as one string (:func:`present`)::

    presented = <use-copy token> "~" <licence token>

(``~`` occurs in neither: both are base64url segments and dots). :func:`certificates.verify_licence`
takes the presented string; the copy alone is ``malformed`` (``licence_not_presented``), and a
licence whose digest is not the one the hub signed is ``tampered`` (``licence_digest_mismatch``).
:func:`make_use_copy` returns the presented string as its ``token``. Copies of payload
version 1 (the licence token embedded as ``licence``; stamped before this change, valid for
72 h) still verify, alone or presented with that same licence.

Use-copies stamped together (the reads a busy hub answers in one event-loop round) may be
**sealed** under one hub signature instead of one each (:func:`seal_use_copies`), as licence
batches are (:mod:`certificates.batch`): the same payload, in a token of three base64url
segments that is *not* a JWS (no ``alg``)::

    header = {"bid": <seal id>, "bsz": <copies sealed together>, "kid": "hub-service-…",
              "mtp": "rfc9162-sha256", "typ": "vnd.onewindow.use-copy+mtp", "ver": 2}
    token  = BASE64URL(header) . BASE64URL(JCS(payload)) . BASE64URL(proof)
    proof  = 0x02 || index (uint32) || Ed25519 signature || audit path (RFC 9162)

Leaf ``i`` is ``SHA-256(0x00 || header_b64 "." payload_b64)``; the hub service key signs,
once per seal, the root statement — a standard compact JWS with ``typ``
``vnd.onewindow.use-copy-batch+jws`` over ``{"format": "onewindow.use-copy-batch/1",
"hash": "sha-256", "header": header_b64, "root": …, "size": bsz}`` — so the header (seal
id, size, key id), the payload and the position are all bound by the one signature. A
seal of one copy is the plain JWS above.

Verification goes through the one entry point, :func:`certificates.verify.verify_licence`,
which hands a use-copy header to :func:`verify_use_copy` here. The outcomes are those of a
licence — the hub signature is checked first (``TAMPERED``, ``UNKNOWN_ISSUER``, hub service
certificate ``ISSUER_CERT_EXPIRED`` / ``…_NOT_YET_VALID``), then the copy's own window
(``USE_COPY_EXPIRED``; before ``issued_at``: ``NOT_YET_VALID`` with detail
``use_copy_not_yet_valid``), then the embedded licence in full (its signature, issuer,
status, validity). A valid result carries the copy's purpose, requester and expiry in
``Verification.use_copy``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pybase64
from cryptography.exceptions import InvalidSignature

from certificates._time import CST, aware

if TYPE_CHECKING:  # pragma: no cover
    from certificates.pki import HubServiceKey
    from certificates.trust import TrustStore
    from certificates.verify import StatusLookup, StatusSource, Verification

USE_COPY_TYPE = "vnd.onewindow.use-copy+jws"
USE_COPY_VERSION = 2  # payload version: the licence referenced by digest (1: embedded)
_HEADER_VERSION = 1  # the plain JWS header's "ver"
PRESENT_SEP = "~"  # between a use-copy and the licence it is presented with
SEALED_TYPE = "vnd.onewindow.use-copy+mtp"  # a use-copy sealed with others under one root
SEALED_ROOT_TYPE = "vnd.onewindow.use-copy-batch+jws"
SEALED_ROOT_FORMAT = "onewindow.use-copy-batch/1"
_FIELDS = {"ver", "licence_id", "licence_sha256", "purpose", "requester", "issued_at", "expires_at",
           "log_seq", "stamp"}
_FIELDS_V1 = _FIELDS - {"licence_sha256"} | {"licence"}


def licence_digest(licence_token: str) -> str:
    """BASE64URL(SHA-256(token)) without padding: how a use-copy names its licence."""
    return _b64(hashlib.sha256(licence_token.encode("utf-8")).digest()).decode("ascii")


def present(use_copy_token: str, licence_token: str) -> str:
    """The string a use-copy is presented (and verified) as: ``copy~licence``."""
    return f"{use_copy_token}{PRESENT_SEP}{licence_token}"


def _stamp(purpose: dict[str, str], expires_text: str) -> str:
    return f"仅供事项 {purpose['item']}（办件 {purpose['case']}）使用，{expires_text}前有效，其他用途无效"


@functools.lru_cache(maxsize=256)
def _window_of(second: int, ttl_s: int) -> tuple[str, str, str]:
    """(issued_at, expires_at, expiry as the 加注 text writes it) for a whole CST second: the
    same strings for every copy stamped within that second, so they are made once."""
    issued = dt.datetime.fromtimestamp(second, CST)
    expires = issued + dt.timedelta(seconds=ttl_s)
    return (issued.isoformat(timespec="seconds"), expires.isoformat(timespec="seconds"),
            expires.strftime("%Y年%m月%d日%H时%M分"))


def _window(at: dt.datetime, ttl: dt.timedelta) -> tuple[str, str, str]:
    at = aware(at)
    if ttl.microseconds == 0:
        return _window_of(math.floor(at.timestamp()), int(ttl.total_seconds()))
    issued, expires = at.astimezone(CST), at.astimezone(CST) + ttl
    return (issued.isoformat(timespec="seconds"), expires.isoformat(timespec="seconds"),
            expires.strftime("%Y年%m月%d日%H时%M分"))


_HEADERS: dict[str, bytes] = {}  # kid -> encoded use-copy header


def _payload_bytes(payload: dict[str, Any]) -> bytes:
    """``canonical_json(payload)`` (the payload holds only small members)."""
    from certificates.signing import canonical_json

    return canonical_json(payload)


def _b64(data: bytes) -> bytes:
    """BASE64URL without padding (pybase64: SIMD, several times the stdlib's speed on a ~3.6 KB payload)."""
    return pybase64.b64encode(data, altchars=b"-_").rstrip(b"=")


def _signed(signer: "HubServiceKey", payload: dict[str, Any]) -> str:
    """The compact JWS :meth:`certificates.pki.HubServiceKey.sign` makes of ``payload``
    (assembled as bytes: the ~3.6 KB signing input is not copied between str and bytes)."""
    from certificates.signing import canonical_json

    header = _HEADERS.get(signer.kid)
    if header is None:
        header = _HEADERS.setdefault(signer.kid, _b64(canonical_json(
            {"alg": "Ed25519", "kid": signer.kid, "typ": USE_COPY_TYPE, "ver": _HEADER_VERSION})))
    signing_input = b"".join((header, b".", _b64(_payload_bytes(payload))))
    return b"".join((signing_input, b".", _b64(signer.private_key.sign(signing_input)))).decode("ascii")


def use_copy_payload(*, licence_id: str, licence_token: str, purpose: dict[str, str],
                     requester: dict[str, str], at: dt.datetime, ttl: dt.timedelta, log_seq: int) -> dict[str, Any]:
    """The payload of a use-copy (what :func:`make_use_copy` signs, or :func:`seal_use_copies` seals)."""
    issued_at, expires_at, expires_text = _window(at, ttl)
    return {"ver": USE_COPY_VERSION, "licence_id": licence_id, "licence_sha256": licence_digest(licence_token),
            "purpose": purpose,
            "requester": requester, "issued_at": issued_at, "expires_at": expires_at, "log_seq": log_seq,
            "stamp": _stamp(purpose, expires_text)}


def make_use_copy(signer: "HubServiceKey", *, licence_id: str, licence_token: str, purpose: dict[str, str],
                  requester: dict[str, str], at: dt.datetime, ttl: dt.timedelta,
                  log_seq: int) -> dict[str, Any]:
    """Stamp and sign a use-copy with the hub service key; returns ``{"token", "expires_at", "stamp"}``,
    ``token`` the presented form (:func:`present`: the copy, ``~``, the licence token)."""
    payload = use_copy_payload(licence_id=licence_id, licence_token=licence_token, purpose=purpose,
                               requester=requester, at=at, ttl=ttl, log_seq=log_seq)
    return {"token": present(_signed(signer, payload), licence_token), "expires_at": payload["expires_at"],
            "stamp": payload["stamp"]}


def seal_use_copies(signer: "HubServiceKey", payloads: Sequence[dict[str, Any]], *, seal_id: str) -> list[str]:
    """The tokens of ``payloads`` (from :func:`use_copy_payload`) under one hub signature: the
    sealed format of the module doc, ``tokens[i]`` carrying ``payloads[i]``; one payload gets
    the plain JWS of :func:`make_use_copy`. ``seal_id`` names the seal (its header's ``bid``).
    The tokens are the copies alone: present each with its licence (:func:`present`)."""
    from certificates.batch import MAX_BATCH, PROOF_VERSION, batch_header, root_statement
    from certificates.merkle import MerkleTree

    n = len(payloads)
    if n == 1:
        return [_signed(signer, payloads[0])]
    if not 1 <= n <= MAX_BATCH:
        raise ValueError(f"a seal holds 1..{MAX_BATCH} use-copies, got {n}")
    header = batch_header(signer.kid, seal_id, n, typ=SEALED_TYPE)
    bodies = [_b64(_payload_bytes(p)) for p in payloads]
    prefix = hashlib.sha256(f"\x00{header}.".encode("ascii"))
    leaves = []
    for body in bodies:
        h = prefix.copy()
        h.update(body)
        leaves.append(h.digest())
    tree = MerkleTree(leaves)
    statement = root_statement(signer.kid, header, tree.root, n, typ=SEALED_ROOT_TYPE, fmt=SEALED_ROOT_FORMAT)
    fixed = bytes((PROOF_VERSION,)), signer.private_key.sign(statement.encode("ascii"))
    head = header.encode("ascii") + b"."
    return [b"".join((head, body, b".", _b64(b"".join((fixed[0], i.to_bytes(4, "big"), fixed[1],
                                                            *tree.proof(i)))))).decode("ascii")
            for i, body in enumerate(bodies)]


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def verify_use_copy(parts: list[str], header: dict[str, Any], header_bytes: bytes, payload_bytes: bytes,
                    signature: bytes, trust: "TrustStore", *, at: dt.datetime,
                    status_lookup: "StatusLookup | None" = None,
                    status_source: "StatusSource | None" = None, sealed: bool = False,
                    licence_token: str | None = None) -> "Verification":
    """Verify a use-copy whose token :func:`certificates.verify.verify_licence` has split and
    decoded (strict base64url); call that function, not this one. ``sealed``: the header is a
    sealed copy's (checked there) and ``signature`` is its proof. ``licence_token``: the
    licence it was presented with (after ``~``), None when it came alone."""
    from dataclasses import replace

    from certificates.signing import parse_canonical
    from certificates.verify import REASON_ZH, Outcome, Verification, _check_batch, verify_licence

    def fail(outcome: Outcome, detail: str, reason: str | None = None, **kw: Any) -> Verification:
        return Verification(outcome, reason or REASON_ZH[outcome], detail=detail, **kw)

    if not sealed and (header.get("alg") != "Ed25519" or header.get("ver") != _HEADER_VERSION):
        return fail(Outcome.MALFORMED, "unsupported_header")
    hub = trust.service(header["kid"])
    if hub is None:
        return fail(Outcome.UNKNOWN_ISSUER, "unknown_kid", "加注件的签章不是本枢纽的服务签章，无法确认来源")
    if sealed:
        problem = _check_batch(parts, header, signature, hub, root_type=SEALED_ROOT_TYPE,
                               root_format=SEALED_ROOT_FORMAT)
    else:
        try:
            hub.verify_signature(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
            problem = None
        except InvalidSignature:
            problem = "bad_signature"
    if problem is not None:
        return fail(Outcome.TAMPERED, problem, "加注件内容被篡改或签章无效，请勿受理")
    try:
        payload, canonical = parse_canonical(payload_bytes)
    except (UnicodeDecodeError, ValueError):
        return fail(Outcome.MALFORMED, "bad_payload")
    if not isinstance(payload, dict) or not canonical:
        return fail(Outcome.MALFORMED, "unsupported_use_copy")
    if payload.get("ver") == USE_COPY_VERSION and set(payload) == _FIELDS \
            and isinstance(payload["licence_sha256"], str):
        embedded = None
    elif payload.get("ver") == 1 and set(payload) == _FIELDS_V1 and isinstance(payload["licence"], str):
        embedded = payload["licence"]  # a version-1 copy carries its licence
    else:
        return fail(Outcome.MALFORMED, "unsupported_use_copy")
    issued_at, expires_at = _moment(payload["issued_at"]), _moment(payload["expires_at"])
    if issued_at is None or expires_at is None or expires_at <= issued_at:
        return fail(Outcome.MALFORMED, "bad_use_copy_window")
    copy_info = {key: payload[key] for key in ("purpose", "requester", "issued_at", "expires_at", "log_seq",
                                               "stamp")}
    copy_info["signer"] = hub.kid

    cert_time = hub.time_status(at)
    if cert_time == "expired":
        return fail(Outcome.ISSUER_CERT_EXPIRED, "hub_service_cert_expired",
                    "枢纽服务签章证书已过期，加注件无法确认，请重新调取", use_copy=copy_info)
    if cert_time == "not_yet_valid":
        return fail(Outcome.ISSUER_CERT_NOT_YET_VALID, "hub_service_cert_not_yet_valid",
                    "枢纽服务签章证书尚未生效，请核对系统时间", use_copy=copy_info)
    at = aware(at)
    if at >= expires_at:
        return fail(Outcome.USE_COPY_EXPIRED, "use_copy_expired",
                    f"加注件已于 {expires_at.astimezone(CST):%Y-%m-%d %H:%M} 失效，请重新调取证照",
                    use_copy=copy_info)
    if at < issued_at:
        return fail(Outcome.NOT_YET_VALID, "use_copy_not_yet_valid", "加注件尚未生效，请核对系统时间",
                    use_copy=copy_info)

    if embedded is not None:
        if licence_token is not None and licence_token != embedded:
            return fail(Outcome.MALFORMED, "licence_mismatch", "所附证照与加注件载明的证照不一致",
                        use_copy=copy_info)
        licence_token = embedded
    elif licence_token is None:
        return fail(Outcome.MALFORMED, "licence_not_presented", "加注件须与所附证照一并出示（加注件~证照）",
                    use_copy=copy_info)
    elif not hmac.compare_digest(licence_digest(licence_token), payload["licence_sha256"]):
        return fail(Outcome.TAMPERED, "licence_digest_mismatch", "所附证照与加注件签章时的证照不符，请勿受理",
                    use_copy=copy_info)
    inner = verify_licence(licence_token, trust, at=at, status_lookup=status_lookup,
                           status_source=status_source)
    if inner.use_copy is not None:
        return fail(Outcome.MALFORMED, "nested_use_copy", use_copy=copy_info)
    if inner.payload is not None and inner.licence_id != payload["licence_id"]:
        return fail(Outcome.MALFORMED, "licence_id_mismatch", "加注件载明的证照标识与所附证照不一致",
                    use_copy=copy_info)
    return replace(inner, use_copy=copy_info)
