"""Use-copies (加注件): a licence read handed out stamped with its purpose, requester and expiry.

Issue 4 plans ``certificates/usecopy.py``; until it exists the stamping lives here: a
compact JWS (``typ`` ``vnd.onewindow.use-copy+jws``, Ed25519 with the hub root key, the
same signer as the usage-log seals) over canonical JSON::

    {"ver": 1, "licence_id", "licence": <the licence's compact JWS>,
     "purpose": {"item", "case", "clerk"}, "requester": {"client_id", "department"},
     "issued_at", "expires_at", "log_seq", "stamp": "仅供…使用，…前有效"}

``log_seq`` ties the copy to the usage-log record of the read that produced it.
:func:`verify_use_copy` checks signature, type and expiry and raises
:class:`UseCopyError` whatever the cause (it never returns a bare boolean).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exchange.exceptions import ExchangeError

USE_COPY_TYPE = "vnd.onewindow.use-copy+jws"
CST = dt.timezone(dt.timedelta(hours=8), "CST")


class UseCopyError(ExchangeError):
    """A use-copy is not valid: ``reason`` is ``malformed``, ``tampered``, ``expired`` or ``not_yet_valid``."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _stamp(purpose: dict[str, str], expires_at: dt.datetime) -> str:
    return (f"仅供事项 {purpose['item']}（办件 {purpose['case']}）使用，"
            f"{expires_at.strftime('%Y年%m月%d日%H时%M分')}前有效，其他用途无效")


def make_use_copy(signer: Any, *, licence_id: str, licence_token: str, purpose: dict[str, str],
                  requester: dict[str, str], at: dt.datetime, ttl: dt.timedelta, log_seq: int) -> dict[str, Any]:
    """Sign a use-copy; returns ``{"token", "expires_at", "stamp"}``."""
    at = at.astimezone(CST) if at.tzinfo else at.replace(tzinfo=CST)
    expires = at + ttl
    payload = {"ver": 1, "licence_id": licence_id, "licence": licence_token, "purpose": purpose,
               "requester": requester, "issued_at": at.isoformat(timespec="seconds"),
               "expires_at": expires.isoformat(timespec="seconds"), "log_seq": log_seq,
               "stamp": _stamp(purpose, expires)}
    return {"token": signer.sign(payload, typ=USE_COPY_TYPE), "expires_at": payload["expires_at"],
            "stamp": payload["stamp"]}


def _b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_use_copy(token: str, root_public_key: Ed25519PublicKey, *, at: dt.datetime) -> dict[str, Any]:
    """The payload of a valid use-copy at ``at``; raises :class:`UseCopyError` otherwise."""
    try:
        h, p, sig = token.split(".")
        header, payload = json.loads(_b64d(h)), json.loads(_b64d(p))
    except ValueError as exc:
        raise UseCopyError("malformed", f"not a compact JWS use-copy ({exc})") from None
    if header.get("typ") != USE_COPY_TYPE or header.get("alg") != "Ed25519":
        raise UseCopyError("malformed", f"not a use-copy header: {header}")
    try:
        root_public_key.verify(_b64d(sig), f"{h}.{p}".encode("ascii"))
    except InvalidSignature:
        raise UseCopyError("tampered", "加注件签名无效（可能被篡改）。The use-copy signature does not verify.") from None
    at = at.astimezone(CST) if at.tzinfo else at.replace(tzinfo=CST)
    if at >= dt.datetime.fromisoformat(payload["expires_at"]):
        raise UseCopyError("expired", f"加注件已于 {payload['expires_at']} 失效。The use-copy expired.")
    if at < dt.datetime.fromisoformat(payload["issued_at"]):
        raise UseCopyError("not_yet_valid", "加注件尚未生效。The use-copy is not valid yet.")
    return payload
