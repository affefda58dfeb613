"""Errors of the usage log."""

from __future__ import annotations

from exchange.exceptions import ExchangeError


class UsageLogError(ExchangeError):
    """Base error of the usage log."""


class AuditorKeyError(UsageLogError):
    """The auditor key is missing or unreadable; configure it, a retry will not help."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        super().__init__(f"auditor key {path}: {reason}")


class SealError(UsageLogError):
    """Sealing a day failed (I/O, signing key); the sealer retries it on its next pass."""

    retryable = True

    def __init__(self, day: str, reason: str) -> None:
        self.day = day
        super().__init__(f"sealing usage log day {day} failed: {reason}")
