"""Batch issuance: one Ed25519 signature over a Merkle root per batch, a proof per licence.

A batch-issued licence is a self-contained token of three base64url segments, shaped
like a compact JWS so that tools which split on ``.`` still find the payload::

    BASE64URL(header) . BASE64URL(JCS(payload)) . BASE64URL(proof)

    header = {"bid": <batch id>, "bsz": <leaves in the batch>, "kid": <issuer key id>,
              "mtp": "rfc9162-sha256", "typ": "vnd.onewindow.licence+mtp", "ver": 2}
    proof  = 0x02 || index (uint32, big endian) || Ed25519 signature (64 bytes)
             || audit path (32 bytes per node, leaf to root, RFC 9162 §2.1.3.1)

The header has no ``alg``: the token is *not* a JWS and a JOSE library must refuse it
rather than misread it. The payload is exactly the single-mode payload (RFC 8785).

Leaf ``i`` is ``SHA-256(0x00 || ASCII(header_b64 "." payload_b64))``; the tree is RFC
9162's (see :mod:`certificates.merkle`). What the issuer signs, once per batch, is a
standard compact JWS — the *root statement* — that anyone can check with the JWKS::

    root header  = {"alg": "Ed25519", "kid": kid, "typ": "vnd.onewindow.licence-batch+jws", "ver": 1}
    root payload = {"format": "onewindow.licence-batch/1", "hash": "sha-256",
                    "header": header_b64, "root": BASE64URL(root), "size": bsz}

A verifier rebuilds the root from the leaf and the path, rebuilds the root statement
from the token's header, and checks the signature carried in the proof. Binding
``header`` (and so ``kid``, ``bid``, ``bsz``) into the root statement means no field
of the token can change without the signature failing.

:class:`PayloadEncoder` produces the same bytes as ``canonical_json(build_payload(row))``
(a test checks it row by row) without building the dict: the payload's shape is fixed,
so its RFC 8785 form is a template with escaped strings slotted in. Rows it does not
recognise as ordinary go through :func:`certificates.model.build_payload`, which also
raises the proper :class:`LicenceDataError`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certificates._time import CST, aware
from certificates.identifiers import ALPHABET, ROOT, _M, _VALUE, _check_parts, _running_value
from certificates.merkle import MerkleTree
from certificates.model import FORMAT, STATUS_CODES, build_payload, serial_for
from certificates.registry import load_registry
from certificates.signing import b64url, canonical_json

TOKEN_TYPE = "vnd.onewindow.licence+mtp"
TOKEN_VERSION = 2
MTP = "rfc9162-sha256"
ROOT_TYPE = "vnd.onewindow.licence-batch+jws"
ROOT_FORMAT = "onewindow.licence-batch/1"
PROOF_VERSION = 2
PROOF_FIXED = 1 + 4 + 64
MAX_BATCH = 1 << 16

_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C, ensure_ascii=False
_b64 = base64.urlsafe_b64encode
_sha256 = hashlib.sha256


def batch_header(kid: str, batch_id: str, size: int) -> str:
    """BASE64URL of the header shared by every licence of one batch."""
    return b64url(canonical_json({"bid": batch_id, "bsz": size, "kid": kid, "mtp": MTP,
                                  "typ": TOKEN_TYPE, "ver": TOKEN_VERSION}))


def root_statement(kid: str, header_b64: str, root: bytes, size: int) -> str:
    """``header.payload`` of the root statement JWS (what the issuer key signs)."""
    head = b64url(canonical_json({"alg": "Ed25519", "kid": kid, "typ": ROOT_TYPE, "ver": 1}))
    body = b64url(canonical_json({"format": ROOT_FORMAT, "hash": "sha-256", "header": header_b64,
                                  "root": b64url(root), "size": size}))
    return f"{head}.{body}"


def leaf_for(header_b64: str, payload_b64: str) -> bytes:
    return _sha256(f"\x00{header_b64}.{payload_b64}".encode("ascii")).digest()


@dataclass(frozen=True)
class SignedBatch:
    batch_id: str
    kid: str
    root: bytes
    root_jws: str  # the root statement as a compact JWS (publishable, JOSE-verifiable)
    tokens: list[str]


def sign_batch(payloads: Sequence[bytes], *, private_key: Any, kid: str, batch_id: str) -> SignedBatch:
    """Sign canonical payloads as one batch; ``tokens[i]`` carries ``payloads[i]``."""
    n = len(payloads)
    if not 1 <= n <= MAX_BATCH:
        raise ValueError(f"a batch holds 1..{MAX_BATCH} licences, got {n}")
    header = batch_header(kid, batch_id, n)
    prefix = f"\x00{header}.".encode("ascii")
    payload_b64 = [_b64(p).rstrip(b"=") for p in payloads]
    tree = MerkleTree([_sha256(prefix + p).digest() for p in payload_b64])
    statement = root_statement(kid, header, tree.root, n)
    signature = private_key.sign(statement.encode("ascii"))
    head = b"\x02"
    tokens = []
    header_dot = header + "."
    for i, (p64, path) in enumerate(zip(payload_b64, tree.proofs_concat())):
        proof = _b64(head + i.to_bytes(4, "big") + signature + path).rstrip(b"=")
        tokens.append(header_dot + p64.decode("ascii") + "." + proof.decode("ascii"))
    return SignedBatch(batch_id, kid, tree.root, f"{statement}.{b64url(signature)}", tokens)


def _step(p: int, ch: str) -> int:
    return (((p + _VALUE[ch]) % _M or _M) * 2) % (_M + 1)


#: ISO 7064 MOD 37,36 running value after two more digits, by (value, "dd").
_STEP2 = [{f"{a}{b}": _step(_step(p, str(a)), str(b)) for a in range(10) for b in range(10)}
          for p in range(_M + 1)]
_loads = json.JSONDecoder().decode
_dumps_sorted = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
_SAFE = 2**53 - 1


def _flat_json(value: dict[str, Any]) -> str | None:
    """RFC 8785 text of a flat object of strings / safe ints / bools / nulls; None otherwise."""
    for k, v in value.items():
        t = type(v)
        if not (t is str or v is None or t is bool or (t is int and -_SAFE <= v <= _SAFE)) \
                or not (k.isascii() or max(k) <= "\uffff"):
            return None
    return _dumps_sorted(value)


class PayloadEncoder:
    """RFC 8785 bytes of licence payloads, built from a template (see the module docstring)."""

    def __init__(self, *, at: dt.datetime) -> None:
        self.issued_at = aware(at).astimezone(CST).isoformat(timespec="seconds")
        self._type: dict[str, str | None] = {}      # type code -> '"definer":{...}' or None
        self._prefix: dict[tuple[str, str], int | None] = {}  # (type, issuer) -> running value
        self._issuer: dict[tuple[str, str], str] = {}

    def _definer(self, type_code: str) -> str:
        d = self._type.get(type_code)
        if d is None:
            try:
                lt = load_registry().by_code(type_code)
                definer = {"name": lt.definer_name, "code": lt.definer_code}
            except KeyError:
                definer = {"name": None, "code": type_code[:18]}
            d = self._type[type_code] = canonical_json(definer).decode("utf-8")
        return d

    def _prefix_value(self, type_code: str, issuer_code: str) -> int | None:
        key = (type_code, issuer_code)
        if key not in self._prefix:
            try:
                _check_parts(type_code, issuer_code, "0", 1)
                self._prefix[key] = _running_value(type_code + issuer_code)
            except Exception:  # noqa: BLE001 - any problem: the slow path reports it properly
                self._prefix[key] = None
        return self._prefix[key]

    def encode(self, row: Mapping[str, Any], *, version: int = 1, supersedes: str | None = None,
               credential_status: tuple[str, int] | None = None) -> tuple[str, str, bytes]:
        """``(licence_id, base_id, canonical payload bytes)`` for a library row."""
        fast = None if supersedes is not None else self._fast(row, version, credential_status)
        if fast is not None:
            return fast
        payload = build_payload(row, version=version, supersedes=supersedes,
                                at=dt.datetime.fromisoformat(self.issued_at),
                                credential_status=credential_status)
        lid = payload["licence_id"]
        return lid, lid.rsplit(".", 2)[0], canonical_json(payload)

    def _fast(self, row: Mapping[str, Any], version: int,
              credential_status: tuple[str, int] | None = None) -> tuple[str, str, bytes] | None:
        g = row.get
        try:
            cert_key = g("cert_key").strip()
            type_code = g("licence_type_code").strip()
            issuer_code = g("issuer_code").strip()
            fields = [g(f).strip() for f in ("licence_type_name", "cert_number", "issuer_name",
                                             "holder_name", "holder_code", "holder_code_type")]
        except (AttributeError, TypeError):
            return None
        if not (cert_key and type_code and issuer_code and all(fields)) \
                or type(version) is not int or not 1 <= version <= 999:
            return None
        name, number, issuer_name, holder_name, holder_code, code_type = fields
        issue_date, valid_from, valid_until = g("issue_date"), g("valid_from"), g("valid_until")
        if type(issue_date) is not dt.date or type(valid_from) not in (dt.date, type(None)) \
                or type(valid_until) not in (dt.date, type(None)):
            return None
        valid_from = valid_from or issue_date
        if valid_until is not None and valid_until < valid_from:
            return None
        status = g("status") or "01"
        if status not in STATUS_CODES:
            return None
        ext = g("extension")
        if ext is None or ext == "":
            ext_json = "{}"
        elif type(ext) is str and ext[:1] == "{":
            try:
                value = _loads(ext)
            except ValueError:
                return None
            if type(value) is not dict:
                return None
            ext_json = _flat_json(value)
            if ext_json is None:
                ext_json = canonical_json(value).decode("utf-8")
        else:
            return None
        p = self._prefix_value(type_code, issuer_code)
        if p is None:
            return None
        serial = serial_for(cert_key, issue_date)
        tail = f"{serial}{version:03d}"  # digits only: 2 digits per table step
        step = _STEP2
        for i in range(0, len(tail) - 1, 2):
            p = step[p][tail[i:i + 2]]
        if len(tail) % 2:
            p = (((p + _VALUE[tail[-1]]) % _M or _M) * 2) % (_M + 1)
        base_id = f"{ROOT}.{type_code}.{issuer_code}.{serial}"
        licence_id = f"{base_id}.{version:03d}.{ALPHABET[(_M + 1 - p) % _M]}"
        ikey = (issuer_name, issuer_code)
        issuer_json = self._issuer.get(ikey)
        if issuer_json is None:
            issuer_json = self._issuer[ikey] = canonical_json(
                {"code": issuer_code, "name": issuer_name}).decode("utf-8")
        if credential_status is None:
            status_ref = ""
        elif type(credential_status[1]) is int and type(credential_status[0]) is str:
            status_ref = (f'"credential_status":{{"index":{credential_status[1]},'
                          f'"list":{_encode_str(credential_status[0])},"purpose":"message"}},')
        else:
            return None
        text = (
            f'{{{status_ref}"definer":{self._definer(type_code)},"division_code":{_encode_str(issuer_code[2:8])},'
            f'"extension":{ext_json},"format":"{FORMAT}","holder":{{"code":{_encode_str(holder_code)},'
            f'"code_type":{_encode_str(code_type)},"name":{_encode_str(holder_name)}}},'
            f'"issue_date":"{issue_date.isoformat()}","issued_at":"{self.issued_at}",'
            f'"issuer":{issuer_json},"licence_id":"{licence_id}","name":{_encode_str(name)},'
            f'"number":{_encode_str(number)},"status":{_encode_str(status)},"supersedes":null,'
            f'"type_code":{_encode_str(type_code)},"valid_from":"{valid_from.isoformat()}",'
            f'"valid_until":{"null" if valid_until is None else chr(34) + valid_until.isoformat() + chr(34)},'
            f'"version":{version}}}')
        try:
            return licence_id, base_id, text.encode("utf-8")
        except UnicodeEncodeError:
            return None  # a lone surrogate: the slow path reports it
