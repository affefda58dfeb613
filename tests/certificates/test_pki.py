"""Hub PKI: root CA, department issuer certificates, encrypted keys, trust publication."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from certificates import Keyring, TrustStore, publish_trust
from certificates.exceptions import KeyPassphraseError, KeyStoreError, UnknownIssuerError
from certificates.pki import DEV_PASSPHRASE, ISSUER_VALIDITY, resolve_passphrase
from certificates.registry import load_registry
from certificates.trust import LICENCE_SIGNING_EKU, jwk_thumbprint
from tests.certificates.factories import T0, make_layout


def test_one_issuer_per_department(keyring):
    depts = load_registry().departments
    assert set(keyring.issuers) == set(depts)
    for key, dept in depts.items():
        assert keyring.issuer(key) is keyring.issuer(dept.code)
    with pytest.raises(UnknownIssuerError):
        keyring.issuer("91110000600037341L")


def test_root_is_a_ca(keyring):
    root = keyring.root_certificate
    root.verify_directly_issued_by(root)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ku = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature


def test_issuer_certificates(keyring):
    for issuer in keyring.issuers.values():
        cert = issuer.certificate
        cert.verify_directly_issued_by(keyring.root_certificate)
        ext = cert.extensions
        assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
        ku = ext.get_extension_for_class(x509.KeyUsage).value
        assert ku.digital_signature and ku.content_commitment
        assert not (ku.key_cert_sign or ku.crl_sign or ku.key_encipherment)
        assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [LICENCE_SIGNING_EKU]
        subject = cert.subject
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == issuer.department.name
        assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == issuer.code
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == ISSUER_VALIDITY
        assert issuer.kid == jwk_thumbprint(issuer.private_key.public_key())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_accepts_each_issuer_certificate(hub):
    layout, keyring, _ = hub
    attime = str(int((T0 + dt.timedelta(days=1)).timestamp()))
    for key in keyring.issuers:
        cert_path = layout.keys / "issuers" / f"{key}.cert.pem"
        proc = subprocess.run(["openssl", "verify", "-attime", attime, "-CAfile",
                               str(layout.trust / "root.pem"), str(cert_path)],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr


def test_private_keys_are_encrypted(hub):
    layout, _, _ = hub
    key_files = [layout.keys / "root.key.pem", *sorted((layout.keys / "issuers").glob("*.key.pem"))]
    assert len(key_files) == 1 + len(load_registry().departments)
    for path in key_files:
        data = path.read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert path.stat().st_mode & 0o077 == 0
        with pytest.raises(TypeError):  # "Password was not given but private key is encrypted"
            serialization.load_pem_private_key(data, password=None)
        serialization.load_pem_private_key(data, password=DEV_PASSPHRASE)


def test_load_or_create_is_idempotent(hub):
    layout, keyring, _ = hub
    again = Keyring.load_or_create(layout, at=T0 + dt.timedelta(days=30))
    assert again.root_certificate == keyring.root_certificate
    for key, issuer in keyring.issuers.items():
        assert again.issuers[key].kid == issuer.kid
        assert again.issuers[key].certificate == issuer.certificate


def test_wrong_passphrase_is_a_clear_error(hub):
    layout, _, _ = hub
    with pytest.raises(KeyStoreError) as info:
        Keyring.load_or_create(layout, at=T0, passphrase=b"not the right passphrase")
    assert "passphrase" in str(info.value)


def test_dev_passphrase_refused_outside_development(monkeypatch, tmp_path):
    monkeypatch.setenv("ONEWINDOW_ENV", "production")
    monkeypatch.delenv("ONEWINDOW_KEY_PASSPHRASE", raising=False)
    with pytest.raises(KeyPassphraseError, match="not set"):
        Keyring.load_or_create(make_layout(tmp_path), at=T0)
    monkeypatch.setenv("ONEWINDOW_KEY_PASSPHRASE", DEV_PASSPHRASE.decode())
    with pytest.raises(KeyPassphraseError, match="development passphrase"):
        Keyring.load_or_create(make_layout(tmp_path), at=T0)
    with pytest.raises(KeyPassphraseError):
        resolve_passphrase(DEV_PASSPHRASE)
    assert not any((tmp_path / "keys").glob("**/*.pem"))  # nothing written before refusing


def test_real_passphrase_outside_development(monkeypatch, tmp_path):
    monkeypatch.setenv("ONEWINDOW_ENV", "production")
    monkeypatch.setenv("ONEWINDOW_KEY_PASSPHRASE", "a long production secret")
    keyring = Keyring.load_or_create(make_layout(tmp_path), at=T0)
    data = (tmp_path / "keys" / "root.key.pem").read_bytes()
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(data, password=DEV_PASSPHRASE)
    assert len(keyring.issuers) == len(load_registry().departments)


def test_published_trust_holds_public_material_only(hub):
    layout, keyring, trust = hub
    names = sorted(p.name for p in layout.trust.iterdir())
    assert names == ["bundle.pem", "jwks.json", "root.pem"]
    assert not any(b"PRIVATE" in p.read_bytes() for p in layout.trust.iterdir())
    bundle = x509.load_pem_x509_certificates((layout.trust / "bundle.pem").read_bytes())
    # root, one licence issuer per department, the hub service certificate (use-copies, seals)
    assert bundle[0] == keyring.root_certificate and len(bundle) == 1 + len(keyring.issuers) + 1
    jwks = json.loads((layout.trust / "jwks.json").read_text())
    by_kid = {k["kid"]: k for k in jwks["keys"]}
    assert set(by_kid) == {i.kid for i in keyring.issuers.values()} | {keyring.service.kid}
    assert {i.kid for i in keyring.issuers.values()} == set(trust.issuers)
    assert set(trust.services) == {keyring.service.kid} and keyring.service.kid.startswith("hub-service-")
    for jwk in by_kid.values():
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "Ed25519", "sig")
        assert "d" not in jwk and len(jwk["x5c"]) == 2


def test_trust_store_rejects_certificates_not_from_the_root(hub, tmp_path):
    """A bundle issuer certificate from another hub's root is not admitted."""
    layout, keyring, _ = hub
    other = Keyring.load_or_create(make_layout(tmp_path / "other"), at=T0)
    foreign = other.issuer("scjg").certificate
    store = TrustStore.from_certificates(keyring.root_certificate,
                                         [i.certificate for i in keyring.issuers.values()] + [foreign])
    assert len(store.issuers) == len(keyring.issuers)
    assert len(store.rejected) == 1 and "root" in store.rejected[0][1]


def test_issuer_time_status(trust):
    issuer = next(iter(trust.issuers.values()))
    assert issuer.time_status(T0 + dt.timedelta(days=1)) == "valid"
    assert issuer.time_status(T0 - dt.timedelta(seconds=1)) == "not_yet_valid"
    assert issuer.time_status(T0 + ISSUER_VALIDITY + dt.timedelta(seconds=1)) == "expired"


def test_publish_trust_returns_directory(hub, tmp_path):
    _, keyring, _ = hub
    out = publish_trust(keyring, tmp_path / "pub")
    assert TrustStore.from_dir(out).issuers.keys() == keyring.trust().issuers.keys()



PASS = b"a passphrase of the test"


def _create_keyring(root: str, start, out) -> None:  # runs in a process of its own (below)
    from pathlib import Path

    from cryptography.hazmat.primitives import hashes

    from warehouse.datadir import Layout

    start.wait(timeout=60)
    try:
        ring = Keyring.load_or_create(Layout(Path(root)), at=T0, passphrase=PASS)
        out.put(("ok", ring.root_certificate.fingerprint(hashes.SHA256()).hex(),
                 sorted(i.kid for i in ring.issuers.values()), ring.service.kid))
    except Exception as exc:  # noqa: BLE001 — reported to the test
        out.put(("error", repr(exc)))


def test_processes_creating_the_keys_at_once_share_one_root(tmp_path):
    """Two writers' first runs on a new data directory create the key store at the same moment
    (the DuckLake concurrent-writers test does): they must end with the same keys, not each with
    its own root, and neither may fail on the other's temporary file."""
    import multiprocessing

    from warehouse.datadir import Layout

    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(4), ctx.Queue()  # all four imported and waiting, then all go at once
    procs = [ctx.Process(target=_create_keyring, args=(str(tmp_path / "data"), start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(r[0] == "ok" for r in results), results
    assert all(r[1:] == results[0][1:] for r in results), results
    again = Keyring.load_or_create(Layout(tmp_path / "data"), at=T0, passphrase=PASS)
    assert again.service.kid == results[0][3]  # what is on disk is what every process signed with
    assert not list((tmp_path / "data").rglob("*.tmp"))
