"""A library writer process for the DuckLake concurrency tests (``python -m tests.warehouse.ducklake_writer``).

Every setting comes from the environment (data directory, lake, library catalog), as for a
Celery worker. Once it has imported what it needs it waits at a barrier (a folder where each
writer leaves a file; all go once ``<writers>`` files are there) so that they write at once, then
runs its job and prints one JSON line: what it did and how many times it had to start a
library transaction again after a conflict (:data:`warehouse.library.RETRIED`).

Jobs: ``load <source_id>...`` (extract → validate → load, cross-checks included, for the
simulated day 0), ``runs <prefix> <n>`` (``n`` quality-run records, each its own write
transaction), ``build`` (the licence build).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    barrier, writers, job, *args = argv
    import exchange.pipeline  # noqa: F401  (the imports every job needs, before the barrier)
    import warehouse.build  # noqa: F401
    from warehouse import library
    from warehouse.datadir import Layout

    Path(barrier, str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(Path(barrier).iterdir())) < int(writers):
        if time.monotonic() > deadline:
            raise SystemExit("the other writers never reached the barrier")
        time.sleep(0.005)

    layout = Layout.from_env()
    out: dict = {"job": job}
    if job == "load":
        from exchange.departments import BASE_DATE
        from tests.pipeline_helpers import run_steps

        out["loaded"] = {s: run_steps(layout, s, BASE_DATE)["loaded"]["certificates_new"] for s in args}
    elif job == "runs":
        from quality.results import CheckResult
        from warehouse.load import record_run

        prefix, n = args[0], int(args[1])
        batch = CheckResult(dataset="probe", rows=1, passed=1, quarantined=0, flagged=0, per_rule={},
                            gx_success=True, passed_path="", quarantine_path="", validation_path="")
        for k in range(n):
            record_run(layout, source_id=f"probe_{prefix}", interval=f"{k:04d}", run_id=f"{prefix}-{k}", batch=batch,
                       status="checked", finished_at="2026-11-02T00:00:00")
        out["runs"] = n
    elif job == "build":
        from warehouse.build import issue_pending

        result = issue_pending(layout, at=dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc), batch_size=16,
                               chunk=40, workers=1)
        out["issued"] = result.issued
    else:
        raise SystemExit(f"unknown job {job!r}")
    out["retried"] = library.RETRIED
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
