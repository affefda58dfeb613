"""Merging batches into the library: idempotent, crash-safe, history kept, watermark last."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from exchange.departments import BASE_DATE, simulate
from tests.pipeline_helpers import library_hash, query, run_steps
from warehouse.datadir import Layout

DAY0, DAY1 = BASE_DATE, BASE_DATE + dt.timedelta(days=1)
SOURCES = ("gongan_population", "minzheng_marriages", "zrzy_property")


def _simulated(root, persons=1200, seed=3, days=1) -> Layout:
    layout = Layout(root).ensure()
    for k in range(days + 1):
        simulate(layout, persons=persons, seed=seed, day=k)
    return layout


def test_rerunning_an_interval_changes_nothing(tmp_path):
    layout = _simulated(tmp_path / "a")
    for s in SOURCES:
        run_steps(layout, s, DAY0)
    first = library_hash(layout)
    counts = query(layout.library, "SELECT (SELECT count(*) FROM certificates), (SELECT count(*) FROM quarantine)")
    for s in SOURCES:
        again = run_steps(layout, s, DAY0)
        assert again["loaded"]["certificates_new"] == 0 and again["loaded"]["certificates_changed"] == 0
    assert library_hash(layout) == first
    assert query(layout.library,
                 "SELECT (SELECT count(*) FROM certificates), (SELECT count(*) FROM quarantine)") == counts


def test_changes_keep_history_and_advance_the_watermark(tmp_path):
    # the SQL source holds current state: pull day 0 before day 1 changes it, as in production
    layout = _simulated(tmp_path / "a", days=0)
    run_steps(layout, "gongan_population", DAY0)
    simulate(layout, persons=1200, seed=3, day=1)
    assert query(layout.library, "SELECT cursor FROM watermarks")[0][0] == "2026-11-02 00:00:00"
    r1 = run_steps(layout, "gongan_population", DAY1)
    assert r1["loaded"]["certificates_new"] > 0  # births
    assert r1["loaded"]["certificates_changed"] > 0  # address changes
    assert query(layout.library, "SELECT cursor FROM watermarks")[0][0] == "2026-11-03 00:00:00"
    hist = query(layout.library, """
        SELECT h.cert_key, h.version, c.version FROM certificate_history h JOIN certificates c USING (cert_key)""")
    assert hist and all(cur >= old for _, old, cur in hist)
    # re-running the older interval after the newer one does not roll records back
    before = _certificates_digest(layout)
    run_steps(layout, "gongan_population", DAY0)
    assert query(layout.library, "SELECT cursor FROM watermarks")[0][0] == "2026-11-03 00:00:00"
    assert _certificates_digest(layout) == before


def _certificates_digest(layout):
    return query(layout.library, """
        SELECT count(*), md5(string_agg(cert_key || row_hash || version, ',' ORDER BY cert_key))
        FROM certificates""")


def test_older_drop_does_not_overwrite_newer_record(tmp_path):
    layout = _simulated(tmp_path / "a")
    run_steps(layout, "zrzy_property", DAY0)
    run_steps(layout, "zrzy_property", DAY1)
    after_day1 = library_hash(layout)
    run_steps(layout, "zrzy_property", DAY0)  # the day-0 drop holds older versions of changed rows
    assert library_hash(layout) == after_day1


_CRASH = """
import datetime as dt, sys
sys.path.insert(0, {repo!r})
from tests.pipeline_helpers import run_steps
from warehouse.datadir import Layout
from exchange.departments import BASE_DATE
run_steps(Layout({root!r}), {source!r}, BASE_DATE)
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_extract", "after_validate", "merge_mid_transaction", "merge_before_commit"])
def test_killed_run_then_rerun_equals_one_clean_run(tmp_path, point):
    from exchange.orchestrate import REPO_ROOT

    clean = _simulated(tmp_path / "clean", days=0)
    crashed = _simulated(tmp_path / "crashed", days=0)
    run_steps(clean, "gongan_population", DAY0)
    env = {**os.environ, "ONEWINDOW_FAULT": point}
    res = subprocess.run([sys.executable, "-c", _CRASH.format(repo=str(REPO_ROOT), root=str(crashed.root),
                                                              source="gongan_population")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 137, res.stderr[-2000:]
    if crashed.library.exists():  # a crash inside the merge transaction leaves nothing merged
        assert query(crashed.library, "SELECT count(*) FROM watermarks")[0][0] == 0
        assert query(crashed.library, "SELECT count(*) FROM certificates")[0][0] == 0
    run_steps(crashed, "gongan_population", DAY0)
    assert library_hash(crashed) == library_hash(clean)


def test_quarantine_keeps_reasons_and_raw_row(tmp_path):
    layout = _simulated(tmp_path / "a", days=0)
    run_steps(layout, "gongan_population", DAY0)
    rows = query(layout.library, "SELECT record_key, reasons, \"row\" FROM quarantine")
    assert rows
    for key, reasons, row in rows:
        reasons, row = json.loads(reasons), json.loads(row)
        assert reasons and all({"code", "severity", "message"} <= set(r) for r in reasons)
        assert row["id_number"] == key


def test_batch_over_threshold_is_rejected_and_library_untouched(tmp_path, monkeypatch):
    import dataclasses

    from exchange.exceptions import BatchRejected
    from exchange.sources import registry

    layout = _simulated(tmp_path / "a", days=0)
    run_steps(layout, "zrzy_property", DAY0)
    before = library_hash(layout)
    strict = dataclasses.replace(registry.get_source("gongan_population"), error_threshold=0.0)
    real = registry.get_source
    monkeypatch.setattr("exchange.pipeline.get_source",
                        lambda sid: strict if sid == "gongan_population" else real(sid))
    with pytest.raises(BatchRejected, match="threshold") as err:
        run_steps(layout, "gongan_population", DAY0)
    assert not err.value.retryable
    assert library_hash(layout) == before  # nothing merged, watermark not advanced
    status = query(layout.library, "SELECT status FROM quality_runs WHERE source_id = 'gongan_population'")
    assert status == [("rejected",)]


def test_a_batch_merged_in_slices_builds_the_same_library(tmp_path, monkeypatch):
    """Slicing bounds the merge's memory; it must not change a single row, version or history entry."""
    from warehouse.load import ENV_SLICE_ROWS, merge_slices

    def build(root, slice_rows):
        if slice_rows:
            monkeypatch.setenv(ENV_SLICE_ROWS, str(slice_rows))
        else:
            monkeypatch.delenv(ENV_SLICE_ROWS, raising=False)
        layout = _simulated(root, days=0)
        day0 = {s: run_steps(layout, s, DAY0)["loaded"] for s in SOURCES}
        simulate(layout, persons=1200, seed=3, day=1)
        day1 = {s: run_steps(layout, s, DAY1)["loaded"] for s in SOURCES}
        return layout, day0, day1

    whole, w0, w1 = build(tmp_path / "whole", None)
    sliced, s0, s1 = build(tmp_path / "sliced", 97)  # 1,200 persons → 13 slices
    assert merge_slices(1200) == 13
    keys = ("certificates_new", "certificates_changed", "subjects_upserted")
    for s in SOURCES:
        assert [w0[s][k] for k in keys] == [s0[s][k] for k in keys], s
        assert [w1[s][k] for k in keys] == [s1[s][k] for k in keys], s
    assert w1["gongan_population"]["certificates_changed"] > 0  # the second day really changes rows
    for table in ("certificates", "certificate_history", "subjects"):
        sql = f"SELECT count(*), md5(string_agg(md5(CAST(t AS VARCHAR)), '' ORDER BY md5(CAST(t AS VARCHAR)))) FROM {table} t"
        assert query(whole.library, sql) == query(sliced.library, sql), table
    assert query(whole.library, "SELECT count(*) FROM certificate_history")[0][0] > 0


def test_the_slice_size_is_checked(monkeypatch):
    from warehouse.load import ENV_SLICE_ROWS, merge_slices

    monkeypatch.delenv(ENV_SLICE_ROWS, raising=False)
    assert merge_slices(0) == 1 and merge_slices(1_000_000) == 1 and merge_slices(1_000_001) == 2
    for bad in ("0", "-5", "lots"):
        monkeypatch.setenv(ENV_SLICE_ROWS, bad)
        with pytest.raises(ValueError, match=ENV_SLICE_ROWS):
            merge_slices(10)
