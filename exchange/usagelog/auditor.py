"""Full identifiers in the usage log, readable only with the auditors' private key.

ECIES on X25519: an ephemeral key agrees a secret with the auditor public key, HKDF-SHA256
derives an AES-256-GCM key, the identifier is encrypted under a random nonce. The sealed
value is ``ow1.<base64url(ephemeral public ‖ nonce ‖ ciphertext)>``. The service holds only
the public key (``layout.keys / "auditor.pub.pem"`` or ``ONEWINDOW_AUDITOR_PUBLIC_KEY``).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from exchange.usagelog.exceptions import AuditorKeyError

__all__ = ["AuditorKeyError", "IdentifierSealer", "create_keypair", "load_private", "load_public",
           "open_identifier", "public_key_path"]
from warehouse.datadir import Layout

PREFIX = "ow1."
ENV_PUBLIC = "ONEWINDOW_AUDITOR_PUBLIC_KEY"
_INFO = b"onewindow usage-log identifier v1"


def public_key_path(layout: Layout) -> Path:
    return Path(os.environ.get(ENV_PUBLIC) or layout.keys / "auditor.pub.pem")


def _derive(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + recipient_pub,
                info=_INFO).derive(shared)


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def create_keypair(private_path: Path, public_path: Path, passphrase: bytes | None) -> None:
    """Write a new auditor key pair (private key PKCS#8, encrypted when ``passphrase`` is given)."""
    if private_path.exists() or public_path.exists():
        raise AuditorKeyError(private_path, "exists already; refusing to overwrite an auditor key")
    key = X25519PrivateKey.generate()
    enc = (serialization.BestAvailableEncryption(passphrase) if passphrase
           else serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))


def load_public(path: Path) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise AuditorKeyError(path, f"cannot read the auditor public key ({exc}); create one with "
                                    "`onewindow audit auditor-key`") from exc
    if not isinstance(key, X25519PublicKey):
        raise AuditorKeyError(path, "not an X25519 public key")
    return key


def load_private(path: Path, passphrase: bytes | None) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise AuditorKeyError(path, f"cannot read the auditor private key ({exc})") from exc
    if not isinstance(key, X25519PrivateKey):
        raise AuditorKeyError(path, "not an X25519 private key")
    return key


class IdentifierSealer:
    """Encrypts identifiers to one auditor public key."""

    def __init__(self, public_key: X25519PublicKey) -> None:
        self.public_key = public_key
        self._recipient = _raw(public_key)

    def seal(self, value: str) -> str:
        eph = X25519PrivateKey.generate()
        eph_pub = _raw(eph.public_key())
        key = _derive(eph.exchange(self.public_key), eph_pub, self._recipient)
        nonce = os.urandom(12)
        ct = AESGCM(key).encrypt(nonce, value.encode("utf-8"), None)
        return PREFIX + base64.urlsafe_b64encode(eph_pub + nonce + ct).rstrip(b"=").decode("ascii")


def open_identifier(sealed: str, private_key: X25519PrivateKey) -> str:
    """The full identifier inside ``sealed`` (auditors only); raises AuditorKeyError on a wrong key."""
    if not sealed.startswith(PREFIX):
        raise AuditorKeyError("<value>", f"not a sealed identifier (expected prefix {PREFIX!r})")
    body = sealed[len(PREFIX):]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    eph_pub, nonce, ct = raw[:32], raw[32:44], raw[44:]
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    key = _derive(shared, eph_pub, _raw(private_key.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, ct, None).decode("utf-8")
    except InvalidTag:
        raise AuditorKeyError("<value>", "this auditor key does not open the value (wrong key or altered)") from None
