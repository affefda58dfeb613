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
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Union

import msgspec
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
    float-free data (a property test checks the two agree).

    The fast path is msgspec's sorted-key encoder (``_fast_encode``), which on :func:`_plain`
    data writes what ``json.dumps(sort_keys=True)`` writes, several times faster (usage-log
    records and use-copies are serialised per request)."""
    if _plain(obj):
        try:
            return _fast_encode(obj)
        except (UnicodeEncodeError, msgspec.EncodeError):
            pass  # lone surrogate: let rfc8785 report it its own way
    return rfc8785.dumps(obj)


def _shortcut_type(depth: int) -> Any:
    """What the fast path decodes: JSON without floats and with integers in the IEEE-754
    safe range, nested at most ``depth`` arrays/objects deep (a licence payload nests 2)."""
    safe_int = Annotated[int, msgspec.Meta(ge=-_MAX_SAFE_INT, le=_MAX_SAFE_INT)]
    kind: Any = Union[None, bool, safe_int, str]
    for _ in range(depth):
        kind = Union[None, bool, safe_int, str, list[kind], dict[str, kind]]
    return kind


# On that domain msgspec's sorted-key output is RFC 8785's when no key holds a character
# outside the BMP (msgspec and Python sort by code point, RFC 8785 by UTF-16 unit):
# property-tested in tests/certificates/test_signing.py.
_fast_decode = msgspec.json.Decoder(_shortcut_type(6)).decode
_fast_encode = msgspec.json.Encoder(order="sorted").encode
_UTF8_LEADS_OUTSIDE_BMP = bytes(range(0xF0, 0x100))


def parse_canonical(data: bytes) -> tuple[Any, bool]:
    """``(json.loads(data), canonical_json(value) == data)``, where a value RFC 8785 cannot
    encode (NaN, an integer outside the IEEE-754 safe range, a lone surrogate) is not
    canonical. Raises what ``json.loads`` raises.

    A payload is canonical iff re-encoding its parsed value gives the same bytes. The fast
    path decodes with msgspec into :func:`_shortcut_type` and compares with msgspec's
    sorted-key encoding; anything else (a float, an unsafe integer, deeper nesting, a
    character outside the BMP, text msgspec refuses) goes to ``json.loads`` and ``rfc8785``."""
    if len(data.translate(None, _UTF8_LEADS_OUTSIDE_BMP)) == len(data):
        try:
            value = _fast_decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass
        else:
            return value, _fast_encode(value) == data
    value = json.loads(data)
    try:
        return value, canonical_json(value) == data
    except ValueError:  # rfc8785 refuses it: no canonical form, so not canonical
        return value, False


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
