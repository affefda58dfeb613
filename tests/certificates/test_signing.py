"""Token format, canonical JSON, and independent JOSE libraries verifying hub tokens."""

from __future__ import annotations

import base64
import json

import pytest
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
    assert type(canonical) is bool
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


def test_parse_canonical_where_the_shortcut_does_not_apply():
    """Floats, integers beyond 2**53, non-BMP keys and values RFC 8785 refuses are decided
    by rfc8785 itself, with the same answer as comparing against its bytes."""
    from certificates.signing import parse_canonical

    assert parse_canonical(b'{"a":1}') == ({"a": 1}, True)
    assert parse_canonical(b'{"b":1,"a":2}') == ({"b": 1, "a": 2}, False)
    assert parse_canonical(b'{"a":1.5}') == ({"a": 1.5}, True)  # RFC 8785 writes 1.5 so
    assert parse_canonical(b'{"a":1.0}') == ({"a": 1.0}, False)  # ... and 1.0 as 1
    assert parse_canonical(b'{"a":1E0}')[1] is False
    assert parse_canonical(b'{"a":9007199254740991}')[1] is True  # 2**53 - 1: safe
    assert parse_canonical(b'{"a":9007199254740993}')[1] is False  # beyond 2**53: RFC 8785 refuses
    assert parse_canonical(b'[-9007199254740993]')[1] is False
    assert parse_canonical(b'{"a":NaN}')[1] is False
    deep = b'{"a":' + b'[' * 9 + b'1' + b']' * 9 + b'}'  # deeper than the fast path goes
    assert parse_canonical(deep) == (json.loads(deep), True)
    assert parse_canonical(deep.replace(b'1', b' 1'))[1] is False
    assert parse_canonical(b'["\\ud800"]')[1] is False  # lone surrogate
    utf16_order = '{"\U0001f600":2,"\uff01":1}'.encode()  # RFC 8785: by UTF-16 unit
    assert parse_canonical(utf16_order)[1] is True
    assert parse_canonical('{"\uff01":1,"\U0001f600":2}'.encode())[1] is False  # code point order
    with pytest.raises(ValueError):
        parse_canonical(b'{"a":')
    with pytest.raises(UnicodeDecodeError):
        parse_canonical(b'["\xff"]')


bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)))
float_free = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(bmp_text, children, max_size=5),
    max_leaves=25)


@given(float_free)
def test_msgspec_sorted_encoding_is_rfc8785_on_the_shortcut_domain(value):
    """The fast path of parse_canonical relies on this: without floats, unsafe integers or
    non-BMP keys, msgspec's sorted-key JSON is RFC 8785's, byte for byte."""
    from certificates.signing import _fast_encode

    assert _fast_encode(value) == rfc8785.dumps(value)


def test_msgspec_escapes_every_bmp_character_like_rfc8785():
    from certificates.signing import _fast_encode

    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF] + ["\U0001f600", "\U0010ffff"]
    assert _fast_encode(chars) == rfc8785.dumps(chars)
    keys = {c: 0 for c in chars if c <= "\uffff"}
    assert _fast_encode(keys) == rfc8785.dumps(keys)
