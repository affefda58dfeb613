"""The value :func:`quality.check_batch` returns (pure Python, cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CheckResult:
    """Counts and output paths of one checked batch.

    ``rows`` counts raw rows; exact duplicate rows are collapsed before checking, so
    ``passed + quarantined + duplicates_collapsed == rows``.  ``flagged`` counts
    passed rows carrying warning flags.  ``per_rule`` maps a reason code to the
    number of rows (after collapsing) it applies to.
    """

    dataset: str
    rows: int
    passed: int
    quarantined: int
    flagged: int
    per_rule: dict[str, int]
    gx_success: bool
    # local paths, or s3:// locations for a batch checked into a lake on object storage
    passed_path: Path | str
    quarantine_path: Path | str
    validation_path: Path | str
    duplicates_collapsed: int = 0
    per_rule_field: dict[str, int] = field(default_factory=dict)  # "code:field" -> rows
