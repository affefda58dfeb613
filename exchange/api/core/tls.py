"""Mutual TLS: serve HTTPS with optional client certificates, and authenticate by them.

Uvicorn verifies a client certificate against the hub root during the handshake
(``ssl_cert_reqs=CERT_OPTIONAL``, ``ssl_ca_certs=<root>``: a certificate from another
CA fails the handshake, no certificate is allowed) but does not hand the peer
certificate to the application. :func:`protocol_class` (uvicorn's protocol plus a mixin)
adds it as the ASGI TLS extension (``scope["extensions"]["tls"]``, asgiref spec 0.2:
``client_cert_chain`` as PEM strings, ``client_cert_name``, ``tls_version``, …), read
once per connection from the transport's ``ssl_object``.

The service then maps the certificate to a client (:class:`CertificateAuthenticator`):
issued directly by the hub root, extendedKeyUsage clientAuth, inside its validity
window, registered in the service store by ``onewindow admin issue-client-cert`` and
not revoked (``onewindow admin revoke-client-certs``), and its client not disabled.
The client id is the certificate's ``urn:onewindow:client:<id>`` subjectAltName.

Settings (environment): ``ONEWINDOW_TLS_CERT`` / ``ONEWINDOW_TLS_KEY`` (the service
certificate and key; both or neither) and ``ONEWINDOW_TLS_CLIENT_CA`` (default: the
published hub root ``<data-dir>/trust/root.pem``, else ``<data-dir>/keys/root.cert.pem``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from exchange.api.core.config import ConfigError
from exchange.store.base import Client, stored_time
from warehouse.datadir import Layout

log = logging.getLogger("exchange.api.tls")

ENV_CERT, ENV_KEY, ENV_CLIENT_CA = "ONEWINDOW_TLS_CERT", "ONEWINDOW_TLS_KEY", "ONEWINDOW_TLS_CLIENT_CA"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class TLSSettings:
    certfile: Path
    keyfile: Path
    client_ca: Path

    @classmethod
    def from_env(cls, layout: Layout, environ: Mapping[str, str] | None = None) -> "TLSSettings | None":
        """None when neither ``ONEWINDOW_TLS_CERT`` nor ``ONEWINDOW_TLS_KEY`` is set (plain HTTP)."""
        env = os.environ if environ is None else environ
        cert, key = env.get(ENV_CERT, "").strip(), env.get(ENV_KEY, "").strip()
        if not cert and not key:
            return None
        if not (cert and key):
            missing = ENV_KEY if cert else ENV_CERT
            raise ConfigError(missing, "", f"HTTPS needs both {ENV_CERT} and {ENV_KEY}")
        ca = env.get(ENV_CLIENT_CA, "").strip()
        client_ca = Path(ca) if ca else default_client_ca(layout)
        for var, path in ((ENV_CERT, Path(cert)), (ENV_KEY, Path(key)), (ENV_CLIENT_CA, client_ca)):
            if not path.is_file():
                raise ConfigError(var, str(path), "no such file (issue one with `onewindow admin "
                                                  "issue-server-cert`; the client CA is the hub root)")
        return cls(Path(cert), Path(key), client_ca)

    def uvicorn_kwargs(self) -> dict[str, Any]:
        """``uvicorn.Config`` arguments: HTTPS, optional client certificates under the hub root,
        and the protocol that passes the peer certificate to the application."""
        return {"ssl_certfile": str(self.certfile), "ssl_keyfile": str(self.keyfile),
                "ssl_cert_reqs": ssl.CERT_OPTIONAL, "ssl_ca_certs": str(self.client_ca),
                "http": protocol_class()}


def default_client_ca(layout: Layout) -> Path:
    published = layout.trust / "root.pem"
    return published if published.exists() else layout.keys / "root.cert.pem"


# ----------------------------------------------------------------------------- uvicorn protocol
def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension for one connection (None for plain HTTP)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    name = None
    if der:
        try:
            name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except ValueError:
            name = None
    cipher = ssl_object.cipher()
    return {"server_cert": None, "client_cert_chain": chain, "client_cert_name": name,
            "client_cert_error": None, "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": None, "cipher_name": cipher[0] if cipher else None}


class _TLSExtensionMixin:
    """Wraps the connection's app so every request scope carries ``extensions.tls``."""

    app: Any

    def connection_made(self, transport: Any) -> None:  # noqa: D401 (asyncio protocol)
        super().connection_made(transport)  # type: ignore[misc]
        ext = tls_extension(transport.get_extra_info("ssl_object"))
        if ext is not None:
            inner = self.app

            async def app(scope: dict, receive: Any, send: Any) -> None:
                scope.setdefault("extensions", {})["tls"] = ext
                await inner(scope, receive, send)

            self.app = app


def protocol_class(kind: str = "auto") -> type:
    """Uvicorn's HTTP protocol (``auto``: httptools when installed, else ``h11``) with the TLS extension."""
    base: type
    if kind in ("auto", "httptools"):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
        except ImportError:  # pragma: no cover
            if kind == "httptools":
                raise
            kind = "h11"
    if kind == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    return type(f"TLS{base.__name__}", (_TLSExtensionMixin, base), {})


def peer_certificate(scope: Mapping[str, Any]) -> bytes | None:
    """The verified client certificate (DER) of the request's connection, if it presented one."""
    tls = (scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if tls else None
    return ssl.PEM_cert_to_DER_cert(chain[0]) if chain else None


# ----------------------------------------------------------------------------- registry + authenticator
class ClientCertRegistry:
    """Which client certificates the hub issued, to whom, and which are revoked (service store,
    table ``client_certs`` of :mod:`exchange.store.schema`)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def register(self, cert: x509.Certificate, client_id: str, *, at: dt.datetime) -> str:
        from certificates.tls import fingerprint

        fp = fingerprint(cert)
        with self.store._tx() as db:
            db.execute("INSERT INTO client_certs VALUES (?, ?, ?, ?, ?, NULL)",
                       (fp, client_id, f"{cert.serial_number:x}", cert.not_valid_after_utc.isoformat(),
                        stored_time(at)))
        return fp

    def revoke(self, client_id: str, *, at: dt.datetime) -> int:
        with self.store._tx() as db:
            return db.execute("UPDATE client_certs SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
                              (stored_time(at), client_id)).rowcount

    def lookup(self, fingerprint: str) -> tuple[str, str | None] | None:
        rows = self.store._rows("SELECT client_id, revoked_at FROM client_certs WHERE fingerprint = ?",
                                (fingerprint,))
        return (rows[0][0], rows[0][1]) if rows else None

    def of(self, client_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store._rows("SELECT * FROM client_certs WHERE client_id = ? "
                                                  "ORDER BY issued_at", (client_id,))]


class CertificateAuthenticator:
    """Maps a verified peer certificate (DER) to an active client of the service store."""

    def __init__(self, store: Any, root: x509.Certificate) -> None:
        self.store = store
        self.registry = ClientCertRegistry(store)
        self.root = root
        self._lock = threading.Lock()
        self._parsed: dict[bytes, tuple[str, str, dt.datetime, dt.datetime] | None] = {}

    @classmethod
    def for_layout(cls, store: Any, layout: Layout, client_ca: Path | None = None) -> "CertificateAuthenticator | None":
        path = client_ca or default_client_ca(layout)
        if not path.exists():
            return None
        return cls(store, x509.load_pem_x509_certificate(path.read_bytes()))

    def _check(self, der: bytes) -> tuple[str, str, dt.datetime, dt.datetime] | None:
        """(client id, fingerprint, not before, not after) of a hub client certificate, else None."""
        from certificates.tls import client_id_of, fingerprint

        try:
            cert = x509.load_der_x509_certificate(der)
            cert.verify_directly_issued_by(self.root)
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
            log.warning("client certificate refused: %s", exc)
            return None
        client_id = client_id_of(cert)
        if basic.ca or ExtendedKeyUsageOID.CLIENT_AUTH not in eku or client_id is None:
            log.warning("client certificate refused: CA, no clientAuth or no client id (%s)",
                        cert.subject.rfc4514_string())
            return None
        return client_id, fingerprint(cert), cert.not_valid_before_utc, cert.not_valid_after_utc

    def authenticate(self, der: bytes, *, at: dt.datetime | None = None) -> Client | None:
        key = hashlib.sha256(der).digest()
        with self._lock:
            if key not in self._parsed:
                if len(self._parsed) > 1024:
                    self._parsed.clear()
                self._parsed[key] = self._check(der)
            checked = self._parsed[key]
        if checked is None:
            return None
        client_id, fp, not_before, not_after = checked
        now = at or dt.datetime.now(dt.timezone.utc)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.timezone.utc)
        if not (not_before <= now <= not_after):
            return None
        found = self.registry.lookup(fp)
        if found is None or found[0] != client_id or found[1] is not None:
            return None
        client = self.store.client(client_id)
        return None if client is None or client.disabled else client


def install(app: Any, layout: Layout, client_ca: Path | None = None) -> None:
    """Let access control authenticate by client certificate (when a hub root exists)."""
    configured = os.environ.get(ENV_CLIENT_CA, "").strip()
    client_ca = client_ca or (Path(configured) if configured else None)
    auth = CertificateAuthenticator.for_layout(app.state.service_store, layout, client_ca)
    app.state.access.certificates = auth
