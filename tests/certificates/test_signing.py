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
