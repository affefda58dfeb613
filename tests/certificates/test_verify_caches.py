"""verify_licence's shortcuts: strict base64url, the header cache, the checked-root cache.

Each shortcut must answer exactly as the plain computation would, and a cache must never
let a token through because an earlier token with the same header (or batch) was valid.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import inspect
import re

import pytest
from hypothesis import given, settings, strategies as st

from certificates import issue_licence, verify_licence
from certificates import verify as verify_module
from certificates.batch import sign_batch
from certificates.encoder import PayloadEncoder
from certificates.verify import Outcome, Verification
from tests.certificates.factories import T0, make_cert_row

AT = T0 + dt.timedelta(days=1)
_URL = re.compile(r"[A-Za-z0-9_-]*")


def _reference_b64decode(segment: str) -> bytes | None:
    """Strict base64url the plain way: alphabet, no padding, re-encoding gives the text back."""
    if not _URL.fullmatch(segment) or len(segment) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if base64.urlsafe_b64encode(data).rstrip(b"=").decode() == segment else None


_b64_chars = st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
_odd_chars = st.sampled_from(list("+/=\"\\ \n\t.!\x00\x7fé汉u")) | st.characters()


@settings(max_examples=400)
@given(st.lists(_b64_chars, max_size=14).map("".join) | st.lists(_b64_chars | _odd_chars, max_size=14).map("".join))
def test_b64decode_is_strict_base64url(segment):
    assert verify_module._b64decode(segment) == _reference_b64decode(segment)


def test_b64decode_refuses_what_json_strings_would_unescape():
    assert verify_module._b64decode("YWJj") == b"abc"
    for text in ("\\u0041AAA", 'YW"j', "YW\\j", "YWJj=", "YQ==", "YR", "YWK"):  # YR, YWK: unused bits set
        assert verify_module._b64decode(text) is None, text


@pytest.fixture
def single(keyring):
    row = make_cert_row()
    return issue_licence(row, keyring.issuer(row["issuer_code"]), at=T0).token


def _flip(token: str, pos: int) -> str:
    ch = token[pos]
    return token[:pos] + ("A" if ch != "A" else "B") + token[pos + 1:]


def test_a_tampered_token_after_a_valid_one_with_the_same_header_is_tampered(single, trust):
    header, payload, signature = single.split(".")
    assert verify_licence(single, trust, at=AT).outcome is Outcome.VALID  # header now cached
    assert verify_module._decode_header.cache_info().currsize >= 1
    for pos in (len(header) + 5, len(header) + len(payload) // 2, len(header) + len(payload) + 10):
        assert verify_licence(_flip(single, pos), trust, at=AT).outcome is Outcome.TAMPERED, pos
    assert verify_licence(single, trust, at=AT).outcome is Outcome.VALID


def test_header_cache_is_keyed_by_the_exact_segment_and_bounded(single, trust):
    header = single.split(".")[0]
    verify_licence(single, trust, at=AT)
    data, fields, kind = verify_module._decode_header(header)
    assert kind == "single" and fields["kid"]
    # one character more or less is another key, decoded afresh (and refused here)
    assert verify_module._decode_header(header + "A")[2] == "bad_base64url"
    assert verify_module._decode_header(header[:-1])[2] != "single"
    info = verify_module._decode_header.cache_info()
    assert info.maxsize == 1024
    for i in range(1100):
        verify_module._decode_header(base64.urlsafe_b64encode(f'{{"kid":"k{i}"}}'.encode()).decode().rstrip("="))
    assert verify_module._decode_header.cache_info().currsize <= 1024


def test_the_cached_header_is_never_handed_out(keyring, trust, monkeypatch):
    """A use-copy's header goes to verify_use_copy as a copy: whatever it does to it, the
    cache keeps the decoded header as it was."""
    import certificates.usecopy as usecopy

    from certificates.usecopy import make_use_copy

    row = make_cert_row()
    lic = issue_licence(row, keyring.issuer(row["issuer_code"]), at=T0)
    copy = make_use_copy(keyring.service, licence_id=lic.licence_id, licence_token=lic.token,
                         purpose={"item": "000120003000", "case": "K-1", "clerk": "clerk-42"},
                         requester={"client_id": "sys-11330100002496126K", "department": "11330100002496126K"},
                         at=T0, ttl=dt.timedelta(days=30), log_seq=1)["token"]
    real = usecopy.verify_use_copy

    def spy(parts, header, *args, **kwargs):
        header["scribbled"] = True  # a callee that writes into the header it was given
        return real(parts, header, *args, **kwargs)

    monkeypatch.setattr(usecopy, "verify_use_copy", spy)
    assert verify_licence(copy, trust, at=AT).outcome is Outcome.VALID
    assert verify_licence(copy, trust, at=AT).outcome is Outcome.VALID
    assert "scribbled" not in verify_module._decode_header(copy.split(".")[0])[1]


def test_verification_init_takes_every_field(single, trust):
    params = set(inspect.signature(Verification.__init__).parameters) - {"self"}
    assert params == {f.name for f in dataclasses.fields(Verification) if f.init}
    result = verify_licence(single, trust, at=AT)
    assert dataclasses.asdict(result)["code"] == "valid"
    assert dataclasses.replace(result, detail="x").code == "valid"
    assert result == dataclasses.replace(result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.detail = "changed"  # type: ignore[misc]


# ----------------------------------------------------------------------------- batch roots
_AT_ISSUE = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone.utc)
_CHECK = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


def _batch(keyring, batch_id: str, n: int = 5):
    issuer = keyring.issuer("scjg")
    enc = PayloadEncoder(at=_AT_ISSUE)
    payloads = [enc.encode(make_cert_row(cert_number=f"JY1330106{i:07d}"))[2] for i in range(n)]
    return sign_batch(payloads, private_key=issuer.private_key, kid=issuer.kid, batch_id=batch_id).tokens


def test_a_tampered_batch_token_after_valid_ones_of_its_batch_is_tampered(keyring, trust):
    tokens = _batch(keyring, "b-cache-1")
    verify_module._VERIFIED_ROOTS.clear()
    assert [verify_licence(t, trust, at=_CHECK).code for t in tokens] == ["valid"] * 5
    assert len(verify_module._VERIFIED_ROOTS) == 1  # one root statement, checked once
    header, payload, proof = tokens[2].split(".")
    raw = bytearray(base64.urlsafe_b64decode(proof + "=" * (-len(proof) % 4)))
    for offset in (6, 40, 68, 69, len(raw) - 1):  # signature bytes, then the audit path
        bad = bytearray(raw)
        bad[offset] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(bad)).rstrip(b"=").decode()
        assert verify_licence(f"{header}.{payload}.{text}", trust, at=_CHECK).outcome is Outcome.TAMPERED, offset
    assert verify_licence(_flip(tokens[2], len(header) + 9), trust, at=_CHECK).outcome is Outcome.TAMPERED
    assert len(verify_module._VERIFIED_ROOTS) == 1  # failures are never remembered


def test_checked_root_cache_is_bounded_first_in_first_out(keyring, trust, monkeypatch):
    monkeypatch.setattr(verify_module, "VERIFIED_ROOTS_MAX", 3)
    verify_module._VERIFIED_ROOTS.clear()
    batches = [_batch(keyring, f"b-bound-{i}", n=2) for i in range(5)]
    for tokens in batches:
        assert verify_licence(tokens[0], trust, at=_CHECK).code == "valid"
        assert len(verify_module._VERIFIED_ROOTS) <= 3
    first_header = batches[0][0].split(".")[0]
    assert all(key[1] != first_header for key in verify_module._VERIFIED_ROOTS)  # evicted
    assert verify_licence(batches[0][1], trust, at=_CHECK).code == "valid"  # checked afresh


def test_checked_root_is_bound_to_the_key_that_checked_it(keyring, trust):
    """The cache key holds the issuer's raw public key: a store whose issuer under that kid
    has another key gets no hit and refuses the token."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    tokens = _batch(keyring, "b-cache-key")
    assert verify_licence(tokens[0], trust, at=_CHECK).code == "valid"
    kid = keyring.issuer("scjg").kid
    other_key = Ed25519PrivateKey.generate().public_key()
    impostor = dataclasses.replace(trust.issuers[kid], public_key=other_key)
    assert impostor.key_bytes != trust.issuers[kid].key_bytes
    swapped = dataclasses.replace(trust, issuers={**trust.issuers, kid: impostor})
    result = verify_licence(tokens[1], swapped, at=_CHECK)
    assert result.outcome is Outcome.TAMPERED and result.detail == "bad_signature"
