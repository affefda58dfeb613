"""The pipeline's steps, as the DAG tasks call them: paths and counts in, paths and counts out.

Each step is a transaction over its own outputs and can be re-run with the same
result; no step reads the wall clock for a data decision (the data interval and
the run's logical moment come in as arguments).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path

from exchange.exceptions import BatchRejected
from exchange.orchestrate import emit_event
from exchange.sources.interval import Interval
from exchange.sources.registry import get_source
from warehouse.datadir import Layout
from warehouse.faults import checkpoint


def _layout() -> Layout:
    return Layout.from_env().ensure()


def extract_step(source_id: str, interval_key: str) -> dict:
    """Pull the interval into its raw Parquet partition."""
    from exchange.sources.extract import extract
    from warehouse.load import read_extract_state

    layout = _layout()
    source = get_source(source_id)
    interval = Interval.parse_key(interval_key)
    state = read_extract_state(layout, source_id, interval_key)
    result = extract(source, interval, layout, watermark=state.watermark, lower=state.lower,
                     rerun=state.loaded_before)
    checkpoint("after_extract")
    emit_event(event="step", step="extract", source_id=source_id, rows=result.rows)
    return {"source_id": source_id, "interval": interval_key, "raw_path": result.path, "rows": result.rows,
            "lower": result.lower, "upper": result.upper}


def validate_step(extracted: dict, run_id: str) -> dict:
    """Run the dataset's great-expectations suite on the raw partition; split pass / quarantine."""
    import quality
    from warehouse.lake import Lake

    layout = _layout()
    lake = Lake.from_env(layout)
    source = get_source(extracted["source_id"])
    interval = extracted["interval"]
    docs_dir = layout.reports / "data_docs" / source.id / interval
    result = quality.check_lake_batch(lake, extracted["raw_path"], source.dataset, run_id=run_id,
                                      out=lake.checked(source.id, interval), docs_dir=docs_dir)
    lake.copy(str(result.quarantine_path), lake.quarantine(source.id, interval))
    checkpoint("after_validate")
    emit_event(event="step", step="validate", source_id=source.id, rows=result.rows, passed=result.passed,
               quarantined=result.quarantined, flagged=result.flagged)
    out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
    out.update(source_id=source.id, interval=interval, lower=extracted["lower"], upper=extracted["upper"])
    return out


def checked_batch(d: dict):
    """The quality result, rebuilt from the dict the validate task passed on (XCom holds plain JSON)."""
    import dataclasses

    from quality.results import CheckResult
    from warehouse.lake import as_location

    fields = {f.name: f for f in dataclasses.fields(CheckResult)}
    return CheckResult(**{k: (as_location(v) if k.endswith("_path") else v) for k, v in d.items() if k in fields})


def load_step(checked: dict, run_id: str, finished_at: str) -> dict:
    """Merge passing rows into the library unless the batch's error rate is over its threshold."""
    from warehouse.load import merge_batch, record_run

    layout = _layout()
    source = get_source(checked["source_id"])
    batch = checked_batch(checked)
    rate = batch.quarantined / batch.rows if batch.rows else 0.0
    if rate > source.error_threshold:
        record_run(layout, status="rejected", source_id=source.id, interval=checked["interval"], run_id=run_id,
                   batch=batch, finished_at=finished_at)
        top = dict(sorted(batch.per_rule.items(), key=lambda kv: -kv[1])[:5])
        raise BatchRejected(source.id, checked["interval"], rate, source.error_threshold, top)
    result = merge_batch(layout, source_id=source.id, dataset=source.dataset, interval=checked["interval"],
                         lower=checked["lower"], upper=checked["upper"], run_id=run_id, batch=batch, finished_at=finished_at)
    from warehouse.crosscheck import refresh as refresh_crosschecks

    findings = refresh_crosschecks(layout)
    emit_event(event="step", step="load", **asdict(result), crosscheck_findings=findings.findings)
    return asdict(result)


def build_step(at_iso: str) -> dict:
    """Issue licences for new and changed certificates."""
    from warehouse.build import issue_pending

    at = dt.datetime.fromisoformat(at_iso)
    # the status lists go out now, whatever logical date the run is for
    result = issue_pending(_layout(), at=at, published_at=dt.datetime.now(dt.timezone.utc))
    emit_event(event="step", step="issue", **asdict(result))
    _check_issued_licences(at_iso)
    return asdict(result)


def _naive_cst(at: dt.datetime) -> dt.datetime:
    """Stored timestamps are naive China Standard Time (docs/architecture.md)."""
    if at.tzinfo is None:
        return at
    return at.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None)


def _check_issued_licences(at_iso: str) -> None:
    """Run the issued-licences suite (GB/T 36904 identifiers, holder codes) and record it for auditors."""
    from quality.licences import SOURCE_ID, check_issued
    from warehouse.load import record_run

    layout = _layout()
    at = dt.datetime.fromisoformat(at_iso)
    run_id = f"library_build__{at_iso}"
    key, checked = check_issued(layout, at=at, run_id=run_id)
    record_run(layout, status="checked", source_id=SOURCE_ID, interval=key, run_id=run_id, batch=checked,
                   finished_at=_naive_cst(at).isoformat())
    emit_event(event="step", step="check_licences", rows=checked.rows, quarantined=checked.quarantined,
               flagged=checked.flagged)


def publish_step(at_iso: str) -> dict:
    """Publish a read-only snapshot and swap the service to it."""
    from warehouse.snapshot import publish

    snap = publish(_layout(), built_at=dt.datetime.fromisoformat(at_iso))
    emit_event(event="step", step="publish", snapshot_id=snap.snapshot_id, counts=snap.counts)
    return {"snapshot_id": snap.snapshot_id, "path": str(snap.path), "counts": snap.counts}
