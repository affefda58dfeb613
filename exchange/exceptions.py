"""Errors of the exchange package. Each keeps its inputs and says what to do."""

from __future__ import annotations


class ExchangeError(Exception):
    """Base error of the exchange package."""

    retryable: bool = False


class SourceConfigError(ExchangeError):
    """The source registry or a connection is wrong; fix the configuration, a retry will not help."""

    def __init__(self, message: str, *, source_id: str | None = None) -> None:
        self.source_id = source_id
        super().__init__(f"source {source_id}: {message}" if source_id else message)


class ExtractError(ExchangeError):
    """Pulling from a department system failed; a retry may help if the system was down."""

    retryable = True

    def __init__(self, source_id: str, message: str) -> None:
        self.source_id = source_id
        super().__init__(f"extract from {source_id} failed: {message}")


class BatchRejected(ExchangeError):
    """A batch's error rate exceeded its source's threshold; nothing was merged."""

    def __init__(self, source_id: str, interval: str, rate: float, threshold: float, top_reasons: dict[str, int]) -> None:
        self.source_id, self.interval, self.rate, self.threshold = source_id, interval, rate, threshold
        self.top_reasons = top_reasons
        reasons = ", ".join(f"{k}={v}" for k, v in top_reasons.items())
        super().__init__(
            f"batch {source_id} {interval}: {rate:.1%} of rows quarantined, above the {threshold:.0%} threshold "
            f"({reasons}); the library was not changed and keeps serving the last good snapshot. "
            "Fix the source data (see lake/quarantine) and re-run this interval."
        )
