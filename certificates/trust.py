"""Public trust material: the hub root and the issuer certificates it vouches for.

A :class:`TrustStore` holds no private key. It is built from certificates (by the
hub) or from a published directory (by an offline verifier) and admits an issuer
certificate only if it is directly signed by the root, is not a CA, has keyUsage
digitalSignature and the licence-signing extendedKeyUsage. Validity in time is
checked per verification, at the moment the caller passes in.

A certificate with the hub service extendedKeyUsage (:data:`HUB_SERVICE_EKU`: use-copies,
usage-log seals) goes to ``services`` under the kid ``hub-service-<thumbprint>``, and only
if it has no licence-signing usage; it never signs licences or status lists.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from certificates._time import aware
from certificates.exceptions import TrustStoreError

#: The hub's own OID arc: a UUID OID (ITU-T X.667), free to mint, nobody else's number.
HUB_OID_ARC = "2.25.137955764440967001270480722768478334523"
#: extendedKeyUsage "signs GB/T 36903 electronic licences".
LICENCE_SIGNING_EKU = x509.ObjectIdentifier(HUB_OID_ARC + ".1")
#: extendedKeyUsage "hub service documents" (use-copies 加注件, usage-log seals): never licences.
HUB_SERVICE_EKU = x509.ObjectIdentifier(HUB_OID_ARC + ".2")
#: ``kid`` prefix of the hub service key in the JWKS (its RFC 7638 thumbprint follows).
HUB_SERVICE_KID_PREFIX = "hub-service-"

TimeStatus = Literal["valid", "expired", "not_yet_valid"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def jwk_thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an Ed25519 public key (RFC 8037 OKP)."""
    members = f'{{"crv":"Ed25519","kty":"OKP","x":"{b64url(_raw_public(key))}"}}'
    return b64url(hashlib.sha256(members.encode("ascii")).digest())


def service_kid(key: Ed25519PublicKey) -> str:
    """The ``kid`` of the hub service key: :data:`HUB_SERVICE_KID_PREFIX` + RFC 7638 thumbprint."""
    return HUB_SERVICE_KID_PREFIX + jwk_thumbprint(key)


def public_jwk(cert: x509.Certificate, root: x509.Certificate, *,
               kid: str | None = None) -> dict[str, object]:
    """The JWK of an issuer certificate's key, with ``kid``, ``alg``, ``use`` and ``x5c``."""
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise TrustStoreError(None, f"issuer key of {cert.subject.rfc4514_string()} is not Ed25519")
    chain = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
             for c in (cert, root)]
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(_raw_public(key)),
            "kid": kid or jwk_thumbprint(key), "alg": "Ed25519", "use": "sig", "x5c": chain}


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attrs = name.get_attributes_for_oid(oid)
    return str(attrs[0].value) if attrs else ""


@dataclass(frozen=True)
class TrustedIssuer:
    """An issuer certificate the root vouches for."""

    kid: str
    certificate: x509.Certificate
    public_key: Ed25519PublicKey
    code: str  # department credit code (subject serialNumber)
    name: str  # department name (subject O)
    not_before: dt.datetime
    not_after: dt.datetime  # the earlier of the issuer's and the root's
    #: The raw public key (32 bytes): what caches of checked signatures are keyed by.
    key_bytes: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_bytes", _raw_public(self.public_key))

    def verify_signature(self, signature: bytes, message: bytes | memoryview) -> None:
        """Raise :class:`InvalidSignature` unless ``signature`` is this key's Ed25519 signature
        of ``message``. Checked by libsodium (PyNaCl), about twice the rate of
        ``public_key.verify`` on this project's machines for 1 KB JWS inputs; libsodium accepts
        no signature OpenSSL rejects (it is the stricter of the two: it also refuses small-order
        points), and a test checks both agree on hub signatures and on tampered ones."""
        if len(signature) != 64:
            raise InvalidSignature
        try:
            crypto_sign_open(bytes(signature) + bytes(message), self.key_bytes)
        except BadSignatureError:
            raise InvalidSignature from None

    def time_status(self, at: dt.datetime) -> TimeStatus:
        at = aware(at)
        if at < self.not_before:
            return "not_yet_valid"
        if at > self.not_after:
            return "expired"
        return "valid"


@dataclass(frozen=True)
class CertExpiry:
    """A current signing certificate that has expired or expires soon (:meth:`TrustStore.expiring`)."""

    kind: Literal["licence_issuer", "hub_service"]
    kid: str
    code: str  # department credit code, or "hub-service"
    name: str  # department (or hub) name
    subject: str  # certificate common name
    not_after: dt.datetime
    days_left: int
    expired: bool

    @property
    def message_zh(self) -> str:
        what = "电子证照签名证书" if self.kind == "licence_issuer" else "服务签章证书（加注件、用证记录封存）"
        when = f"{self.not_after.astimezone(dt.timezone(dt.timedelta(hours=8))):%Y-%m-%d}"
        if self.expired:
            return f"{self.name} 的{what}已于 {when} 到期，请立即更换密钥"
        return f"{self.name} 的{what}将于 {when} 到期（剩余 {self.days_left} 天），请及时更换密钥"


def _admission_problem(cert: x509.Certificate, root: x509.Certificate,
                       eku_wanted: x509.ObjectIdentifier = LICENCE_SIGNING_EKU) -> str | None:
    """Why ``cert`` may not sign licences (or, with :data:`HUB_SERVICE_EKU`, hub service
    documents) under ``root``; None when it may."""
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as exc:
        return f"not signed by the hub root ({exc or type(exc).__name__})"
    if not isinstance(cert.public_key(), Ed25519PublicKey):
        return "key is not Ed25519"
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        return f"missing extension {exc.oid.dotted_string}"
    if bc.ca:
        return "a CA certificate may not sign licences"
    if not ku.digital_signature:
        return "keyUsage lacks digitalSignature"
    if eku_wanted not in eku:
        return ("extendedKeyUsage lacks licence signing" if eku_wanted == LICENCE_SIGNING_EKU
                else "extendedKeyUsage lacks hub service signing")
    if eku_wanted == HUB_SERVICE_EKU and (LICENCE_SIGNING_EKU in eku or ku.content_commitment):
        return "a hub service certificate may not also sign licences"
    return None


def _is_service_cert(cert: x509.Certificate) -> bool:
    try:
        return HUB_SERVICE_EKU in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False


def _check_root(root: x509.Certificate, path: Path | None) -> None:
    problem = None
    try:
        root.verify_directly_issued_by(root)
        bc = root.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = root.extensions.get_extension_for_class(x509.KeyUsage).value
        if not bc.ca or not ku.key_cert_sign:
            problem = "root is not a CA with keyCertSign"
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
        problem = f"root is not a valid self-signed CA ({exc or type(exc).__name__})"
    if problem:
        raise TrustStoreError(path, problem)


@dataclass(frozen=True)
class TrustStore:
    """The root plus admitted issuers by ``kid``; ``rejected`` lists certificates refused.

    ``services`` are the hub service certificates (:data:`HUB_SERVICE_EKU`: use-copies,
    usage-log seals) by their ``hub-service-…`` kid; they are never licence issuers.
    """

    root: x509.Certificate
    issuers: dict[str, TrustedIssuer]
    rejected: tuple[tuple[str, str], ...] = field(default=())
    services: dict[str, TrustedIssuer] = field(default_factory=dict)

    @classmethod
    def from_certificates(cls, root: x509.Certificate, certs: list[x509.Certificate], *,
                          path: Path | None = None) -> "TrustStore":
        _check_root(root, path)
        issuers: dict[str, TrustedIssuer] = {}
        services: dict[str, TrustedIssuer] = {}
        rejected: list[tuple[str, str]] = []
        for cert in certs:
            service = _is_service_cert(cert)
            problem = _admission_problem(cert, root, HUB_SERVICE_EKU if service else LICENCE_SIGNING_EKU)
            if problem:
                rejected.append((cert.subject.rfc4514_string(), problem))
                continue
            key = cert.public_key()
            assert isinstance(key, Ed25519PublicKey)  # checked in _admission_problem
            kid = service_kid(key) if service else jwk_thumbprint(key)
            (services if service else issuers)[kid] = TrustedIssuer(
                kid=kid, certificate=cert, public_key=key,
                code=_attr(cert.subject, NameOID.SERIAL_NUMBER),
                name=_attr(cert.subject, NameOID.ORGANIZATION_NAME),
                not_before=max(cert.not_valid_before_utc, root.not_valid_before_utc),
                not_after=min(cert.not_valid_after_utc, root.not_valid_after_utc))
        return cls(root, issuers, tuple(rejected), services)

    @classmethod
    def from_dir(cls, path: Path) -> "TrustStore":
        """Load published trust material (``root.pem`` + ``bundle.pem``): public keys only."""
        path = Path(path)
        try:
            root = x509.load_pem_x509_certificate((path / "root.pem").read_bytes())
            bundle = x509.load_pem_x509_certificates((path / "bundle.pem").read_bytes())
        except (OSError, ValueError) as exc:
            raise TrustStoreError(path, f"cannot read root.pem / bundle.pem ({exc})") from exc
        others = [c for c in bundle if c != root]
        return cls.from_certificates(root, others, path=path)

    def issuer(self, kid: str) -> TrustedIssuer | None:
        return self.issuers.get(kid)

    def expiring(self, at: dt.datetime, *, days: int) -> list["CertExpiry"]:
        """Current signing certificates (the latest per department, and the latest hub
        service certificate) that are expired or expire within ``days`` of ``at``,
        soonest first. Retired certificates (superseded by a newer one) are left out."""
        at = aware(at)
        latest: dict[tuple[str, str], tuple[str, TrustedIssuer]] = {}
        for kind, group in (("licence_issuer", self.issuers), ("hub_service", self.services)):
            for kid, t in group.items():
                key = (kind, t.code if kind == "licence_issuer" else "")
                if key not in latest or t.certificate.not_valid_after_utc > latest[key][1].certificate.not_valid_after_utc:
                    latest[key] = (kid, t)
        limit = at + dt.timedelta(days=days)
        out = []
        for (kind, _), (kid, t) in latest.items():
            if t.not_after <= limit:
                out.append(CertExpiry(kind=kind, kid=kid, code=t.code or "hub-service", name=t.name,
                                      subject=_attr(t.certificate.subject, NameOID.COMMON_NAME),
                                      not_after=t.not_after, days_left=(t.not_after - at).days,
                                      expired=t.not_after < at))
        return sorted(out, key=lambda e: e.not_after)

    def service(self, kid: str) -> TrustedIssuer | None:
        """The hub service signer (use-copies, usage-log seals) with that ``kid``."""
        return self.services.get(kid)

    def jwks(self) -> dict[str, object]:
        return {"keys": [public_jwk(i.certificate, self.root) for i in self.issuers.values()]
                + [public_jwk(s.certificate, self.root, kid=kid) for kid, s in self.services.items()]}

    def write(self, directory: Path) -> Path:
        """Publish ``root.pem``, ``bundle.pem`` and ``jwks.json`` (each replaced atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        root_pem = self.root.public_bytes(serialization.Encoding.PEM)
        bundle = root_pem + b"".join(i.certificate.public_bytes(serialization.Encoding.PEM)
                                     for i in [*self.issuers.values(), *self.services.values()])
        jwks = json.dumps(self.jwks(), indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        for name, data in (("root.pem", root_pem), ("bundle.pem", bundle), ("jwks.json", jwks)):
            tmp = directory / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"  # unique: publishers may race
            tmp.write_bytes(data)
            os.replace(tmp, directory / name)
        return directory
