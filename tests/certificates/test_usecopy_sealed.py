"""Use-copies sealed together under one hub signature: format, verification, tampering."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certificates import Outcome, canonical_json, issue_licence, verify_licence
from certificates.batch import PROOF_FIXED, root_statement
from certificates.merkle import HASH_SIZE
from certificates.pki import HubServiceKey
from certificates.signing import b64url
from certificates.trust import service_kid
from certificates.usecopy import (SEALED_ROOT_FORMAT, SEALED_ROOT_TYPE, SEALED_TYPE, USE_COPY_TYPE,
                                  make_use_copy, present, seal_use_copies, use_copy_payload)
from tests.certificates.factories import T0, make_cert_row

AT = T0 + dt.timedelta(days=1)
TTL = dt.timedelta(hours=72)
REQUESTER = {"client_id": "sys-11330100002496126K", "department": "11330100002496126K"}


def _decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _payloads(keyring, n, **overrides):
    row = make_cert_row(**overrides)
    lic = issue_licence(row, keyring.issuer(row["issuer_code"]), at=T0)
    return lic, [use_copy_payload(licence_id=lic.licence_id, licence_token=lic.token,
                                  purpose={"item": "000120003000", "case": f"K-{i}", "clerk": "clerk-42"},
                                  requester=REQUESTER, at=AT, ttl=TTL, log_seq=100 + i) for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13])
def test_every_sealed_copy_verifies_with_its_own_purpose(keyring, trust, n):
    lic, payloads = _payloads(keyring, n)
    tokens = seal_use_copies(keyring.service, payloads, seal_id="seal-1")
    assert len(tokens) == n and len(set(tokens)) == n
    signatures = set()
    for i, token in enumerate(tokens):
        h, p, proof_segment = token.split(".")
        header = json.loads(_decode(h))
        assert header == {"bid": "seal-1", "bsz": n, "kid": keyring.service.kid, "mtp": "rfc9162-sha256",
                          "typ": SEALED_TYPE, "ver": 2}
        assert _decode(p) == canonical_json(payloads[i])  # the payload of a signed copy, byte for byte
        proof = _decode(proof_segment)
        assert int.from_bytes(proof[1:5], "big") == i and (len(proof) - PROOF_FIXED) % HASH_SIZE == 0
        signatures.add(proof[5:PROOF_FIXED])
        result = verify_licence(present(token, lic.token), trust, at=AT + dt.timedelta(hours=1))
        assert result.outcome is Outcome.VALID and result.licence_id == lic.licence_id
        assert result.use_copy["purpose"]["case"] == f"K-{i}" and result.use_copy["log_seq"] == 100 + i
        assert result.use_copy["signer"] == keyring.service.kid
    assert len(signatures) == 1  # one hub signature for the whole seal


def test_the_root_statement_is_a_jws_of_the_hub_service_key(keyring, trust):
    """What the hub signs once per seal is a standard compact JWS anyone checks with the JWKS."""
    from certificates.merkle import MerkleTree

    lic, payloads = _payloads(keyring, 4)
    tokens = seal_use_copies(keyring.service, payloads, seal_id="seal-jws")
    h = tokens[0].split(".")[0]
    leaves = [__import__("hashlib").sha256(f"\x00{h}.{t.split('.')[1]}".encode()).digest() for t in tokens]
    root = MerkleTree(leaves).root
    statement = root_statement(keyring.service.kid, h, root, 4, typ=SEALED_ROOT_TYPE, fmt=SEALED_ROOT_FORMAT)
    signature = _decode(tokens[0].split(".")[2])[5:PROOF_FIXED]
    keyring.service.certificate.public_key().verify(signature, statement.encode("ascii"))
    head, body = (json.loads(_decode(s)) for s in statement.split("."))
    assert head == {"alg": "Ed25519", "kid": keyring.service.kid, "typ": SEALED_ROOT_TYPE, "ver": 1}
    assert body["format"] == SEALED_ROOT_FORMAT and body["size"] == 4 and body["header"] == h


def test_a_seal_of_one_is_the_plain_jws(keyring, trust):
    lic, [payload] = _payloads(keyring, 1)
    [token] = seal_use_copies(keyring.service, [payload], seal_id="alone")
    assert json.loads(_decode(token.split(".")[0]))["typ"] == USE_COPY_TYPE
    assert present(token, lic.token) == make_use_copy(keyring.service, licence_id=lic.licence_id, licence_token=lic.token,
                                  purpose=payload["purpose"], requester=REQUESTER, at=AT, ttl=TTL,
                                  log_seq=payload["log_seq"])["token"]
    assert verify_licence(present(token, lic.token), trust, at=AT).ok


def test_sealed_copy_tampering_is_detected(keyring, trust):
    lic, payloads = _payloads(keyring, 5)
    tokens = seal_use_copies(keyring.service, payloads, seal_id="seal-t")
    h, p, s = tokens[2].split(".")
    header = json.loads(_decode(h))
    # a changed payload field: the leaf no longer leads to the signed root
    for field, value in (("purpose", {**payloads[2]["purpose"], "item": "000173010000"}),
                         ("expires_at", "2027-11-05T09:00:00+08:00"), ("log_seq", 7)):
        forged = f"{h}.{b64url(canonical_json({**payloads[2], field: value}))}.{s}"
        result = verify_licence(present(forged, lic.token), trust, at=AT)
        assert result.outcome is Outcome.TAMPERED and result.detail == "bad_signature", field
    # another copy's payload with this copy's proof; this payload with another position
    other = tokens[3].split(".")[1]
    assert verify_licence(present(f"{h}.{other}.{s}", lic.token), trust, at=AT).outcome is Outcome.TAMPERED
    proof = bytearray(_decode(s))
    proof[1:5] = (3).to_bytes(4, "big")
    assert verify_licence(f"{h}.{p}.{b64url(bytes(proof))}", trust, at=AT).outcome is Outcome.TAMPERED
    # a header claiming another size or seal id: its root statement was never signed
    for change in ({"bsz": 6}, {"bid": "seal-u"}):
        forged_h = b64url(canonical_json({**header, **change}))
        assert verify_licence(present(f"{forged_h}.{p}.{s}", lic.token), trust, at=AT).outcome is Outcome.TAMPERED, change
    # a proof cut short, or with a wrong version byte
    assert verify_licence(f"{h}.{p}.{b64url(_decode(s)[:-HASH_SIZE])}", trust, at=AT).outcome is Outcome.TAMPERED
    bad = bytearray(_decode(s))
    bad[0] = 9
    assert verify_licence(f"{h}.{p}.{b64url(bytes(bad))}", trust, at=AT).detail == "bad_proof"
    # every byte of the token, sampled: never valid
    raw = tokens[2].encode("ascii")
    for pos in range(0, len(raw), max(1, len(raw) // 300)):
        mutated = bytearray(raw)
        mutated[pos] ^= 0x01
        assert not verify_licence(present(mutated.decode("latin-1"), lic.token), trust, at=AT).ok, pos


def test_sealed_copy_by_a_rogue_key_or_an_issuer_key(keyring, trust):
    lic, payloads = _payloads(keyring, 3)
    rogue = Ed25519PrivateKey.generate()
    svc = keyring.service
    unknown = seal_use_copies(HubServiceKey(rogue, svc.certificate, svc.root, service_kid(rogue.public_key())),
                              payloads, seal_id="r")[0]
    assert verify_licence(present(unknown, lic.token), trust, at=AT).outcome is Outcome.UNKNOWN_ISSUER
    posing = seal_use_copies(HubServiceKey(rogue, svc.certificate, svc.root, svc.kid), payloads, seal_id="r")[0]
    assert verify_licence(present(posing, lic.token), trust, at=AT).outcome is Outcome.TAMPERED
    # a licence issuer's key is no hub signer, even over a well-formed seal
    issuer = keyring.issuer("scjg")
    as_issuer = seal_use_copies(HubServiceKey(issuer.private_key, svc.certificate, svc.root, issuer.kid),
                                payloads, seal_id="r")[0]
    assert verify_licence(present(as_issuer, lic.token), trust, at=AT).outcome is Outcome.UNKNOWN_ISSUER


def test_sealed_copy_window_and_wrapped_licence_outcomes(keyring, trust):
    lic, payloads = _payloads(keyring, 3)
    token = seal_use_copies(keyring.service, payloads, seal_id="w")[1]
    assert verify_licence(present(token, lic.token), trust, at=AT + TTL).outcome is Outcome.USE_COPY_EXPIRED
    assert verify_licence(present(token, lic.token), trust, at=AT - dt.timedelta(minutes=1)).detail == "use_copy_not_yet_valid"
    revoked_lic, revoked = _payloads(keyring, 2, status="07")
    assert verify_licence(present(seal_use_copies(keyring.service, revoked, seal_id="x")[0], revoked_lic.token), trust,
                          at=AT).outcome is Outcome.REVOKED


def test_a_sealed_copy_is_not_a_licence_batch(keyring, trust):
    """The licence batch format and the sealed use-copy format sign different statements:
    re-labelling one as the other fails."""
    lic, payloads = _payloads(keyring, 3)
    h, p, s = seal_use_copies(keyring.service, payloads, seal_id="l")[0].split(".")
    relabelled = b64url(canonical_json({**json.loads(_decode(h)), "typ": "vnd.onewindow.licence+mtp"}))
    assert not verify_licence(present(f"{relabelled}.{p}.{s}", lic.token), trust, at=AT).ok


def test_joserfc_refuses_a_sealed_copy_as_a_jws(keyring):
    from joserfc import jws
    from joserfc.errors import JoseError
    from joserfc.jwk import OKPKey

    lic, payloads = _payloads(keyring, 2)
    token = seal_use_copies(keyring.service, payloads, seal_id="j")[0]
    key = OKPKey.import_key(keyring.service.certificate.public_key())
    with pytest.raises((JoseError, ValueError, KeyError)):
        jws.deserialize_compact(token, key, algorithms=["Ed25519"])
