"""The hub PKI: a root CA and one licence-signing certificate per issuing department.

Layout under ``layout.keys`` (private; never published)::

    root.key.pem            PKCS#8, encrypted (BestAvailableEncryption)
    root.cert.pem
    issuers/<dept>.key.pem  PKCS#8, encrypted, one per department in registry.toml
    issuers/<dept>.cert.pem
    hub/service.key.pem     PKCS#8, encrypted: the hub service key (use-copies, usage-log seals)
    hub/service.cert.pem

Layout under ``layout.trust`` (public; what offline verifiers get), written by
:func:`publish_trust`: ``root.pem``, ``bundle.pem`` (root + issuers) and
``jwks.json`` (issuer public keys with ``kid``, ``alg`` ``Ed25519``, ``use`` ``sig``
and the ``x5c`` chain).

Passphrase. Keys are encrypted with ``ONEWINDOW_KEY_PASSPHRASE``. Only when
``ONEWINDOW_ENV=development`` (demo, tests) may it be absent, and then the published
:data:`DEV_PASSPHRASE` is used; anywhere else a missing passphrase or the
development one raises :class:`KeyPassphraseError`.

Licence signing EKU. Issuer certificates carry keyUsage digitalSignature +
contentCommitment and an extendedKeyUsage :data:`LICENCE_SIGNING_EKU`, an OID
under the hub's own arc :data:`HUB_OID_ARC`. The arc is a UUID OID (ITU-T X.667,
``2.25.<uuid as integer>``), which anyone may mint without registration, so the hub
does not squat on somebody's private enterprise number. ``.1`` under the arc means
"signs GB/T 36903 electronic licences".

Hub service certificate. Documents the hub itself signs — use-copies (加注件,
:mod:`certificates.usecopy`) and usage-log seals — are signed by one hub service key
(:class:`HubServiceKey`, ``Keyring.service``), never by the root: keyUsage
digitalSignature only, extendedKeyUsage :data:`HUB_SERVICE_EKU` (``.2`` under the arc)
and no licence-signing EKU, so a trust store never accepts it as a licence issuer. Its
``kid`` is ``hub-service-<thumbprint>``; the JWS ``typ`` tells the document kinds apart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from certificates._time import aware
from certificates.exceptions import KeyPassphraseError, KeyStoreError, UnknownIssuerError
from certificates.registry import Department, load_registry
from certificates.trust import (HUB_OID_ARC, HUB_SERVICE_EKU, LICENCE_SIGNING_EKU, TrustStore,
                                jwk_thumbprint, public_jwk, service_kid)
from warehouse.datadir import Layout

ENV_PASSPHRASE = "ONEWINDOW_KEY_PASSPHRASE"
ENV_MODE = "ONEWINDOW_ENV"
#: Development passphrase: public on purpose, refused outside ONEWINDOW_ENV=development.
DEV_PASSPHRASE = b"onewindow-development-passphrase-not-secret"

ENV_WARN_DAYS = "ONEWINDOW_CERT_WARN_DAYS"
DEFAULT_WARN_DAYS = 60
log = logging.getLogger("certificates.pki")

ROOT_VALIDITY = dt.timedelta(days=3652)   # ~10 years
ISSUER_VALIDITY = dt.timedelta(days=730)  # 2 years
SERVICE_VALIDITY = dt.timedelta(days=730)  # 2 years
HUB_NAME = "OneWindow Hub"
#: What :meth:`Keyring.expiring` names the hub service certificate by (departments: credit code).
SERVICE_CODE = "hub-service"


def resolve_passphrase(passphrase: bytes | None = None) -> bytes:
    """The key passphrase: explicit, else the environment, else (development only) the dev one."""
    mode = os.environ.get(ENV_MODE)
    if passphrase is None:
        env = os.environ.get(ENV_PASSPHRASE)
        passphrase = env.encode("utf-8") if env else None
    if mode == "development":
        return passphrase or DEV_PASSPHRASE
    if not passphrase:
        raise KeyPassphraseError(mode, f"{ENV_PASSPHRASE} is not set")
    if passphrase == DEV_PASSPHRASE:
        raise KeyPassphraseError(mode, "the development passphrase is refused outside development")
    if len(passphrase) < 12:
        raise KeyPassphraseError(mode, "the key passphrase is shorter than 12 bytes")
    return passphrase


@dataclass(frozen=True)
class IssuerKey:
    """A department's signing key with its certificate; ``kid`` is the RFC 7638 thumbprint."""

    department: Department
    private_key: Ed25519PrivateKey
    certificate: x509.Certificate
    root: x509.Certificate
    kid: str

    @property
    def code(self) -> str:
        return self.department.code

    def public_jwk(self) -> dict[str, object]:
        return public_jwk(self.certificate, self.root)


@dataclass(frozen=True)
class HubServiceKey:
    """The hub service key (use-copies, usage-log seals) with its certificate under the root.

    ``kid`` is ``hub-service-<RFC 7638 thumbprint>``; :meth:`sign` makes a compact JWS
    whose ``typ`` names the document kind.
    """

    private_key: Ed25519PrivateKey
    certificate: x509.Certificate
    root: x509.Certificate
    kid: str

    def sign(self, payload: dict[str, object], *, typ: str) -> str:
        """Compact JWS (``alg`` Ed25519, ``ver`` 1) over the RFC 8785 canonical ``payload``."""
        from certificates.signing import b64url, canonical_json

        header = b64url(canonical_json({"alg": "Ed25519", "kid": self.kid, "typ": typ, "ver": 1}))
        signing_input = f"{header}.{b64url(canonical_json(payload))}"
        return f"{signing_input}.{b64url(self.private_key.sign(signing_input.encode('ascii')))}"

    def public_jwk(self) -> dict[str, object]:
        return public_jwk(self.certificate, self.root, kid=self.kid)


_held = threading.local()


@contextlib.contextmanager
def keys_lock(keys_dir: Path) -> Iterator[None]:
    """Hold the key store exclusively (a file lock, ``.lock`` in ``keys_dir``): two processes
    creating or rotating keys at once would each make their own root or leaf, and one of them
    would sign with a key that is no longer on disk. Re-entrant within a thread."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    depth: dict[str, int] = _held.__dict__.setdefault("depth", {})
    name = str(keys_dir.resolve())
    if depth.get(name):
        depth[name] += 1
        try:
            yield
        finally:
            depth[name] -= 1
        return
    fd = os.open(keys_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        depth[name] = 1
        try:
            yield
        finally:
            depth.pop(name, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _save_key(path: Path, key: Ed25519PrivateKey, passphrase: bytes) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(passphrase))
    _write(path, pem, private=True)


def _load_key(path: Path, passphrase: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(path, f"wrong passphrase or corrupt key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyStoreError(path, f"expected an Ed25519 key, got {type(key).__name__}")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise KeyStoreError(path, f"not a PEM certificate ({exc})") from exc


def _root_cert(key: Ed25519PrivateKey, at: dt.datetime) -> x509.Certificate:
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, HUB_NAME),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{HUB_NAME} Licence Root CA"),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(at).not_valid_after(at + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, None)
    )


def leaf_cert(subject: x509.Name, public_key: Any, root_key: Ed25519PrivateKey, root: x509.Certificate, *,
              not_before: dt.datetime, not_after: dt.datetime, eku: x509.ObjectIdentifier,
              eku_critical: bool = True, content_commitment: bool = False,
              sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    """An end-entity certificate under the hub root: not a CA, digitalSignature (plus
    contentCommitment for licence signing), one extended key usage, key identifiers; the
    validity is capped at the root's. Issuer, hub-service and TLS certificates all come from here."""
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(min(not_after, root.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=content_commitment, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=eku_critical)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return (
        builder
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                       critical=False)
        .sign(root_key, None)
    )


def _issuer_cert(dept: Department, key: Ed25519PrivateKey, root_key: Ed25519PrivateKey,
                 root: x509.Certificate, at: dt.datetime) -> x509.Certificate:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, dept.name),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{dept.name} 电子证照签发"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, dept.code),
        # ETSI EN 319 412-1 semantics: national trade register (NTR), country CN.
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRCN-{dept.code}"),
    ])
    return leaf_cert(subject, key.public_key(), root_key, root, not_before=at, not_after=at + ISSUER_VALIDITY,
                     eku=LICENCE_SIGNING_EKU, content_commitment=True)


def _service_cert(key: Ed25519PrivateKey, root_key: Ed25519PrivateKey, root: x509.Certificate,
                  at: dt.datetime) -> x509.Certificate:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, HUB_NAME),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{HUB_NAME} 服务签章（加注件、用证记录封存）"),
    ])
    return leaf_cert(subject, key.public_key(), root_key, root, not_before=at, not_after=at + SERVICE_VALIDITY,
                     eku=HUB_SERVICE_EKU)


def _load_or_create_service(keys_dir: Path, secret: bytes, root_key: Ed25519PrivateKey,
                            root: x509.Certificate, at: dt.datetime) -> HubServiceKey:
    key, cert = _load_or_create_leaf(keys_dir / "hub" / "service.key.pem", keys_dir / "hub" / "service.cert.pem",
                                     secret, root, lambda key: _service_cert(key, root_key, root, at))
    return HubServiceKey(key, cert, root, service_kid(key.public_key()))


def _load_or_create_leaf(key_path: Path, cert_path: Path, secret: bytes, root: x509.Certificate,
                         make_cert: Any) -> tuple[Ed25519PrivateKey, x509.Certificate]:
    """The key pair stored at ``key_path``/``cert_path`` (created with ``make_cert(key)`` when
    missing), checked: the certificate holds this key and was issued by ``root``."""
    if key_path.exists():
        key = _load_key(key_path, secret)
    else:
        key = Ed25519PrivateKey.generate()
        _save_key(key_path, key, secret)
    if cert_path.exists():
        cert = _load_cert(cert_path)
    else:
        cert = make_cert(key)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    if cert.public_key() != key.public_key():
        raise KeyStoreError(cert_path, "certificate does not match the private key")
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise KeyStoreError(cert_path, f"not issued by the hub root ({exc})") from exc
    return key, cert


@dataclass(frozen=True)
class Keyring:
    """The hub root, every department's signing key and the hub service key, from ``layout.keys``."""

    root_certificate: x509.Certificate
    issuers: dict[str, IssuerKey]  # by department key
    #: Certificates of rotated-out issuer (and hub service) keys: still published, so what they
    #: signed keeps verifying until the certificate expires; their private keys are gone.
    retired: tuple[x509.Certificate, ...] = ()
    #: The hub service key (use-copies, usage-log seals); None only for hand-built keyrings.
    service: HubServiceKey | None = None

    @classmethod
    def load_or_create(cls, layout: Layout, *, at: dt.datetime,
                       passphrase: bytes | None = None) -> "Keyring":
        """Load the keys under ``layout.keys``, creating the missing ones valid from ``at``.

        Idempotent: existing keys and certificates are loaded unchanged (rotation is a
        separate, explicit step).
        """
        at = aware(at)
        secret = resolve_passphrase(passphrase)
        with keys_lock(layout.keys):
            return cls._load_or_create(layout.keys, at, secret)

    @classmethod
    def _load_or_create(cls, keys_dir: Path, at: dt.datetime, secret: bytes) -> "Keyring":
        root_key_path, root_cert_path = keys_dir / "root.key.pem", keys_dir / "root.cert.pem"
        if root_key_path.exists() and root_cert_path.exists():
            root_key, root = _load_key(root_key_path, secret), _load_cert(root_cert_path)
        elif root_key_path.exists() or root_cert_path.exists():
            raise KeyStoreError(keys_dir, "root key and certificate must both exist or both be absent")
        else:
            root_key = Ed25519PrivateKey.generate()
            root = _root_cert(root_key, at)
            _save_key(root_key_path, root_key, secret)
            _write(root_cert_path, root.public_bytes(serialization.Encoding.PEM), private=False)

        issuers: dict[str, IssuerKey] = {}
        for dept in load_registry().departments.values():
            key, cert = _load_or_create_leaf(
                keys_dir / "issuers" / f"{dept.key}.key.pem", keys_dir / "issuers" / f"{dept.key}.cert.pem",
                secret, root, lambda key, dept=dept: _issuer_cert(dept, key, root_key, root, at))
            issuers[dept.key] = IssuerKey(dept, key, cert, root, jwk_thumbprint(key.public_key()))
        retired = tuple(_load_cert(p) for d in (keys_dir / "issuers" / "retired", keys_dir / "hub" / "retired")
                        for p in sorted(d.glob("*.cert.pem")))
        service = _load_or_create_service(keys_dir, secret, root_key, root, at)
        return cls(root, issuers, retired, service)

    def issuer(self, dept_key_or_code: str) -> IssuerKey:
        """The signing key of a department, by registry key (``scjg``) or credit code."""
        if dept_key_or_code in self.issuers:
            return self.issuers[dept_key_or_code]
        for issuer in self.issuers.values():
            if issuer.code == dept_key_or_code:
                return issuer
        raise UnknownIssuerError(dept_key_or_code, sorted(self.issuers))

    def trust(self) -> TrustStore:
        """The public trust material of this keyring (what :func:`publish_trust` writes)."""
        service = [self.service.certificate] if self.service is not None else []
        return TrustStore.from_certificates(self.root_certificate,
                                            [i.certificate for i in self.issuers.values()] + list(self.retired)
                                            + service)

    def expiring(self, at: dt.datetime, *, days: int) -> list[tuple[str, str, dt.datetime]]:
        """``(holder, credit code or "hub-service", not after)`` of signing certificates
        that expire within ``days`` of ``at``: each department's current licence
        certificate and the hub service certificate (a retired key signs nothing new)."""
        limit = aware(at) + dt.timedelta(days=days)
        current = [(i.department.name, i.code, i.certificate.not_valid_after_utc) for i in self.issuers.values()]
        if self.service is not None:
            current.append((f"{HUB_NAME} 服务签章", SERVICE_CODE, self.service.certificate.not_valid_after_utc))
        return sorted((t for t in current if t[2] <= limit), key=lambda t: t[2])


def warn_expiring(keyring: Keyring, at: dt.datetime, *, days: int | None = None) -> list[str]:
    """Log a warning for each signing certificate expiring within ``days`` (default
    ``ONEWINDOW_CERT_WARN_DAYS`` or 60); returns the messages."""
    days = days if days is not None else int(os.environ.get(ENV_WARN_DAYS, DEFAULT_WARN_DAYS))
    messages = []
    for name, code, not_after in keyring.expiring(at, days=days):
        left = (not_after - aware(at)).days
        if code == SERVICE_CODE:
            msg = (f"签名证书即将到期: {name} 的服务签章证书（加注件、用证记录封存）于 {not_after:%Y-%m-%d} 到期"
                   f"（剩余 {left} 天）; rotate it with certificates.pki.rotate_service(layout, at=...)")
        else:
            msg = (f"签名证书即将到期: {name} ({code}) 的电子证照签名证书于 {not_after:%Y-%m-%d} 到期（剩余 {left} 天）; "
                   f"rotate it with certificates.pki.rotate_issuer(layout, {code!r}, at=...)")
        log.warning(msg)
        messages.append(msg)
    return messages


def rotate_issuer(layout: Layout, department: str, *, at: dt.datetime,
                  passphrase: bytes | None = None) -> IssuerKey:
    """Give ``department`` (registry key or credit code) a new signing key and certificate.

    The old certificate moves to ``issuers/retired/`` and stays in the published trust
    material, so licences signed with the old key verify until that certificate expires;
    the old private key is deleted (nothing new is signed with it).
    """
    with keys_lock(layout.keys):
        return _rotate_issuer(layout, department, at=at, passphrase=passphrase)


def _rotate_issuer(layout: Layout, department: str, *, at: dt.datetime,
                   passphrase: bytes | None = None) -> IssuerKey:
    at = aware(at)
    secret = resolve_passphrase(passphrase)
    keyring = Keyring.load_or_create(layout, at=at, passphrase=secret)
    old = keyring.issuer(department)
    keys_dir = layout.keys
    root_key = _load_key(keys_dir / "root.key.pem", secret)
    retired = keys_dir / "issuers" / "retired" / f"{old.department.key}-{old.certificate.serial_number:x}.cert.pem"
    _write(retired, old.certificate.public_bytes(serialization.Encoding.PEM), private=False)
    key = Ed25519PrivateKey.generate()
    cert = _issuer_cert(old.department, key, root_key, keyring.root_certificate, at)
    _save_key(keys_dir / "issuers" / f"{old.department.key}.key.pem", key, secret)
    _write(keys_dir / "issuers" / f"{old.department.key}.cert.pem",
           cert.public_bytes(serialization.Encoding.PEM), private=False)
    log.info("rotated the signing key of %s (%s): old kid %s retired", old.department.name, old.code, old.kid)
    return IssuerKey(old.department, key, cert, keyring.root_certificate, jwk_thumbprint(key.public_key()))


def rotate_service(layout: Layout, *, at: dt.datetime, passphrase: bytes | None = None) -> HubServiceKey:
    """Give the hub service (use-copies, usage-log seals) a new key and certificate.

    As :func:`rotate_issuer`: the old certificate moves to ``hub/retired/`` and stays
    published (earlier seals and use-copies keep verifying); the old private key is deleted.
    """
    with keys_lock(layout.keys):
        return _rotate_service(layout, at=at, passphrase=passphrase)


def _rotate_service(layout: Layout, *, at: dt.datetime, passphrase: bytes | None = None) -> HubServiceKey:
    at = aware(at)
    secret = resolve_passphrase(passphrase)
    keyring = Keyring.load_or_create(layout, at=at, passphrase=secret)
    old = keyring.service
    assert old is not None  # load_or_create always makes one
    keys_dir = layout.keys
    root_key = _load_key(keys_dir / "root.key.pem", secret)
    _write(keys_dir / "hub" / "retired" / f"service-{old.certificate.serial_number:x}.cert.pem",
           old.certificate.public_bytes(serialization.Encoding.PEM), private=False)
    key = Ed25519PrivateKey.generate()
    cert = _service_cert(key, root_key, keyring.root_certificate, at)
    _save_key(keys_dir / "hub" / "service.key.pem", key, secret)
    _write(keys_dir / "hub" / "service.cert.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
    log.info("rotated the hub service key: old kid %s retired", old.kid)
    return HubServiceKey(key, cert, keyring.root_certificate, service_kid(key.public_key()))


def hub_service_key(layout: Layout, *, at: dt.datetime, passphrase: bytes | None = None) -> HubServiceKey:
    """The hub service key (use-copies, usage-log seals) — created under the root if missing.

    Anything it signs must verify with the published trust material, so when
    ``layout.trust/bundle.pem`` does not carry its certificate yet (a data directory from
    before the service key existed) the trust material is published again.
    """
    keyring = Keyring.load_or_create(layout, at=at, passphrase=passphrase)
    assert keyring.service is not None  # load_or_create always makes one
    pem = keyring.service.certificate.public_bytes(serialization.Encoding.PEM)
    bundle, root_pem = layout.trust / "bundle.pem", layout.trust / "root.pem"
    if bundle.is_file() and pem in bundle.read_bytes():
        return keyring.service
    ours = keyring.root_certificate.public_bytes(serialization.Encoding.PEM)
    if root_pem.is_file() and root_pem.read_bytes() != ours:
        # Never replace another root's published trust: verifiers would lose every issuer.
        log.error("the trust material in %s is published under another root than %s: what the hub "
                  "service key %s signs will not verify there; publish this keyring's trust material "
                  "(certificates.publish_trust) or point ONEWINDOW_DATA_DIR at the right data directory",
                  layout.trust, layout.keys / "root.cert.pem", keyring.service.kid)
        return keyring.service
    publish_trust(keyring, layout.trust)
    log.info("published the trust material with the hub service certificate %s", keyring.service.kid)
    return keyring.service


def publish_trust(keyring: Keyring, directory: Path) -> Path:
    """Write ``root.pem``, ``bundle.pem`` and ``jwks.json`` into ``directory``; returns it."""
    return keyring.trust().write(directory)
