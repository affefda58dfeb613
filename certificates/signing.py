"""Signing licences: compact JWS (RFC 7515) with Ed25519 over RFC 8785 canonical JSON.

Token::

    BASE64URL(header) . BASE64URL(JCS(payload)) . BASE64URL(Ed25519 signature)

    header = {"alg": "Ed25519", "kid": <RFC 7638 thumbprint>,
              "typ": "vnd.onewindow.licence+jws", "ver": 1}

``alg`` is the fully specified ``Ed25519`` of RFC 9864 (``EdDSA`` is deprecated
there). joserfc 1.8 and jwcrypto 1.6 both know it; joserfc only when the algorithm
is allowed explicitly (``algorithms=["Ed25519"]``), since it is not on its
"recommended" list.

The token is built here with ``cryptography`` directly rather than through joserfc:
the header is the same for every licence of an issuer and is encoded once, and the
JOSE library's per-call overhead (key objects, header registry checks) would cost
more than the signature itself. The tests verify tokens with joserfc and jwcrypto.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import rfc8785

from certificates.pki import IssuerKey

TOKEN_TYPE = "vnd.onewindow.licence+jws"
TOKEN_VERSION = 1
ALG = "Ed25519"
_MAX_SAFE_INT = 2**53 - 1


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _plain(obj: Any) -> bool:
    """True when ``json.dumps(sort_keys=True)`` already yields RFC 8785 output for ``obj``.

    That holds for str / bool / None / ints in the IEEE-754 safe range / lists and
    dicts of those, when no key has a character outside the BMP (Python sorts keys
    by code point, RFC 8785 by UTF-16 unit; the two orders agree inside the BMP).
    Floats (ECMAScript number formatting) are left to the ``rfc8785`` package.
    """
    t = type(obj)  # exact types: subclasses (enums, str subclasses) go to rfc8785
    if t is str or t is bool or obj is None:
        return True
    if t is int:
        return -_MAX_SAFE_INT <= obj <= _MAX_SAFE_INT
    if t is dict:
        for k, v in obj.items():
            if type(k) is not str or not (k.isascii() or max(k) <= "\uffff") or not _plain(v):
                return False
        return True
    if t is list or t is tuple:
        return all(_plain(v) for v in obj)
    return False


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) bytes of ``obj``: the ``rfc8785`` package, with a fast path for
    float-free data (a property test checks the two agree)."""
    if _plain(obj):
        try:
            return json.dumps(obj, ensure_ascii=False, sort_keys=True,
                              separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            pass  # lone surrogate: let rfc8785 report it its own way
    return rfc8785.dumps(obj)


class _NotPlain(Exception):
    """A float, NaN/Infinity or an integer outside the safe range: not for the fast path."""


def _no_float(text: str) -> Any:
    raise _NotPlain(text)


def _safe_int(text: str) -> int:
    value = int(text)
    if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return value
    raise _NotPlain(text)


_NON_BMP_LEAD = re.compile(rb"[\xf0-\xff]")
_plain_decode = json.JSONDecoder(parse_float=_no_float, parse_int=_safe_int, parse_constant=_no_float).decode
_plain_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def parse_canonical(data: bytes) -> tuple[Any, bool | None]:
    """``(json.loads(data), canonical_json(value) == data)`` without re-canonicalising
    through ``rfc8785`` when the text is float-free: then RFC 8785 output is what
    ``json.dumps(sort_keys=True)`` gives (see :func:`_plain`), so comparing against it
    decides. The second item is None when that shortcut does not apply (floats,
    unsafe integers, characters outside the BMP): the caller compares
    ``canonical_json(value)`` itself. Raises what ``json.loads`` raises."""
    if _NON_BMP_LEAD.search(data) is None:  # UTF-8 lead bytes >= 0xF0 start characters outside the BMP
        try:
            text = data.decode("utf-8")
            value = _plain_decode(text)
        except (UnicodeDecodeError, ValueError, _NotPlain):
            pass  # let json.loads decide (and raise) below, as before
        else:
            return value, _plain_encode(value) == text
    return json.loads(data), None


@functools.lru_cache(maxsize=256)
def encoded_header(kid: str) -> str:
    """BASE64URL of the protected header for ``kid`` (cached: one per issuer key)."""
    header = {"alg": ALG, "kid": kid, "typ": TOKEN_TYPE, "ver": TOKEN_VERSION}
    return b64url(canonical_json(header))


def sign_licence(payload: Mapping[str, Any], issuer: IssuerKey) -> str:
    """Sign a licence payload as a compact JWS; see the module docstring for the format."""
    signing_input = f"{encoded_header(issuer.kid)}.{b64url(canonical_json(dict(payload)))}"
    signature = issuer.private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def sign_many(payloads: Iterable[Mapping[str, Any]], issuer: IssuerKey) -> list[str]:
    """Sign many payloads with one issuer key (same tokens as :func:`sign_licence`)."""
    header = encoded_header(issuer.kid)
    sign = issuer.private_key.sign
    out = []
    for payload in payloads:
        signing_input = f"{header}.{b64url(canonical_json(dict(payload)))}"
        out.append(f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}")
    return out
