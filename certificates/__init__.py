"""Electronic licences: GB/T 36904 identifiers, GB/T 36903 payloads, JWS signing, hub PKI.

The public names below are imported lazily (PEP 562), so ``import
certificates.registry`` at DAG parse time does not pull in ``cryptography``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "CertificateError": "exceptions", "IdentifierError": "exceptions",
    "KeyPassphraseError": "exceptions", "KeyStoreError": "exceptions",
    "LicenceDataError": "exceptions", "StatusUnavailable": "exceptions",
    "TrustStoreError": "exceptions", "UnknownIssuerError": "exceptions",
    "check_identifier": "identifiers", "make_identifier": "identifiers",
    "next_version": "identifiers", "parse_identifier": "identifiers",
    "IssuedLicence": "model", "build_payload": "model", "issue_licence": "model",
    "serial_for": "model",
    "IssuerKey": "pki", "Keyring": "pki", "publish_trust": "pki",
    "canonical_json": "signing", "sign_licence": "signing", "sign_many": "signing",
    "TrustStore": "trust",
    "Outcome": "verify", "Verification": "verify", "verify_licence": "verify",
    "verify_licence_now": "verify",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'certificates' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"certificates.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from certificates.exceptions import (CertificateError, IdentifierError, KeyPassphraseError,
                                         KeyStoreError, LicenceDataError, StatusUnavailable,
                                         TrustStoreError, UnknownIssuerError)
    from certificates.identifiers import (check_identifier, make_identifier, next_version,
                                          parse_identifier)
    from certificates.model import IssuedLicence, build_payload, issue_licence, serial_for
    from certificates.pki import IssuerKey, Keyring, publish_trust
    from certificates.signing import canonical_json, sign_licence, sign_many
    from certificates.trust import TrustStore
    from certificates.verify import Outcome, Verification, verify_licence, verify_licence_now
