"""verify_licence: every outcome, from real tokens; never a bare bool, never a crash."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certificates import Outcome, issue_licence, sign_licence, verify_licence
from certificates.exceptions import StatusUnavailable
from certificates.identifiers import ALPHABET, parse_identifier, variant_check_char
from certificates.model import build_payload
from certificates.pki import ISSUER_VALIDITY, IssuerKey
from certificates.trust import jwk_thumbprint
from certificates.verify import verify_licence_now
from tests.certificates.factories import T0, make_cert_row

AT = T0 + dt.timedelta(days=1)  # 2026-11-02 CST, inside the row's 2026-03-01..2031-02-28


def issue(keyring, **overrides):
    row = make_cert_row(**overrides)
    return issue_licence(row, keyring.issuer(row["issuer_code"]), at=T0)


def test_valid(keyring, trust):
    lic = issue(keyring)
    result = verify_licence(lic.token, trust, at=AT)
    assert result.outcome is Outcome.VALID and result.ok and result.code == "valid"
    assert result.licence_id == lic.licence_id
    assert result.issuer == keyring.issuer("scjg").code and result.issuer_name == "杭州市市场监督管理局"
    assert result.payload["holder"]["name"] == "杭州味道餐饮管理有限公司"
    assert result.reason_zh and result.warnings == ()


def test_verification_is_not_a_boolean(keyring, trust):
    result = verify_licence(issue(keyring).token, trust, at=AT)
    with pytest.raises(TypeError):
        bool(result)


def test_every_single_byte_flip_is_never_valid(keyring, trust):
    token = issue(keyring).token.encode("ascii")
    step = max(1, len(token) // 400)  # bounded: about 400 positions, spread over all parts
    positions = sorted(set(range(0, len(token), step)) | set(range(len(token) - 4, len(token))))
    for pos in positions:
        for flip in (0x01, 0x20):
            mutated = bytearray(token)
            mutated[pos] ^= flip
            result = verify_licence(mutated.decode("latin-1"), trust, at=AT)
            assert result.outcome is not Outcome.VALID, (pos, flip, result)


def test_unknown_issuer(keyring, trust):
    stranger_key = Ed25519PrivateKey.generate()
    real = keyring.issuer("scjg")
    stranger = IssuerKey(real.department, stranger_key, real.certificate, real.root,
                         jwk_thumbprint(stranger_key.public_key()))
    payload = build_payload(make_cert_row(), at=T0)
    result = verify_licence(sign_licence(payload, stranger), trust, at=AT)
    assert result.outcome is Outcome.UNKNOWN_ISSUER and result.detail == "unknown_kid"


def test_key_of_another_department_is_not_the_issuer(keyring, trust):
    payload = build_payload(make_cert_row(), at=T0)  # names 市场监管 as issuer
    result = verify_licence(sign_licence(payload, keyring.issuer("gongan")), trust, at=AT)
    assert result.outcome is Outcome.UNKNOWN_ISSUER and result.detail == "issuer_mismatch"


def test_wrong_key_same_kid_is_tampered(keyring, trust):
    real = keyring.issuer("scjg")
    forger = IssuerKey(real.department, Ed25519PrivateKey.generate(), real.certificate, real.root,
                       real.kid)
    result = verify_licence(sign_licence(build_payload(make_cert_row(), at=T0), forger), trust, at=AT)
    assert result.outcome is Outcome.TAMPERED


def test_edited_payload_is_tampered(keyring, trust):
    header, payload, sig = issue(keyring).token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["valid_until"] = "2099-12-31"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    assert verify_licence(f"{header}.{forged}.{sig}", trust, at=AT).outcome is Outcome.TAMPERED


def test_expired_and_not_yet_valid(keyring, trust):
    lic = issue(keyring, valid_from="2026-12-01", valid_until="2026-12-31")
    assert verify_licence(lic.token, trust, at=AT).outcome is Outcome.NOT_YET_VALID
    assert verify_licence(lic.token, trust, at=AT + dt.timedelta(days=30)).outcome is Outcome.VALID
    expired = verify_licence(lic.token, trust, at=AT + dt.timedelta(days=60))
    assert expired.outcome is Outcome.EXPIRED and "2026-12-31" in expired.reason_zh


def test_valid_until_is_inclusive_in_china_time(keyring, trust):
    lic = issue(keyring, valid_until="2026-11-02")
    last_minute = dt.datetime(2026, 11, 2, 15, 59, tzinfo=dt.timezone.utc)  # 23:59 CST
    assert verify_licence(lic.token, trust, at=last_minute).outcome is Outcome.VALID
    assert verify_licence(lic.token, trust, at=last_minute + dt.timedelta(minutes=2)).outcome \
        is Outcome.EXPIRED


def test_long_term_licence_has_no_end(keyring, trust):
    lic = issue(keyring, valid_until=None)
    assert verify_licence(lic.token, trust, at=AT + dt.timedelta(days=600)).outcome is Outcome.VALID


@pytest.mark.parametrize(("status", "outcome", "detail"), [
    ("01", Outcome.VALID, None),
    ("02", Outcome.SUSPENDED, "suspended"),
    ("03", Outcome.REVOKED, "revoked"),
    ("04", Outcome.REVOKED, "cancelled"),
    ("05", Outcome.EXPIRED, "status_expired"),
    ("07", Outcome.REVOKED, "withdrawn"),
    (None, Outcome.STATUS_UNAVAILABLE, "status_unknown"),
    ("99", Outcome.STATUS_UNAVAILABLE, "status_code_unrecognised"),
])
def test_status_lookup(keyring, trust, status, outcome, detail):
    lic = issue(keyring)
    seen = []

    def lookup(licence_id):
        seen.append(licence_id)
        return status

    result = verify_licence(lic.token, trust, at=AT, status_lookup=lookup)
    assert seen == [lic.licence_id]
    assert result.outcome is outcome and result.detail == detail


def test_status_unavailable(keyring, trust):
    def down(licence_id):
        raise StatusUnavailable(licence_id, "status store timed out")

    result = verify_licence(issue(keyring).token, trust, at=AT, status_lookup=down)
    assert result.outcome is Outcome.STATUS_UNAVAILABLE and "timed out" in result.detail


def test_status_signed_in_payload_counts_without_lookup(keyring, trust):
    assert verify_licence(issue(keyring, status="02").token, trust, at=AT).outcome is Outcome.SUSPENDED


def test_issuer_certificate_expired_and_not_yet_valid(keyring, trust):
    token = issue(keyring, valid_until=None).token
    later = T0 + ISSUER_VALIDITY + dt.timedelta(days=1)
    assert verify_licence(token, trust, at=later).outcome is Outcome.ISSUER_CERT_EXPIRED
    before = T0 - dt.timedelta(days=1)
    assert verify_licence(token, trust, at=before).outcome is Outcome.ISSUER_CERT_NOT_YET_VALID


@pytest.mark.parametrize("token", [
    "", "abc", "a.b", "a.b.c.d", "....", "e30.e30.e30", "!!!.###.$$$", "\u6c49.\u5b57.x",
])
def test_malformed_tokens_are_outcomes(trust, token):
    result = verify_licence(token, trust, at=AT)
    assert result.outcome is Outcome.MALFORMED and result.payload is None


def test_non_string_token_is_malformed(trust):
    assert verify_licence(None, trust, at=AT).outcome is Outcome.MALFORMED  # type: ignore[arg-type]


def _resign_with_identifier(keyring, new_id):
    payload = build_payload(make_cert_row(), at=T0)
    payload["licence_id"] = new_id
    return sign_licence(payload, keyring.issuer("scjg"))


def test_identifier_with_wrong_check_is_malformed(keyring, trust):
    ident = parse_identifier(build_payload(make_cert_row(), at=T0)["licence_id"])
    variant = variant_check_char(ident.type_code, ident.issuer_code, ident.serial, ident.version)
    wrong = next(c for c in ALPHABET if c not in (ident.check, variant))
    result = verify_licence(_resign_with_identifier(keyring, f"{ident.base_id}.001.{wrong}"),
                            trust, at=AT)
    assert result.outcome is Outcome.MALFORMED and result.detail == "identifier_invalid"


def test_identifier_known_variant_is_valid_with_warning(keyring, trust):
    ident = parse_identifier(build_payload(make_cert_row(), at=T0)["licence_id"])
    variant = variant_check_char(ident.type_code, ident.issuer_code, ident.serial, ident.version)
    result = verify_licence(_resign_with_identifier(keyring, f"{ident.base_id}.001.{variant}"),
                            trust, at=AT)
    assert result.outcome is Outcome.VALID
    assert result.warnings == ("non-standard check character (known variant)",)


def test_non_canonical_payload_is_malformed(keyring, trust):
    issuer = keyring.issuer("scjg")
    payload = json.dumps(build_payload(make_cert_row(), at=T0), indent=1).encode()
    header = sign_licence({}, issuer).split(".")[0]
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(issuer.private_key.sign(f"{header}.{body}".encode())).rstrip(b"=")
    result = verify_licence(f"{header}.{body}.{sig.decode()}", trust, at=AT)
    assert result.outcome is Outcome.MALFORMED and result.detail == "payload_not_canonical"


def test_verify_now_wrapper(keyring, trust):
    result = verify_licence_now(issue(keyring, valid_until=None).token, trust)
    assert isinstance(result.outcome, Outcome)


def _signed_raw(keyring, payload_bytes: bytes) -> str:
    issuer = keyring.issuer("scjg")
    header = sign_licence({}, issuer).split(".")[0]
    body = base64.urlsafe_b64encode(payload_bytes).rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(issuer.private_key.sign(f"{header}.{body}".encode())).rstrip(b"=")
    return f"{header}.{body}.{sig.decode()}"


@pytest.mark.parametrize("value", ["NaN", "9007199254740993", "1.0"])
def test_payload_without_a_canonical_form_is_malformed_not_a_crash(keyring, trust, value):
    """An authentic signature over JSON that RFC 8785 cannot (NaN, beyond 2**53) or would
    not (1.0 is written 1) produce is a broken licence: MALFORMED, never an exception."""
    payload = build_payload(make_cert_row(), at=T0)
    text = json.dumps({**payload, "version": "@"}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    result = verify_licence(_signed_raw(keyring, text.replace('"@"', value).encode()), trust, at=AT)
    assert result.outcome is Outcome.MALFORMED and result.detail == "payload_not_canonical"


def test_a_status_that_is_not_a_code_is_unrecognised_not_a_crash(keyring, trust):
    payload = build_payload(make_cert_row(), at=T0)
    payload["status"] = ["01"]
    result = verify_licence(sign_licence(payload, keyring.issuer("scjg")), trust, at=AT)
    assert result.outcome is Outcome.STATUS_UNAVAILABLE and result.detail == "status_code_unrecognised"


def test_libsodium_signature_check_agrees_with_cryptography(keyring, trust):
    """TrustedIssuer.verify_signature (libsodium) accepts exactly what the certificate's key
    (OpenSSL via cryptography) accepts, on hub signatures and on every kind of damage."""
    from cryptography.exceptions import InvalidSignature
    from hypothesis import given, settings, strategies as st

    key = keyring.issuer("scjg")
    signer = trust.issuer(key.kid)

    def accepted(check, signature, message) -> bool:
        try:
            check(signature, message)
            return True
        except InvalidSignature:
            return False

    @settings(max_examples=150, deadline=None)
    @given(st.binary(max_size=1500), st.integers(min_value=0), st.integers(min_value=0, max_value=7),
           st.sampled_from(["none", "signature", "message", "truncate", "extend"]))
    def check(message, where, bit, damage):
        signature = key.private_key.sign(message)
        if damage == "signature":
            buf = bytearray(signature)
            buf[where % 64] ^= 1 << bit
            signature = bytes(buf)
        elif damage == "message" and message:
            buf = bytearray(message)
            buf[where % len(message)] ^= 1 << bit
            message = bytes(buf)
        elif damage == "truncate":
            signature = signature[:where % 64]
        elif damage == "extend":
            signature += b"\0"
        ours = accepted(signer.verify_signature, signature, memoryview(message))
        assert ours == accepted(signer.public_key.verify, signature, message)
        assert ours == (damage == "none" or (damage == "message" and not message))

    check()
