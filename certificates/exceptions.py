"""Errors of the ``certificates`` package, all under one base :class:`CertificateError`.

Each error keeps its inputs as attributes, says what to do in its message, and
says whether retrying can help (``retryable``). Verification of a licence does not
raise for a bad token: it returns a :class:`certificates.verify.Verification`.
"""

from __future__ import annotations

from pathlib import Path


class CertificateError(Exception):
    """Base of every error raised by ``certificates``."""

    retryable: bool = False


class IdentifierError(CertificateError, ValueError):
    """A GB/T 36904 identifier (or one of its parts) is malformed."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"bad licence identifier {value!r}: {reason}; "
                         "fix the input (see shared/STANDARDS.md, GB/T 36904)")


class KeyPassphraseError(CertificateError):
    """No usable passphrase for the encrypted signing keys."""

    def __init__(self, env: str | None, reason: str) -> None:
        self.env = env
        self.reason = reason
        super().__init__(f"{reason} (ONEWINDOW_ENV={env!r}); set ONEWINDOW_KEY_PASSPHRASE to a "
                         "secret from the deployment's secret store (never the development "
                         "passphrase), or set ONEWINDOW_ENV=development for the demo")


class KeyStoreError(CertificateError):
    """A key or certificate file under ``layout.keys`` cannot be read."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot load {path}: {reason}; check the passphrase "
                         "(ONEWINDOW_KEY_PASSPHRASE) or restore the file from backup")


class UnknownIssuerError(CertificateError, KeyError):
    """The keyring has no issuing department with that key or credit code."""

    def __init__(self, issuer: str, known: list[str]) -> None:
        self.issuer = issuer
        self.known = known
        super().__init__(f"no issuing department {issuer!r}; known: {known}; "
                         "add it to certificates/registry.toml first")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class TrustStoreError(CertificateError):
    """Published trust material is missing, malformed or does not chain to the root."""

    def __init__(self, path: Path | None, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = f" in {path}" if path else ""
        super().__init__(f"trust store problem{where}: {reason}; re-publish with "
                         "certificates.publish_trust(keyring, layout.trust)")


class LicenceDataError(CertificateError, ValueError):
    """A certificate row cannot become a licence payload."""

    def __init__(self, cert_key: object, field: str, reason: str) -> None:
        self.cert_key = cert_key
        self.field = field
        self.reason = reason
        super().__init__(f"certificate {cert_key!r}, field {field!r}: {reason}; "
                         "fix the library row (it should have been quarantined)")


class StatusUnavailable(CertificateError):
    """A status lookup could not answer (store down, timeout). Raised by lookups."""

    retryable = True

    def __init__(self, licence_id: str, reason: str) -> None:
        self.licence_id = licence_id
        self.reason = reason
        super().__init__(f"status of {licence_id} unavailable: {reason}; retry later")


class OpenSSLUnavailable(CertificateError):
    """The ``openssl`` command needed by the benchmark is missing or failed."""

    def __init__(self, command: list[str], reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{' '.join(command)}: {reason}; install OpenSSL "
                         "(apt-get install openssl) and make sure it is on PATH")
