"""Use-copies (加注件): hub service key under the root, standard JWS, one verification entry point."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certificates import Outcome, canonical_json, issue_licence, verify_licence
from certificates.pki import HubServiceKey
from certificates.signing import b64url
from certificates.trust import HUB_SERVICE_EKU, LICENCE_SIGNING_EKU, TrustStore, service_kid
from certificates.usecopy import USE_COPY_TYPE, licence_digest, make_use_copy
from tests.certificates.factories import T0, make_cert_row

AT = T0 + dt.timedelta(days=1)
TTL = dt.timedelta(hours=72)
PURPOSE = {"item": "000120003000", "case": "K-1", "clerk": "clerk-42"}
REQUESTER = {"client_id": "sys-11330100002496126K", "department": "11330100002496126K"}


def _licence(keyring, **overrides):
    row = make_cert_row(**overrides)
    return issue_licence(row, keyring.issuer(row["issuer_code"]), at=T0)


def _copy(keyring, lic, *, at=AT, signer=None):
    return make_use_copy(signer or keyring.service, licence_id=lic.licence_id, licence_token=lic.token,
                         purpose=PURPOSE, requester=REQUESTER, at=at, ttl=TTL, log_seq=7)["token"]


def _parts(token):
    h, p, s = token.partition("~")[0].split(".")  # a presented copy: the copy, "~", its licence
    return (json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4))),
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))), s)


def test_the_hub_service_certificate_signs_hub_documents_only(hub):
    layout, keyring, trust = hub
    cert = keyring.service.certificate
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ku.digital_signature and not ku.content_commitment and not ku.key_cert_sign
    assert list(eku) == [HUB_SERVICE_EKU] and LICENCE_SIGNING_EKU not in eku
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(keyring.root_certificate)
    key_pem = (layout.keys / "hub" / "service.key.pem").read_bytes()
    assert key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (layout.keys / "hub" / "service.key.pem").stat().st_mode & 0o077 == 0
    # published, under its own kid, and never a licence issuer
    assert keyring.service.kid == service_kid(cert.public_key()) and keyring.service.kid.startswith("hub-service-")
    assert set(trust.services) == {keyring.service.kid} and keyring.service.kid not in trust.issuers
    jwks = json.loads((layout.trust / "jwks.json").read_text())
    [jwk] = [k for k in jwks["keys"] if k["kid"] == keyring.service.kid]
    assert (jwk["kty"], jwk["alg"], jwk["use"], len(jwk["x5c"])) == ("OKP", "Ed25519", "sig", 2) and "d" not in jwk


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_accepts_the_hub_service_certificate_against_the_root(hub, tmp_path):
    layout, _, _ = hub
    attime = str(int(AT.timestamp()))
    cert = layout.keys / "hub" / "service.cert.pem"
    proc = subprocess.run(["openssl", "verify", "-attime", attime, "-CAfile", str(layout.trust / "root.pem"),
                           str(cert)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr
    # and refuses it against another root
    other = tmp_path / "other.pem"
    other.write_bytes((layout.trust / "bundle.pem").read_bytes().split(b"-----END CERTIFICATE-----")[1]
                      .lstrip() + b"-----END CERTIFICATE-----\n")  # an issuer certificate, not a CA
    proc = subprocess.run(["openssl", "verify", "-attime", attime, "-CAfile", str(other), str(cert)],
                          capture_output=True, text=True)
    assert proc.returncode != 0


def test_a_licence_signed_by_the_service_key_is_not_a_licence(keyring, trust):
    """The hub service key cannot issue licences: its kid is not a licence issuer."""
    from certificates import sign_licence
    from certificates.pki import IssuerKey

    real = keyring.issuer("scjg")
    svc = keyring.service
    payload = _parts(_licence(keyring).token)[1]
    for kid in (svc.kid, svc.kid.removeprefix("hub-service-")):
        forged = sign_licence(payload, IssuerKey(real.department, svc.private_key, real.certificate, real.root, kid))
        assert verify_licence(forged, trust, at=AT).outcome is Outcome.UNKNOWN_ISSUER


def test_use_copy_format_and_valid(keyring, trust):
    lic = _licence(keyring)
    token = _copy(keyring, lic)
    header, payload, _ = _parts(token)
    assert header == {"alg": "Ed25519", "kid": keyring.service.kid, "typ": USE_COPY_TYPE, "ver": 1}
    assert token.partition("~")[2] == lic.token  # presented with its licence
    assert payload["ver"] == 2 and "licence" not in payload
    assert payload["licence_sha256"] == licence_digest(lic.token) and payload["licence_id"] == lic.licence_id
    assert payload["purpose"] == PURPOSE and payload["requester"] == REQUESTER and payload["log_seq"] == 7
    assert payload["issued_at"] == "2026-11-02T09:00:00+08:00" and payload["expires_at"] == "2026-11-05T09:00:00+08:00"
    assert "K-1" in payload["stamp"] and "2026年11月05日" in payload["stamp"]
    result = verify_licence(token, trust, at=AT + dt.timedelta(hours=1))
    assert result.outcome is Outcome.VALID and result.licence_id == lic.licence_id
    assert result.issuer == keyring.issuer("scjg").code and result.payload == _parts(lic.token)[1]
    assert result.use_copy["purpose"] == PURPOSE and result.use_copy["signer"] == keyring.service.kid
    assert result.use_copy["expires_at"] == payload["expires_at"]


def test_use_copy_expired_and_not_yet_valid(keyring, trust):
    token = _copy(keyring, _licence(keyring))
    expired = verify_licence(token, trust, at=AT + TTL)
    assert expired.outcome is Outcome.USE_COPY_EXPIRED and expired.code == "use_copy_expired"
    assert "加注件" in expired.reason_zh and expired.use_copy["purpose"] == PURPOSE
    assert verify_licence(token, trust, at=AT + TTL - dt.timedelta(seconds=1)).ok
    early = verify_licence(token, trust, at=AT - dt.timedelta(minutes=1))
    assert early.outcome is Outcome.NOT_YET_VALID and early.detail == "use_copy_not_yet_valid"


def test_use_copy_tampered(keyring, trust):
    lic = _licence(keyring)
    token = _copy(keyring, lic)
    copy, _, licence = token.partition("~")
    h, p, s = copy.split(".")
    _, payload, _ = _parts(token)
    for field, value in (("purpose", {**PURPOSE, "item": "000173010000"}),
                         ("expires_at", "2027-11-05T09:00:00+08:00"),
                         ("requester", {**REQUESTER, "client_id": "someone-else"}),
                         ("licence_sha256", licence_digest(_licence(keyring, cert_number="JY2").token))):
        forged = f"{h}.{b64url(canonical_json({**payload, field: value}))}.{s}~{licence}"
        result = verify_licence(forged, trust, at=AT)
        assert result.outcome is Outcome.TAMPERED and result.detail == "bad_signature", field
    # every byte of the token, sampled: never valid
    raw = token.encode("ascii")
    for pos in range(0, len(raw), max(1, len(raw) // 300)):
        mutated = bytearray(raw)
        mutated[pos] ^= 0x01
        assert not verify_licence(mutated.decode("latin-1"), trust, at=AT).ok, pos


def test_use_copy_is_verified_with_the_licence_it_names(keyring, trust):
    """The copy names its licence by digest: alone it is malformed, with another licence
    (even a valid one of the same holder) tampered; a second "~" part is not a licence."""
    lic, other = _licence(keyring), _licence(keyring, cert_number="JY13301060000002")
    copy = _copy(keyring, lic).partition("~")[0]
    alone = verify_licence(copy, trust, at=AT)
    assert alone.outcome is Outcome.MALFORMED and alone.detail == "licence_not_presented"
    assert alone.use_copy["purpose"] == PURPOSE
    swapped = verify_licence(f"{copy}~{other.token}", trust, at=AT)
    assert swapped.outcome is Outcome.TAMPERED and swapped.detail == "licence_digest_mismatch"
    assert verify_licence(f"{copy}~{lic.token}~{lic.token}", trust, at=AT).outcome is Outcome.TAMPERED
    assert verify_licence(f"{copy}~", trust, at=AT).outcome is Outcome.TAMPERED
    assert verify_licence(f" {copy}~{lic.token}\n", trust, at=AT).ok
    # a licence is never "presented" with another one
    bare = verify_licence(f"{lic.token}~{lic.token}", trust, at=AT)
    assert bare.outcome is Outcome.MALFORMED and bare.detail == "not_compact_jws"


def test_version_1_copies_embedding_the_licence_still_verify(keyring, trust):
    """Copies stamped before the digest reference carried the licence token (payload ver 1)."""
    lic, other = _licence(keyring), _licence(keyring, cert_number="JY13301060000002")
    payload = {"ver": 1, "licence_id": lic.licence_id, "licence": lic.token, "purpose": PURPOSE,
               "requester": REQUESTER, "issued_at": "2026-11-02T09:00:00+08:00",
               "expires_at": "2026-11-05T09:00:00+08:00", "log_seq": 7, "stamp": "仅供…"}
    old = keyring.service.sign(payload, typ=USE_COPY_TYPE)
    result = verify_licence(old, trust, at=AT)
    assert result.ok and result.licence_id == lic.licence_id and result.use_copy["log_seq"] == 7
    assert verify_licence(f"{old}~{lic.token}", trust, at=AT).ok
    assert verify_licence(f"{old}~{other.token}", trust, at=AT).detail == "licence_mismatch"
    # a version-2 copy with the licence embedded (or a version-1 one without) is not a format
    for bad in ({**payload, "ver": 2}, {k: v for k, v in payload.items() if k != "licence"}):
        assert verify_licence(keyring.service.sign(bad, typ=USE_COPY_TYPE) + "~" + lic.token, trust,
                              at=AT).detail == "unsupported_use_copy"


def test_use_copy_by_an_unknown_key_or_the_root_is_unknown_issuer(hub):
    layout, keyring, trust = hub
    lic = _licence(keyring)
    rogue_key = Ed25519PrivateKey.generate()
    svc = keyring.service
    for signer in (HubServiceKey(rogue_key, svc.certificate, svc.root, service_kid(rogue_key.public_key())),
                   HubServiceKey(rogue_key, svc.certificate, svc.root, svc.kid)):
        result = verify_licence(_copy(keyring, lic, signer=signer), trust, at=AT)
        assert result.outcome in (Outcome.UNKNOWN_ISSUER, Outcome.TAMPERED)
        assert result.outcome is (Outcome.UNKNOWN_ISSUER if signer.kid != svc.kid else Outcome.TAMPERED)
    # a trust store without the service certificate (only the root and issuers) knows no hub signer
    bare = TrustStore.from_certificates(trust.root, [i.certificate for i in trust.issuers.values()])
    assert verify_licence(_copy(keyring, lic), bare, at=AT).outcome is Outcome.UNKNOWN_ISSUER


def test_use_copy_carries_the_licence_outcomes(keyring, trust):
    """The wrapped licence is verified in full: its status, its validity, its signature."""
    revoked = verify_licence(_copy(keyring, _licence(keyring, status="07")), trust, at=AT)
    assert revoked.outcome is Outcome.REVOKED and revoked.use_copy is not None
    suspended = verify_licence(_copy(keyring, _licence(keyring, status="02")), trust, at=AT)
    assert suspended.outcome is Outcome.SUSPENDED
    lic = _licence(keyring, valid_until="2026-11-01")
    assert verify_licence(_copy(keyring, lic), trust, at=AT).outcome is Outcome.EXPIRED
    # status from the published lists, as for a bare licence
    from certificates.exceptions import StatusUnavailable

    def down(licence_id):
        raise StatusUnavailable(licence_id, "store down")

    lic = _licence(keyring)
    assert verify_licence(_copy(keyring, lic), trust, at=AT, status_lookup=down).outcome is Outcome.STATUS_UNAVAILABLE
    assert verify_licence(_copy(keyring, lic), trust, at=AT, status_lookup=lambda _: "03").outcome is Outcome.REVOKED


def test_use_copy_wrapping_a_forged_or_mismatched_licence(keyring, trust):
    lic, other = _licence(keyring), _licence(keyring, cert_number="JY13301060000002")
    h, p, s = lic.token.split(".")
    forged_licence = f"{h}.{b64url(canonical_json({**_parts(lic.token)[1], 'status': '01', 'valid_until': '2099-12-31'}))}.{s}"
    stamped = make_use_copy(keyring.service, licence_id=lic.licence_id, licence_token=forged_licence,
                            purpose=PURPOSE, requester=REQUESTER, at=AT, ttl=TTL, log_seq=1)["token"]
    assert verify_licence(stamped, trust, at=AT).outcome is Outcome.TAMPERED  # the hub signed a forgery: still caught
    mismatch = make_use_copy(keyring.service, licence_id=lic.licence_id, licence_token=other.token,
                             purpose=PURPOSE, requester=REQUESTER, at=AT, ttl=TTL, log_seq=1)["token"]
    result = verify_licence(mismatch, trust, at=AT)
    assert result.outcome is Outcome.MALFORMED and result.detail == "licence_id_mismatch"
    nested = make_use_copy(keyring.service, licence_id=lic.licence_id, licence_token=_copy(keyring, lic),
                           purpose=PURPOSE, requester=REQUESTER, at=AT, ttl=TTL, log_seq=1)["token"]
    assert verify_licence(nested, trust, at=AT).detail == "nested_use_copy"


def test_use_copy_after_the_service_certificate_expired(keyring, trust):
    late = keyring.service.certificate.not_valid_after_utc + dt.timedelta(days=1)
    token = make_use_copy(keyring.service, licence_id=_licence(keyring).licence_id,
                          licence_token=_licence(keyring).token, purpose=PURPOSE, requester=REQUESTER,
                          at=late - dt.timedelta(hours=1), ttl=TTL, log_seq=1)["token"]
    result = verify_licence(token, trust, at=late)
    assert result.outcome is Outcome.ISSUER_CERT_EXPIRED and result.detail == "hub_service_cert_expired"


def test_jwcrypto_verifies_a_use_copy_with_the_jwks_only(hub):
    from jwcrypto import jwk, jws

    layout, keyring, _ = hub
    lic = _licence(keyring)
    token = _copy(keyring, lic)
    keyset = jwk.JWKSet.from_json((layout.trust / "jwks.json").read_text())
    obj = jws.JWS()
    copy, _, licence = token.partition("~")
    obj.deserialize(copy)
    obj.allowed_algs = ["Ed25519"]
    obj.verify(keyset.get_key(obj.jose_header["kid"]))
    body = json.loads(obj.payload)
    assert obj.jose_header["typ"] == USE_COPY_TYPE and body["purpose"] == PURPOSE
    assert body["licence_sha256"] == licence_digest(licence)  # the licence it names, by digest
    inner = jws.JWS()  # and that licence, with the same JWKS
    inner.deserialize(licence)
    inner.allowed_algs = ["Ed25519"]
    inner.verify(keyset.get_key(inner.jose_header["kid"]))
    assert json.loads(inner.payload)["licence_id"] == lic.licence_id
    h, p, s = copy.split(".")
    tampered = jws.JWS()
    tampered.deserialize(f"{h}.{b64url(canonical_json({**body, 'log_seq': 8}))}.{s}")
    tampered.allowed_algs = ["Ed25519"]
    with pytest.raises(jws.InvalidJWSSignature):
        tampered.verify(keyset.get_key(obj.jose_header["kid"]))


def test_rotating_the_service_key_keeps_earlier_use_copies_verifying(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from certificates import Keyring, publish_trust
    from certificates.pki import hub_service_key, rotate_service
    from tests.certificates.factories import make_layout

    layout = make_layout(tmp_path / "var")
    keyring = Keyring.load_or_create(layout, at=T0)
    lic = _licence(keyring)
    before = _copy(keyring, lic)
    new = rotate_service(layout, at=T0 + dt.timedelta(hours=1))
    assert new.kid != keyring.service.kid
    assert not any(b"PRIVATE" in p.read_bytes() for p in (layout.keys / "hub" / "retired").iterdir())
    again = Keyring.load_or_create(layout, at=T0)
    assert again.service.kid == new.kid
    publish_trust(again, layout.trust)
    trust = TrustStore.from_dir(layout.trust)
    assert set(trust.services) == {keyring.service.kid, new.kid}
    assert verify_licence(before, trust, at=AT).ok  # signed by the retired key: still verifies
    assert verify_licence(_copy(again, lic), trust, at=AT).ok
    assert _parts(_copy(again, lic))[0]["kid"] == new.kid
    # only the current service certificate is watched for expiry
    late = new.certificate.not_valid_after_utc - dt.timedelta(days=5)
    assert [e.kid for e in trust.expiring(late, days=30) if e.kind == "hub_service"] == [new.kid]
    assert hub_service_key(layout, at=T0).kid == new.kid


def test_hub_service_key_never_replaces_another_roots_published_trust(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from certificates import Keyring, publish_trust
    from certificates.pki import hub_service_key
    from tests.certificates.factories import make_layout

    other = Keyring.load_or_create(make_layout(tmp_path / "other"), at=T0)
    layout = make_layout(tmp_path / "var")
    publish_trust(other, layout.trust)
    published = (layout.trust / "bundle.pem").read_bytes()
    hub_service_key(layout, at=T0)
    assert (layout.trust / "bundle.pem").read_bytes() == published
    assert any("another root" in r.getMessage() for r in caplog.records)
    # a fresh data dir: published with the service certificate
    fresh = make_layout(tmp_path / "fresh")
    key = hub_service_key(fresh, at=T0)
    assert key.kid in TrustStore.from_dir(fresh.trust).services
