"""Quality step of the ingest pipeline (contract step 2, docs/architecture.md).

``check_batch`` splits a raw batch into passed and quarantined rows and validates it
with a Great Expectations suite, both inside DuckDB, from one SQL definition per rule.
Heavy libraries (duckdb, great_expectations) load only when ``check_batch`` runs.
"""

from __future__ import annotations

from pathlib import Path

from quality.exceptions import (
    QualityError,
    RawBatchError,
    UnknownDatasetError,
    ValidationDisagreementError,
)
from quality.results import CheckResult
from quality.rules import DATASETS, DatasetSpec, Rule

__all__ = [
    "DATASETS",
    "CheckResult",
    "DatasetSpec",
    "QualityError",
    "RawBatchError",
    "Rule",
    "UnknownDatasetError",
    "ValidationDisagreementError",
    "check_batch",
]


def check_batch(raw_parquet: Path, dataset: str, *, run_id: str, out_dir: Path,
                docs_dir: Path | None = None) -> CheckResult:
    """Check one raw batch; write passed.parquet, quarantine.parquet, validation.json (and Data Docs)."""
    from quality.check import check_batch as _check_batch

    return _check_batch(raw_parquet, dataset, run_id=run_id, out_dir=out_dir, docs_dir=docs_dir)
