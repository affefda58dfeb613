"""Verifying a licence token: always a typed :class:`Verification`, never a bare bool.

Order of checks (the first failure decides the outcome):

1. token shape: three canonical base64url parts, header ``alg`` Ed25519, ``typ``,
   ``ver`` 1, ``kid`` (a single-issued JWS) or the batch header of
   :mod:`certificates.batch` (``typ`` ``vnd.onewindow.licence+mtp``, ``ver`` 2)
   → ``MALFORMED``;
2. ``kid`` among the trusted issuers → ``UNKNOWN_ISSUER``;
3. Ed25519 signature over ``header.payload`` — for a batch token, the Merkle audit
   path from the leaf to a root and the signature over the batch's root statement
   → ``TAMPERED``;
4. payload is canonical JSON of the ``onewindow.licence/1`` format and its identifier
   passes GB/T 36904 → ``MALFORMED``. An identifier with a wrong check character
   inside an *authentic* signature is a broken licence, not a forgery, hence
   ``MALFORMED`` (detail ``identifier_invalid``); ``TAMPERED`` is kept for signature
   failures. A known-variant check character is accepted with a warning;
5. the signing department is the payload's 颁发机构 → ``UNKNOWN_ISSUER``
   (detail ``issuer_mismatch``);
6. issuer certificate (and root) valid at ``at`` → ``ISSUER_CERT_EXPIRED`` /
   ``ISSUER_CERT_NOT_YET_VALID``;
7. status — from ``status_lookup`` or ``status_source`` (status lists) when given, else the status signed in the
   payload: 02 → ``SUSPENDED``; 03 撤销 / 04 注销 / 07 吊销 → ``REVOKED``; 05 →
   ``EXPIRED``; the lookup raising :class:`StatusUnavailable`, answering None
   (licence unknown to the status service) or an unknown code → ``STATUS_UNAVAILABLE``;
8. validity dates against the CST date of ``at`` (``valid_until`` inclusive, null
   = 长期) → ``NOT_YET_VALID`` / ``EXPIRED``.

A use-copy (加注件, header ``typ`` ``vnd.onewindow.use-copy+jws``, or
``vnd.onewindow.use-copy+mtp`` for copies sealed together under one hub signature) is handed
to :func:`certificates.usecopy.verify_use_copy` after step 1: hub service signature (for a
sealed copy: its Merkle proof to a root whose statement the hub service key signed), the
copy's window (``USE_COPY_EXPIRED``), then the licence it references through these same
steps. A use-copy is presented as ``<use-copy>~<licence token>``: it names its licence by the
SHA-256 digest of the token (``certificates.usecopy``), so the licence comes beside it.

Two caches save work without changing any outcome: decoded headers by the header
segment's exact text (1,024), and checked batch root statements by (issuer public key,
header segment, root, signature), at most :data:`VERIFIED_ROOTS_MAX`, successes only.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from cryptography.exceptions import InvalidSignature

from certificates._time import aware, local_date, now
from certificates.exceptions import StatusUnavailable
from certificates import batch as batch_format
from certificates.identifiers import VARIANT_FLAG, check_identifier, identifier_status
from certificates.merkle import HASH_SIZE, root_from_path
from certificates.model import FORMAT
from certificates.signing import ALG, TOKEN_TYPE, TOKEN_VERSION, parse_canonical
from certificates.trust import TrustedIssuer, TrustStore

StatusLookup = Callable[[str], "str | None"]
_USE_COPY_TYPE = "vnd.onewindow.use-copy+jws"  # == certificates.usecopy.USE_COPY_TYPE
_SEALED_USE_COPY_TYPE = "vnd.onewindow.use-copy+mtp"  # == certificates.usecopy.SEALED_TYPE


class StatusSource(Protocol):
    def status_of(self, payload: dict[str, Any], at: dt.datetime) -> str | None: ...


class Outcome(enum.Enum):
    VALID = "valid"
    TAMPERED = "tampered"
    UNKNOWN_ISSUER = "unknown_issuer"
    ISSUER_CERT_EXPIRED = "issuer_cert_expired"
    ISSUER_CERT_NOT_YET_VALID = "issuer_cert_not_yet_valid"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    STATUS_UNAVAILABLE = "status_unavailable"
    MALFORMED = "malformed"
    USE_COPY_EXPIRED = "use_copy_expired"  # a use-copy (加注件) past its expires_at


REASON_ZH: dict[Outcome, str] = {
    Outcome.VALID: "证照有效，签名核验通过",
    Outcome.TAMPERED: "证照内容被篡改或签名无效，请勿受理",
    Outcome.UNKNOWN_ISSUER: "签发机构不在信任列表中，无法确认证照来源",
    Outcome.ISSUER_CERT_EXPIRED: "签发机构的签名证书已过期，请联系发证部门重新签发",
    Outcome.ISSUER_CERT_NOT_YET_VALID: "签发机构的签名证书尚未生效，请核对系统时间或稍后再试",
    Outcome.REVOKED: "证照已被撤销、注销或吊销，不能作为有效材料",
    Outcome.SUSPENDED: "证照已被暂扣，暂不能作为有效材料",
    Outcome.EXPIRED: "证照已超过有效期",
    Outcome.NOT_YET_VALID: "证照尚未生效",
    Outcome.STATUS_UNAVAILABLE: "暂时无法查询证照状态，请稍后重试或人工核实",
    Outcome.MALFORMED: "证照数据格式错误，无法识别",
    Outcome.USE_COPY_EXPIRED: "加注件已超过使用期限，请重新调取证照",
}

_STATUS_OUTCOME = {
    "02": (Outcome.SUSPENDED, "suspended", "证照已被暂扣，暂不能作为有效材料"),
    "03": (Outcome.REVOKED, "revoked", "证照已被撤销，不能作为有效材料"),
    "04": (Outcome.REVOKED, "cancelled", "证照已注销，不能作为有效材料"),
    "05": (Outcome.EXPIRED, "status_expired", "证照已失效"),
    "07": (Outcome.REVOKED, "withdrawn", "证照已被吊销，不能作为有效材料"),
}


@dataclass(frozen=True, init=False)
class Verification:
    """What verification found.

    ``code`` is ``outcome.value`` (stable machine string), ``detail`` a finer machine
    code where one helps, ``reason_zh`` words for the clerk, ``warnings`` accepted
    irregularities (a known-variant identifier check character).
    """

    outcome: Outcome
    reason_zh: str
    payload: dict[str, Any] | None = None
    licence_id: str | None = None
    issuer: str | None = None  # issuer department credit code, when the signer is known
    detail: str | None = None
    warnings: tuple[str, ...] = field(default=())
    issuer_name: str | None = None
    #: For a use-copy (加注件): its purpose, requester, issued_at, expires_at, log_seq, stamp, signer.
    use_copy: dict[str, Any] | None = None
    code: str = field(init=False)  # == outcome.value; a field so asdict() carries it

    def __init__(self, outcome: Outcome, reason_zh: str, payload: dict[str, Any] | None = None,
                 licence_id: str | None = None, issuer: str | None = None, detail: str | None = None,
                 warnings: tuple[str, ...] = (), issuer_name: str | None = None,
                 use_copy: dict[str, Any] | None = None) -> None:
        # The generated frozen __init__ sets each field through object.__setattr__; one dict
        # update is 0.8 us cheaper, which is a few per cent of a verification.
        self.__dict__.update(outcome=outcome, reason_zh=reason_zh, payload=payload, licence_id=licence_id,
                             issuer=issuer, detail=detail, warnings=warnings, issuer_name=issuer_name,
                             use_copy=use_copy, code=outcome.value)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.VALID

    def __bool__(self) -> bool:
        raise TypeError("a Verification is not a boolean: test .ok or .outcome")


# '-' '_' become the standard alphabet; '+' '/' '=' (not base64url) and the JSON string
# specials '"' '\\' become '!', which msgspec's base64 decoder refuses like any other
# character outside the alphabet (tests compare it with a plain strict decoder).
_TO_STD = bytes.maketrans(b'-_+/="\\', b"+/!!!!!")
_CLOSE = (b'"', b'', b'=="', b'="')  # padding + closing quote, by len % 4
_decode_b64_string = msgspec.json.Decoder(bytes).decode  # a JSON string of standard base64
_STD_VALUE = {c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_UNUSED_BITS = (0, 0, 0b1111, 0b11)  # by len % 4: bits of the last character no byte uses


def _b64decode_std(std: bytes | memoryview) -> bytes | None:
    """Strict base64url (alphabet, no padding, canonical: unused bits zero) of text already
    mapped through ``_TO_STD``."""
    rest = len(std) % 4
    if rest == 1:
        return None
    try:
        data = _decode_b64_string(b"".join((b'"', std, _CLOSE[rest])))
    except msgspec.DecodeError:
        return None
    if rest and _STD_VALUE[std[-1]] & _UNUSED_BITS[rest]:
        return None
    return data


def _b64decode(segment: str) -> bytes | None:
    """Strict base64url: alphabet, no padding, and canonical (unused bits zero)."""
    try:
        return _b64decode_std(segment.encode("ascii").translate(_TO_STD))
    except UnicodeEncodeError:
        return None


@functools.lru_cache(maxsize=1024)
def _decode_header(segment: str) -> tuple[bytes | None, dict[str, Any] | None, str]:
    """(header bytes, parsed header, kind) of a header segment; cached by the segment's exact
    text (one issuer key, or one batch, shares a header across many tokens). ``kind`` is
    ``single``, ``batch`` or ``use_copy``, else the step-1 detail that fails it:
    ``bad_base64url`` (bytes None), ``bad_header`` or ``unsupported_header``.
    The parsed header is never handed out: callers get a copy."""
    data = _b64decode(segment)
    if data is None:
        return None, None, "bad_base64url"
    try:
        header = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return data, None, "bad_header"
    if not isinstance(header, dict) or not isinstance(header.get("kid"), str) or "crit" in header:
        return data, None, "unsupported_header"
    if header.get("typ") == _USE_COPY_TYPE:  # a use-copy (加注件): hub-signed, wraps a licence token
        return data, header, "use_copy"
    if header.get("typ") == TOKEN_TYPE and header.get("alg") == ALG and header.get("ver") == TOKEN_VERSION:
        return data, header, "single"
    batch_shaped = "alg" not in header and header.get("ver") == batch_format.TOKEN_VERSION \
        and header.get("mtp") == batch_format.MTP and isinstance(header.get("bid"), str) \
        and type(header.get("bsz")) is int and 1 <= header["bsz"] <= batch_format.MAX_BATCH
    if batch_shaped and header.get("typ") == batch_format.TOKEN_TYPE:
        return data, header, "batch"
    if batch_shaped and header.get("typ") == _SEALED_USE_COPY_TYPE:  # use-copies sealed under one root
        return data, header, "use_copy_sealed"
    return data, None, "unsupported_header"


def _malformed(detail: str, **kw: Any) -> Verification:
    return Verification(Outcome.MALFORMED, REASON_ZH[Outcome.MALFORMED], detail=detail, **kw)


#: Root statements whose signature has been checked, keyed by (issuer public key, header
#: segment, root, signature): the statement is ``root_statement(kid, header, root, bsz)``
#: with kid and bsz read from that exact header segment, so the key stands for the exact
#: statement bytes, the signature and the key that verified them. First in, first out.
_VERIFIED_ROOTS: dict[tuple[bytes, str, bytes, bytes], None] = {}
VERIFIED_ROOTS_MAX = 4096
_ROOTS_LOCK = threading.Lock()


def _check_batch(parts: list[str], header: dict[str, Any], proof: bytes, signer: TrustedIssuer, *,
                 root_type: str = batch_format.ROOT_TYPE, root_format: str = batch_format.ROOT_FORMAT) -> str | None:
    """None when the proof leads from the leaf to a root whose statement ``signer`` signed,
    else the detail: ``bad_proof`` or ``bad_signature``. ``root_type`` / ``root_format``: the
    statement's ``typ`` and ``format`` (a licence batch's, or sealed use-copies')."""
    if len(proof) < batch_format.PROOF_FIXED or (len(proof) - batch_format.PROOF_FIXED) % HASH_SIZE \
            or proof[0] != batch_format.PROOF_VERSION:
        return "bad_proof"
    index = int.from_bytes(proof[1:5], "big")
    signature = proof[5:batch_format.PROOF_FIXED]
    raw_path = proof[batch_format.PROOF_FIXED:]
    path = [raw_path[i:i + HASH_SIZE] for i in range(0, len(raw_path), HASH_SIZE)]
    root = root_from_path(batch_format.leaf_for(parts[0], parts[1]), index, header["bsz"], path)
    if root is None:
        return "bad_proof"
    seen = (signer.key_bytes, parts[0], root, signature)
    if seen in _VERIFIED_ROOTS:
        return None
    statement = batch_format.root_statement(header["kid"], parts[0], root, header["bsz"], typ=root_type,
                                            fmt=root_format)
    try:
        signer.verify_signature(signature, statement.encode("ascii"))
    except InvalidSignature:
        return "bad_signature"
    with _ROOTS_LOCK:
        while len(_VERIFIED_ROOTS) >= VERIFIED_ROOTS_MAX:
            del _VERIFIED_ROOTS[next(iter(_VERIFIED_ROOTS))]
        _VERIFIED_ROOTS[seen] = None
    return None


def verify_licence(token: str, trust: TrustStore, *, at: dt.datetime,
                   status_lookup: StatusLookup | None = None,
                   status_source: StatusSource | None = None) -> Verification:
    """Verify a licence token against ``trust`` at the moment ``at``.

    Status comes from ``status_lookup(licence_id)`` (the library), else from
    ``status_source.status_of(payload, at)`` (published status lists,
    :class:`certificates.statuslist.StatusLists`), else from the signed payload.
    """
    at = aware(at)
    if not isinstance(token, str):
        return _malformed("not_a_string")
    token = token.strip()
    presented = None  # the licence a use-copy is presented with: "<use-copy>~<licence>"
    if "~" in token:
        token, _, presented = token.partition("~")
    cut1 = token.find(".")
    cut2 = token.find(".", cut1 + 1)
    if cut1 < 0 or cut2 < 0 or token.find(".", cut2 + 1) >= 0:
        return _malformed("not_compact_jws")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:  # then some segment is not base64url
        return _malformed("bad_base64url")
    std = memoryview(raw.translate(_TO_STD))
    header_bytes, header, kind = _decode_header(token[:cut1])
    payload_bytes, signature = _b64decode_std(std[cut1 + 1:cut2]), _b64decode_std(std[cut2 + 1:])
    if header_bytes is None or payload_bytes is None or signature is None:
        return _malformed("bad_base64url")
    if header is None:
        return _malformed(kind)
    if kind == "use_copy" or kind == "use_copy_sealed":
        from certificates.usecopy import verify_use_copy

        return verify_use_copy(token.split("."), dict(header), header_bytes, payload_bytes, signature, trust,
                               at=at, status_lookup=status_lookup, status_source=status_source,
                               sealed=kind == "use_copy_sealed", licence_token=presented)
    if presented is not None:  # only a use-copy is presented with a licence
        return _malformed("not_compact_jws")

    signer = trust.issuer(header["kid"])
    if signer is None:
        return Verification(Outcome.UNKNOWN_ISSUER, REASON_ZH[Outcome.UNKNOWN_ISSUER],
                            detail="unknown_kid")
    if kind == "batch":
        problem = _check_batch(token.split("."), header, signature, signer)
    else:
        try:
            signer.verify_signature(signature, memoryview(raw)[:cut2])  # header.payload, no copy
            problem = None
        except InvalidSignature:
            problem = "bad_signature"
    if problem is not None:
        return Verification(Outcome.TAMPERED, REASON_ZH[Outcome.TAMPERED], issuer=signer.code, detail=problem)

    try:
        payload, canonical = parse_canonical(payload_bytes)
    except (UnicodeDecodeError, ValueError):
        return _malformed("bad_payload", issuer=signer.code)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return _malformed("unsupported_format", issuer=signer.code)
    licence_id = payload.get("licence_id")
    common: dict[str, Any] = {"payload": payload, "issuer": signer.code, "issuer_name": signer.name,
                              "licence_id": licence_id if isinstance(licence_id, str) else None}
    if not canonical:
        return _malformed("payload_not_canonical", **common)
    quick = identifier_status(licence_id) if isinstance(licence_id, str) else None
    if quick is None or quick[0] == "invalid":  # check_identifier explains
        ident = check_identifier(licence_id) if isinstance(licence_id, str) else None
        if ident is None or not ident.ok:
            return Verification(Outcome.MALFORMED, f"证照标识无效：{ident.reason_zh if ident else '缺失'}",
                                detail="identifier_invalid", **common)
        quick = ident.status, ident.identifier.issuer_code  # type: ignore[union-attr]  # ok: parsed
    if quick[0] == "known_variant":
        common["warnings"] = (VARIANT_FLAG,)
    issuer_obj = payload.get("issuer")
    payload_issuer = issuer_obj.get("code") if isinstance(issuer_obj, dict) else None
    if payload_issuer != signer.code or quick[1] != signer.code:
        return Verification(Outcome.UNKNOWN_ISSUER, "签名机构与证照载明的颁发机构不一致，无法确认证照来源",
                            detail="issuer_mismatch", **common)

    cert_time = signer.time_status(at)
    if cert_time == "expired":
        return Verification(Outcome.ISSUER_CERT_EXPIRED, REASON_ZH[Outcome.ISSUER_CERT_EXPIRED],
                            **common)
    if cert_time == "not_yet_valid":
        return Verification(Outcome.ISSUER_CERT_NOT_YET_VALID,
                            REASON_ZH[Outcome.ISSUER_CERT_NOT_YET_VALID], **common)

    if status_lookup is not None or status_source is not None:
        try:
            status = status_lookup(licence_id) if status_lookup is not None \
                else status_source.status_of(payload, at)  # type: ignore[union-attr]
        except StatusUnavailable as exc:
            return Verification(Outcome.STATUS_UNAVAILABLE, REASON_ZH[Outcome.STATUS_UNAVAILABLE],
                                detail=f"lookup_failed: {exc.reason}", **common)
        if status is None:
            return Verification(Outcome.STATUS_UNAVAILABLE, "状态服务中查无此证照，请人工核实",
                                detail="status_unknown", **common)
    else:
        status = payload.get("status")
    if type(status) is str and status in _STATUS_OUTCOME:
        outcome, detail, reason = _STATUS_OUTCOME[status]
        return Verification(outcome, reason, detail=detail, **common)
    if status != "01":
        return Verification(Outcome.STATUS_UNAVAILABLE, REASON_ZH[Outcome.STATUS_UNAVAILABLE],
                            detail="status_code_unrecognised", **common)

    today = local_date(at)
    try:
        valid_from = dt.date.fromisoformat(payload["valid_from"]) if payload.get("valid_from") else None
        valid_until = dt.date.fromisoformat(payload["valid_until"]) if payload.get("valid_until") else None
    except (TypeError, ValueError):
        return _malformed("bad_validity_dates", **common)
    if valid_from is not None and today < valid_from:
        return Verification(Outcome.NOT_YET_VALID, f"证照尚未生效（自 {valid_from} 起有效）", **common)
    if valid_until is not None and today > valid_until:
        return Verification(Outcome.EXPIRED, f"证照已超过有效期（有效期至 {valid_until}）", **common)
    return Verification(Outcome.VALID, REASON_ZH[Outcome.VALID], **common)


def verify_licence_now(token: str, trust: TrustStore, *,
                       status_lookup: StatusLookup | None = None) -> Verification:
    """:func:`verify_licence` at the current moment."""
    return verify_licence(token, trust, at=now(), status_lookup=status_lookup)
