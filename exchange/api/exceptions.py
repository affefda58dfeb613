"""Errors the HTTP service answers with, all under :class:`ApiError`.

Every error leaves the service as ``{"error": {"code": ..., "message": ...}}`` with a
stable ``code``; ``detail`` carries structured extras when there are any.
"""

from __future__ import annotations

from typing import Any

from exchange.exceptions import ExchangeError


class ApiError(ExchangeError):
    """Base of every error the service turns into a JSON error response."""

    status_code: int = 500
    code: str = "internal_error"
    retryable: bool = False

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        self.message = message
        self.detail = detail
        super().__init__(message)


class NoSnapshot(ApiError):
    status_code = 503
    code = "no_snapshot"
    retryable = True

    def __init__(self, reason: str) -> None:
        super().__init__(f"尚无可用的证照库快照，请先运行数据管道（{reason}）。No library snapshot is being served: "
                         "run the pipeline (its library build publishes snapshots/CURRENT) "
                         "to publish one; the service picks it up without a restart.")


class InvalidIdentifier(ApiError):
    status_code = 422
    code = "invalid_identifier"


class SubjectNotFound(ApiError):
    status_code = 404
    code = "subject_not_found"


class LicenceNotFound(ApiError):
    status_code = 404
    code = "licence_not_found"


class ItemNotFound(ApiError):
    status_code = 404
    code = "item_not_found"


class TrustUnavailable(ApiError):
    status_code = 503
    code = "trust_unavailable"
    retryable = True


class Unauthenticated(ApiError):
    status_code = 401
    code = "unauthenticated"


class PurposeRequired(ApiError):
    status_code = 400
    code = "purpose_required"


class AccessDenied(ApiError):
    """A rule of the access policy refused the read; ``code`` is the rule (stable)."""

    status_code = 403

    def __init__(self, rule: str, message: str, *, detail: dict[str, Any] | None = None) -> None:
        self.code = rule
        super().__init__(message, detail=detail)
