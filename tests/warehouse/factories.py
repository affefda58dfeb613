"""Pending rows as the build's SELECT hands them to ``warehouse.build.issue_rows``."""

from __future__ import annotations

import pyarrow as pa


def pending_rows(n: int, *, start: int = 0) -> pa.Table:
    """``n`` first-version library rows (``certificates.bench.library_rows``) as an Arrow table."""
    from certificates.bench import library_rows

    cols = library_rows(n, start=start)
    cols["version"] = [1] * n
    cols["prev_licence_id"] = [None] * n
    return pa.table(cols)
