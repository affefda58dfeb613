"""Errors raised by the quality step. All derive from :class:`QualityError`."""

from __future__ import annotations

from pathlib import Path


class QualityError(Exception):
    """Base class: the quality step could not check a batch.

    ``retryable`` says whether running the same call again can help.
    """

    retryable = False


class UnknownDatasetError(QualityError, KeyError):
    """The dataset name is not one the quality step knows."""

    def __init__(self, dataset: str, known: tuple[str, ...]) -> None:
        self.dataset = dataset
        self.known = known
        super().__init__(
            f"unknown dataset {dataset!r}; use one of {', '.join(known)} "
            "(see quality.DATASETS and docs/architecture.md)"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class RawBatchError(QualityError):
    """The raw Parquet file is missing, unreadable or lacks contract columns."""

    def __init__(self, path: Path, dataset: str, problem: str, missing: tuple[str, ...] = ()) -> None:
        self.path = path
        self.dataset = dataset
        self.problem = problem
        self.missing = missing
        super().__init__(
            f"raw batch {path} for dataset {dataset!r}: {problem}. "
            "Re-run the extract step for this interval (exchange.sources.extract) so that it "
            "writes the raw columns of docs/architecture.md plus _record_key, _source_id, _interval."
        )


class ValidationDisagreementError(QualityError):
    """Great Expectations and the row-level split counted a rule differently.

    Both run the same SQL predicate, so this is a bug in the quality package; no
    output was published for the batch.
    """

    def __init__(self, dataset: str, split_counts: dict[str, int], gx_counts: dict[str, int],
                 gx_errors: list | None = None) -> None:
        self.dataset = dataset
        self.split_counts = split_counts
        self.gx_counts = gx_counts
        self.gx_errors = gx_errors or []
        diff = {k: (split_counts.get(k), gx_counts.get(k))
                for k in sorted(set(split_counts) | set(gx_counts))
                if split_counts.get(k) != gx_counts.get(k)}
        super().__init__(
            f"dataset {dataset!r}: GX and the row split disagree (rule: (split, gx)) {diff}, "
            f"GX errors {self.gx_errors}; "
            "nothing was published — report this as a bug in quality/ with the raw batch attached."
        )
