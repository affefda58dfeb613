"""TLS certificates under the hub root: client certificates (mutual TLS) and the service's own.

Department systems may authenticate with a client certificate instead of an API key.
Such a certificate is issued directly under the hub root (``layout.keys/root.*``):

* subject ``CN=<client id>``, ``O=<department name>``, ``serialNumber=<department code>``;
* subjectAltName ``URI:urn:onewindow:client:<client id>`` (:data:`CLIENT_URI_PREFIX`),
  which is what the service reads (the CN is for people);
* keyUsage digitalSignature, extendedKeyUsage **clientAuth** only, not a CA.

The service certificate has extendedKeyUsage serverAuth and the DNS names / IP
addresses it is served under. Leaf keys are ECDSA P-256 (what every TLS stack
handles); the root signs with Ed25519, which OpenSSL verifies in TLS 1.2 and 1.3.
Private keys are written unencrypted with mode 0600 (an HTTPS client or uvicorn
needs them as files); the root key stays encrypted with ``ONEWINDOW_KEY_PASSPHRASE``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certificates._time import aware
from certificates.exceptions import KeyStoreError
from certificates.pki import _load_cert, _load_key, _write, leaf_cert, resolve_passphrase
from warehouse.datadir import Layout

CLIENT_URI_PREFIX = "urn:onewindow:client:"
CLIENT_VALIDITY = dt.timedelta(days=365)
SERVER_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class IssuedTLSCertificate:
    certificate: x509.Certificate
    key_path: Path
    cert_path: Path
    ca_path: Path

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the DER certificate, hex: how the service store names it."""
        return fingerprint(self.certificate)


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _root(layout: Layout, passphrase: bytes | None):
    key_path, cert_path = layout.keys / "root.key.pem", layout.keys / "root.cert.pem"
    if not (key_path.exists() and cert_path.exists()):
        raise KeyStoreError(layout.keys, "no hub root yet: run the pipeline (or certificates.Keyring."
                                         "load_or_create) once to create it")
    return _load_key(key_path, resolve_passphrase(passphrase)), _load_cert(cert_path)


def _leaf(subject: x509.Name, sans: list[x509.GeneralName], eku: x509.ObjectIdentifier,
          key: ec.EllipticCurvePrivateKey, root_key, root: x509.Certificate, at: dt.datetime,
          validity: dt.timedelta) -> x509.Certificate:
    return leaf_cert(subject, key.public_key(), root_key, root, not_before=at - dt.timedelta(minutes=5),
                     not_after=at + validity, eku=eku, eku_critical=False, sans=sans)


def _write_pair(out: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
                root: x509.Certificate) -> IssuedTLSCertificate:
    out.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write(out / f"{stem}.key.pem", key_pem, private=True)
    _write(out / f"{stem}.cert.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(out / "hub-root.pem", root.public_bytes(serialization.Encoding.PEM), private=False)
    return IssuedTLSCertificate(cert, out / f"{stem}.key.pem", out / f"{stem}.cert.pem", out / "hub-root.pem")


def issue_client_certificate(layout: Layout, client_id: str, department_code: str, department_name: str,
                             out: Path, *, at: dt.datetime, passphrase: bytes | None = None,
                             validity: dt.timedelta = CLIENT_VALIDITY) -> IssuedTLSCertificate:
    """Issue a clientAuth certificate naming ``client_id``; write ``<client_id>.key.pem``,
    ``<client_id>.cert.pem`` and ``hub-root.pem`` (to verify the service) into ``out``."""
    if not client_id or any(c in client_id for c in "/\\:\0") or len(client_id) > 64:
        raise ValueError(f"client id {client_id!r}: 1-64 characters without '/', '\\\\', ':'")
    root_key, root = _root(layout, passphrase)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, department_name or department_code),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, department_code),
        x509.NameAttribute(NameOID.COMMON_NAME, client_id),
    ])
    cert = _leaf(subject, [x509.UniformResourceIdentifier(CLIENT_URI_PREFIX + client_id)],
                 ExtendedKeyUsageOID.CLIENT_AUTH, key, root_key, root, aware(at), validity)
    return _write_pair(Path(out), client_id, key, cert, root)


def issue_server_certificate(layout: Layout, names: list[str], out: Path, *, at: dt.datetime,
                             passphrase: bytes | None = None,
                             validity: dt.timedelta = SERVER_VALIDITY) -> IssuedTLSCertificate:
    """Issue the service's serverAuth certificate for DNS names / IP addresses ``names``;
    write ``server.key.pem``, ``server.cert.pem`` and ``hub-root.pem`` into ``out``."""
    if not names:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    root_key, root = _root(layout, passphrase)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OneWindow Hub"),
        x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
    ])
    cert = _leaf(subject, sans, ExtendedKeyUsageOID.SERVER_AUTH, key, root_key, root, aware(at), validity)
    return _write_pair(Path(out), "server", key, cert, root)


def client_id_of(cert: x509.Certificate) -> str | None:
    """The client id a hub client certificate names (its ``urn:onewindow:client:`` SAN), else None."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    ids = [u[len(CLIENT_URI_PREFIX):] for u in san.get_values_for_type(x509.UniformResourceIdentifier)
           if u.startswith(CLIENT_URI_PREFIX)]
    return ids[0] if len(ids) == 1 and ids[0] else None


__all__ = ["CLIENT_URI_PREFIX", "IssuedTLSCertificate", "client_id_of", "fingerprint",
           "issue_client_certificate", "issue_server_certificate"]
