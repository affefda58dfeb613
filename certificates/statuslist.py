"""Licence status lists in the W3C Bitstring Status List v1.0 style, signed as compact JWS.

Each issuing department has lists of :data:`LIST_SIZE` (131,072) entries of
:data:`STATUS_SIZE` (4) bits; entry ``i`` occupies bits ``4i .. 4i+3`` counted from the
most significant bit of the first byte (W3C order) and holds the GB/T 36903 status
code as a number (``01`` → 1 … ``07`` → 7; 0 = unassigned). The bitstring is GZIP
compressed and base64url encoded with the multibase prefix ``u`` (W3C
``encodedList``). ``statusPurpose`` is ``message`` with the ``statusMessage`` table.

A licence learns its list and index when issued, in its signed payload::

    "credential_status": {"list": <list id>, "index": <entry>, "purpose": "message"}

Indices are handed out in the order of a permutation of ``range(LIST_SIZE)`` seeded
per list (:func:`index_order`), so neighbouring licences do not sit next to each other.
A list's seed fixes its order for good (the list's fill counts into it), so the
permutation is defined by the seed alone: seeds made by :func:`new_seed` (``v2-…``) order
the indices by a SHAKE-256 key stream (``argsort`` of 64-bit keys, stable); older seeds
keep the ``random.Random(seed).shuffle`` order they were created with.

The list is published as a compact JWS signed by the department's licence key::

    header  = {"alg": "Ed25519", "kid": kid, "typ": "vnd.onewindow.status-list+jws", "ver": 1}
    payload = {"format": "onewindow.status-list/1", "list": <id>, "issuer": <credit code>,
               "statusPurpose": "message", "statusSize": 4, "statusMessage": [...],
               "size": 131072, "encodedList": "u…", "validFrom": <ISO>, "validUntil": <ISO>}

A cached list answers until ``validUntil``; after that :class:`StatusLists` raises
:class:`StatusUnavailable` (verification: ``STATUS_UNAVAILABLE``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import json
import os
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidSignature

from certificates._time import CST, aware
from certificates.exceptions import StatusUnavailable
from certificates.signing import b64url, canonical_json
from certificates.trust import TrustStore

LIST_SIZE = 131_072
STATUS_SIZE = 4
TOKEN_TYPE = "vnd.onewindow.status-list+jws"
FORMAT = "onewindow.status-list/1"
DEFAULT_VALIDITY = dt.timedelta(days=2)
STATUS_MESSAGES = [{"status": f"0x{int(code):x}", "message": f"{code} {name}"}
                   for code, name in (("01", "有效"), ("02", "暂扣"), ("03", "撤销"), ("04", "注销"),
                                      ("05", "失效"), ("07", "吊销"))]


ORDER_V2 = "v2-"


def new_seed() -> str:
    """A fresh secret seed for a new list (its order: :func:`index_order_array`)."""
    import secrets

    return ORDER_V2 + secrets.token_hex(16)


def index_order_array(seed: str, size: int = LIST_SIZE) -> Any:
    """The order in which a list hands out its entries (numpy int64): a permutation seeded by ``seed``."""
    import hashlib

    if seed.startswith(ORDER_V2):
        stream = hashlib.shake_256(f"onewindow.status-order/2:{seed}".encode("utf-8")).digest(8 * size)
        return np.argsort(np.frombuffer(stream, dtype=">u8"), kind="stable")
    order = list(range(size))
    random.Random(seed).shuffle(order)
    return np.array(order, dtype=np.int64)


def index_order(seed: str, size: int = LIST_SIZE) -> list[int]:
    """:func:`index_order_array` as a list."""
    return index_order_array(seed, size).tolist()


def encode_list(statuses: "Mapping[int, str] | tuple[Any, Any]", size: int = LIST_SIZE) -> str:
    """``encodedList`` for ``{index: status code}`` (multibase base64url of the GZIP bitstring),
    or for ``(indices, codes)`` as two arrays (a list of a library's licences, without a Python
    object per entry)."""
    if isinstance(statuses, tuple):
        index, values = (np.asarray(a, dtype=np.int64) for a in statuses)
        if index.shape != values.shape:
            raise ValueError(f"{len(index)} status indices for {len(values)} status codes")
    else:
        index = np.fromiter(statuses.keys(), dtype=np.int64, count=len(statuses))
        values = np.fromiter((int(code) for code in statuses.values()), dtype=np.int64, count=len(statuses))
    outside = np.flatnonzero((index < 0) | (index >= size))
    if outside.size:
        raise ValueError(f"status index {int(index[outside[0]])} outside a list of {size}")
    unfit = np.flatnonzero((values <= 0) | (values >= 16))
    if unfit.size:
        raise ValueError(f"status code {int(values[unfit[0]]):02d} does not fit {STATUS_SIZE} bits")
    if np.unique(index).size != index.size:
        raise ValueError("a status index appears twice")
    bits = np.zeros(size * STATUS_SIZE // 8, dtype=np.uint8)
    byte, low = np.divmod(index, 2)
    high = low == 0
    bits[byte[high]] |= (values[high] << 4).astype(np.uint8)
    bits[byte[~high]] |= values[~high].astype(np.uint8)
    return "u" + b64url(gzip.compress(bits.tobytes(), mtime=0))


def decode_entry(bitstring: bytes, index: int) -> int:
    byte, high = divmod(index, 2)
    b = bitstring[byte]
    return b >> 4 if high == 0 else b & 0x0F


def sign_status_list(*, list_id: str, issuer_code: str, kid: str, private_key: Any,
                     statuses: "Mapping[int, str] | tuple[Any, Any]", at: dt.datetime,
                     validity: dt.timedelta = DEFAULT_VALIDITY, until: dt.datetime | None = None) -> str:
    """The signed status list (compact JWS) valid from ``at`` for ``validity`` (or until ``until``)."""
    at = aware(at).astimezone(CST)
    end = aware(until).astimezone(CST) if until is not None else at + validity
    payload = {"format": FORMAT, "list": list_id, "issuer": issuer_code, "statusPurpose": "message",
               "statusSize": STATUS_SIZE, "statusMessage": STATUS_MESSAGES, "size": LIST_SIZE,
               "encodedList": encode_list(statuses),
               "validFrom": at.isoformat(timespec="seconds"),
               "validUntil": end.isoformat(timespec="seconds")}
    head = b64url(canonical_json({"alg": "Ed25519", "kid": kid, "typ": TOKEN_TYPE, "ver": 1}))
    signing_input = f"{head}.{b64url(canonical_json(payload))}"
    return f"{signing_input}.{b64url(private_key.sign(signing_input.encode('ascii')))}"


class StatusListError(ValueError):
    """A status list file is not an authentic, well-formed list (tampered, unknown signer …)."""


def _b64(segment: str) -> bytes:
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if b64url(data) != segment:
        raise binascii.Error("non-canonical base64url")
    return data


@dataclass(frozen=True)
class StatusList:
    list_id: str
    issuer_code: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    bitstring: bytes

    @classmethod
    def verify(cls, token: str, trust: TrustStore) -> "StatusList":
        """Check signature, signer and shape of a published list; raises :class:`StatusListError`."""
        try:
            parts = token.strip().split(".")
            if len(parts) != 3:
                raise StatusListError("not a compact JWS")
            header = json.loads(_b64(parts[0]))
            signature = _b64(parts[2])
            if header.get("typ") != TOKEN_TYPE or header.get("alg") != "Ed25519" or header.get("ver") != 1:
                raise StatusListError("not a status list header")
            signer = trust.issuer(str(header.get("kid")))
            if signer is None:
                raise StatusListError("signed by a key the trust store does not know")
            signer.verify_signature(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
            payload = json.loads(_b64(parts[1]))
            if payload.get("format") != FORMAT or payload.get("issuer") != signer.code \
                    or payload.get("statusSize") != STATUS_SIZE or payload.get("size") != LIST_SIZE:
                raise StatusListError("unsupported status list payload")
            encoded = payload["encodedList"]
            if not encoded.startswith("u"):
                raise StatusListError("encodedList is not multibase base64url")
            bits = gzip.decompress(_b64(encoded[1:]))
            if len(bits) != LIST_SIZE * STATUS_SIZE // 8:
                raise StatusListError("bitstring has the wrong length")
            return cls(payload["list"], payload["issuer"], dt.datetime.fromisoformat(payload["validFrom"]),
                       dt.datetime.fromisoformat(payload["validUntil"]), bits)
        except InvalidSignature:
            raise StatusListError("signature does not verify") from None
        except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError,
                OSError, EOFError, gzip.BadGzipFile) as exc:
            if isinstance(exc, StatusListError):
                raise
            raise StatusListError(f"malformed status list ({type(exc).__name__})") from None

    def status(self, index: int) -> str | None:
        value = decode_entry(self.bitstring, index)
        return None if value == 0 else f"{value:02d}"


class StatusLists:
    """Status source for :func:`certificates.verify.verify_licence`: published lists, cached.

    ``lists`` are verified once when loaded; :meth:`status_of` answers for a payload's
    ``credential_status`` at the moment ``at`` and raises :class:`StatusUnavailable`
    when the list is missing, not yet valid or expired.
    """

    def __init__(self, lists: Iterable[StatusList]) -> None:
        self.lists = {sl.list_id: sl for sl in lists}

    @classmethod
    def from_dir(cls, directory: Path, trust: TrustStore) -> "StatusLists":
        """Load every ``*.jws`` list under ``directory``; a bad file raises :class:`StatusListError`."""
        return cls(StatusList.verify(p.read_text(encoding="ascii"), trust)
                   for p in sorted(Path(directory).glob("*.jws")))

    def status_of(self, payload: Mapping[str, Any], at: dt.datetime) -> str | None:
        licence_id = str(payload.get("licence_id"))
        ref = payload.get("credential_status")
        if not isinstance(ref, dict) or not isinstance(ref.get("index"), int):
            raise StatusUnavailable(licence_id, "the licence names no status list entry")
        sl = self.lists.get(ref.get("list"))
        if sl is None:
            raise StatusUnavailable(licence_id, f"status list {ref.get('list')!r} is not cached")
        at = aware(at)
        if at < sl.valid_from or at > sl.valid_until:
            raise StatusUnavailable(licence_id, f"cached status list {sl.list_id} is outside its validity "
                                                f"window ({sl.valid_from} – {sl.valid_until})")
        issuer = payload.get("issuer")
        if not isinstance(issuer, dict) or issuer.get("code") != sl.issuer_code \
                or not 0 <= ref["index"] < LIST_SIZE:
            raise StatusUnavailable(licence_id, "the status list entry does not belong to this issuer")
        return sl.status(ref["index"])


def write_list(directory: Path, list_id: str, token: str) -> Path:
    """Publish one list as ``<directory>/<list id>.jws`` (replaced atomically)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{list_id}.jws"
    tmp = directory / f".{list_id}.jws.tmp"
    tmp.write_text(token + "\n", encoding="ascii")
    os.replace(tmp, path)
    return path
