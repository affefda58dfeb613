"""Token format, canonical JSON, and independent JOSE libraries verifying hub tokens."""

from __future__ import annotations

import base64
import json

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from certificates import canonical_json, sign_licence, sign_many
from certificates.bench import sample_payload


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_token_format(keyring):
    issuer = keyring.issuer("scjg")
    token = sign_licence(sample_payload(1), issuer)
    header_b64, payload_b64, sig_b64 = token.split(".")
    assert json.loads(_b64decode(header_b64)) == {
        "alg": "Ed25519", "kid": issuer.kid, "typ": "vnd.onewindow.licence+jws", "ver": 1}
    assert _b64decode(payload_b64) == rfc8785.dumps(sample_payload(1))
    assert len(_b64decode(sig_b64)) == 64
    assert "=" not in token


def test_sign_many_matches_sign_licence(keyring):
    issuer = keyring.issuer("gongan")
    payloads = [sample_payload(i) for i in range(5)]
    assert sign_many(payloads, issuer) == [sign_licence(p, issuer) for p in payloads]


def test_jwcrypto_verifies_with_jwks_only(hub):
    """An independent library, given nothing but the published jwks.json."""
    from jwcrypto import jwk, jws

    layout, keyring, _ = hub
    token = sign_licence(sample_payload(7), keyring.issuer("zrzy"))
    keyset = jwk.JWKSet.from_json((layout.trust / "jwks.json").read_text())
    obj = jws.JWS()
    obj.deserialize(token)
    kid = obj.jose_header["kid"]
    obj.allowed_algs = ["Ed25519"]
    obj.verify(keyset.get_key(kid))
    assert json.loads(obj.payload) == sample_payload(7)


def test_joserfc_verifies(keyring):
    from joserfc import jws
    from joserfc.jwk import OKPKey
    from joserfc.registry import HeaderParameter

    issuer = keyring.issuer("scjg")
    token = sign_licence(sample_payload(3), issuer)
    key = OKPKey.import_key(issuer.public_jwk())
    registry = jws.JWSRegistry(header_registry={"ver": HeaderParameter("format version", "int")},
                               algorithms=["Ed25519"])
    obj = jws.deserialize_compact(token, key, algorithms=["Ed25519"], registry=registry)
    assert json.loads(obj.payload) == sample_payload(3)
    assert obj.protected["kid"] == issuer.kid


json_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children,
                                                                      max_size=4),
    max_leaves=20)


@given(json_values)
def test_canonical_json_equals_rfc8785(value):
    """The json.dumps fast path produces exactly the rfc8785 package's bytes."""
    try:
        expected = rfc8785.dumps(value)
    except ValueError as exc:  # the reference refuses (lone surrogates): so must we
        try:
            canonical_json(value)
        except ValueError as ours:
            assert type(ours) is type(exc)
            return
        raise AssertionError(f"canonical_json accepted what rfc8785 refused: {exc}")
    assert canonical_json(value) == expected


def test_canonical_json_key_order_outside_bmp():
    """RFC 8785 sorts keys by UTF-16 units: U+1F600 (surrogates) sorts before U+FF01."""
    value = {"\uff01": 1, "\U0001f600": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index("\uff01".encode())


def _reference_canonical(data: bytes) -> tuple[object, bool] | type[Exception]:
    """What verify used to do: json.loads, then compare against rfc8785's bytes."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        return type(exc)
    try:
        return value, rfc8785.dumps(value) == data
    except ValueError:
        return value, False  # rfc8785 refuses it (lone surrogate): not canonical either


def _ours(data: bytes) -> tuple[object, bool] | type[Exception]:
    from certificates.signing import parse_canonical

    try:
        value, canonical = parse_canonical(data)
    except (UnicodeDecodeError, ValueError) as exc:
        return type(exc)
    if canonical is None:
        try:
            canonical = canonical_json(value) == data
        except ValueError:
            canonical = False
    return value, canonical


def _spellings(value) -> list[bytes]:
    """The canonical bytes and some non-canonical spellings of the same value."""
    out = [json.dumps(value, ensure_ascii=True).encode(), json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"),
           json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8", "surrogatepass"),
           json.dumps(value, sort_keys=True, indent=1).encode()]
    try:
        out.append(rfc8785.dumps(value))
    except ValueError:
        pass
    return out


@given(json_values)
def test_parse_canonical_agrees_with_rfc8785(value):
    """parse_canonical (verify's shortcut) decides canonical-or-not exactly as comparing
    against rfc8785's bytes does, for canonical and non-canonical spellings alike."""
    for data in _spellings(value):
        ours, reference = _ours(data), _reference_canonical(data)
        if isinstance(reference, type):
            assert ours is reference
        else:
            assert json.dumps(ours[0], sort_keys=True) == json.dumps(reference[0], sort_keys=True)
            assert ours[1] == reference[1], data


@given(st.binary(max_size=40))
def test_parse_canonical_on_arbitrary_bytes(data):
    ours, reference = _ours(data), _reference_canonical(data)
    if isinstance(reference, type):
        assert ours is reference
    else:
        assert ours[1] == reference[1]


def test_parse_canonical_refuses_shortcut_for_floats_and_big_ints():
    from certificates.signing import parse_canonical

    assert parse_canonical(b'{"a":1}') == ({"a": 1}, True)
    assert parse_canonical(b'{"a":1.5}') == ({"a": 1.5}, None)  # floats: rfc8785 decides
    assert parse_canonical(b'{"a":9007199254740993}')[1] is None  # beyond 2**53
    assert parse_canonical(b'{"b":1,"a":2}')[1] is False
    assert parse_canonical('{"\U0001f600":1}'.encode())[1] is None  # outside the BMP: UTF-16 key order
