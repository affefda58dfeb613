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
    "check_lake_batch",
]


def check_batch(raw_parquet: Path, dataset: str, *, run_id: str, out_dir: Path,
                docs_dir: Path | None = None) -> CheckResult:
    """Check one raw batch; write passed.parquet, quarantine.parquet, validation.json (and Data Docs)."""
    from quality.check import check_batch as _check_batch

    return _check_batch(raw_parquet, dataset, run_id=run_id, out_dir=out_dir, docs_dir=docs_dir)


_OUTPUTS = ("passed_path", "quarantine_path", "validation_path")


def check_lake_batch(lake, raw: str, dataset: str, *, run_id: str, out: str,
                     docs_dir: Path | None = None) -> CheckResult:
    """:func:`check_batch` on a lake partition (``warehouse.lake.Lake``), its outputs written under lake folder ``out``.

    On object storage the batch is checked in a local folder and the outputs are
    uploaded only once all of them were written; the result names their lake locations.
    """
    import dataclasses
    import json

    with lake.local_file(raw) as raw_local, lake.staging(out) as out_local:
        result = check_batch(raw_local, dataset, run_id=run_id, out_dir=out_local, docs_dir=docs_dir)
        if not lake.remote:
            return result
        validation = json.loads(result.validation_path.read_text(encoding="utf-8"))
        validation["raw_parquet"] = raw  # the lake location, not the local copy that was checked
        result.validation_path.write_text(json.dumps(validation, ensure_ascii=False, indent=2), encoding="utf-8")
    return dataclasses.replace(result, **{f: f"{out}/{getattr(result, f).name}" for f in _OUTPUTS})
