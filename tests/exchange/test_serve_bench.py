"""The serving path under load: the benchmark's code at a tiny size, and the group-committed usage log."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from exchange.store.sqlite import SqliteStore, chain_hash, log_template
from warehouse.datadir import Layout

AT = dt.datetime(2026, 11, 20, 10, 0, 0)


@pytest.mark.service
def test_serving_benchmark_runs_clean_at_tiny_size(tmp_path, monkeypatch):
    """wrk against the hub and the bare anchor: no errors, one committed log record per answer."""
    from exchange.serve_bench import CONNECTIONS, bench_serve, verify_chain

    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    figures = bench_serve(tmp_path, 2000, seconds=3, sustained_seconds=3, rotate=500)
    for name in ("lookup_rps", "lookup_p99_ms", "once_only_rps", "once_only_p99_ms"):
        f = figures[name]
        assert f["value"] > 0 and f["anchor_value"] > 0 and f["ratio"] is not None, (name, f)
    s = figures["sustained_errors"]
    assert s["anchor_value"] > 0, "the sustained run answered nothing"
    assert (s["value"], s["non_2xx"], s["socket_errors"]) == (0, 0, 0), s
    assert s["lost_log_records"] == 0 and s["broken_chain_records"] == 0, s
    assert s["log_records_written"] >= s["anchor_value"]
    assert 0 <= s["in_flight_at_stop"] <= CONNECTIONS, s
    assert len(figures["once_only_rps"]["items"]) == 5
    for name in ("lookup_rps", "lookup_p99_ms", "once_only_rps", "once_only_p99_ms"):
        rounds = figures[name]["rounds"]  # 3 alternating anchor/hub runs of 1 s each
        assert len(rounds) == 3 and all(r["value"] > 0 and r["anchor_value"] > 0 for r in rounds), (name, rounds)
    ps = sorted(r["value"] for r in figures["lookup_p99_ms"]["rounds"])
    assert figures["lookup_p99_ms"]["value"] == round(ps[1], 2)  # the median round

    # The chain check the figure relies on does notice a tampered record.
    layout = Layout(tmp_path / "serve-2000")
    db = sqlite3.connect(layout.service / "service.sqlite")
    with db:
        db.execute("UPDATE usage_log SET record = replace(record, '\"granted\"', '\"denied\"') "
                   "WHERE seq = (SELECT max(seq) FROM usage_log)")
    db.close()
    assert verify_chain(layout, 0) == 1


def test_group_commit_keeps_one_linear_chain_under_concurrency(tmp_path):
    store = SqliteStore(tmp_path / "service.sqlite")
    seqs: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(50):
            rec = store.append_log({"action": "t", "worker": n, "i": i}, at=AT)
            with lock:
                seqs.append(rec.seq)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, 801))
    records = store.log_records()
    prev = "0" * 64
    for r in records:
        assert r.prev_hash == prev and chain_hash(r.prev_hash, r.record) == r.hash
        prev = r.hash
    assert store._writer.batches < 800, "appends were never grouped into a batch"
    store.close()


def test_failed_batch_fails_every_waiting_request_and_writes_nothing(tmp_path):
    import exchange.store.sqlite as mod

    store = SqliteStore(tmp_path / "service.sqlite")
    store.append_log({"action": "first"}, at=AT)
    original = store._connect_writer

    def impatient() -> sqlite3.Connection:  # the real writer waits up to 30 s for the lock
        db = original()
        db.execute("PRAGMA busy_timeout = 200")
        return db

    store._writer.stop()
    store._writer = mod.LogWriter(store)
    store._connect_writer = impatient  # type: ignore[method-assign]
    other = sqlite3.connect(tmp_path / "service.sqlite", timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        futures = [store.submit_log({"action": "blocked", "i": i}, at=AT) for i in range(5)]
        for f in futures:
            with pytest.raises(sqlite3.OperationalError):
                f.result(timeout=10)
    finally:
        other.rollback()
        other.close()
    assert [r.record for r in store.log_records()] == [store.log_records()[0].record]
    assert store.append_log({"action": "after"}, at=AT).seq == 2
    store.close()


def test_log_template_places_seq_once_even_when_values_mimic_it():
    head, tail, day = log_template({"action": "licence", "target": 'x"seq":-1,"seq":-1'}, AT)
    assert head.endswith('"seq":') and day == "2026-11-20"
    assert '"seq":-1' not in head + tail.replace('\\"seq\\":-1', "")
    from certificates import canonical_json

    expected = canonical_json({"action": "licence", "target": 'x"seq":-1,"seq":-1', "seq": 7,
                               "at": "2026-11-20T10:00:00.000000"}).decode()
    assert f"{head}7{tail}" == expected


def test_session_sealer_values_open_with_the_auditor_key_and_never_repeat():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from exchange.api.core.identifiers import SessionSealer
    from exchange.usagelog.auditor import open_identifier

    key = X25519PrivateKey.generate()
    sealer = SessionSealer(key.public_key(), max_uses=3)  # a new session key every 3 values
    values = [sealer.seal("330102193709094939") for _ in range(10)]
    assert len(set(values)) == 10
    assert {open_identifier(v, key) for v in values} == {"330102193709094939"}
    other = X25519PrivateKey.generate()
    with pytest.raises(Exception, match="does not open"):
        open_identifier(values[0], other)


def test_record_queued_after_the_writer_stopped_is_refused_not_left_waiting(tmp_path):
    from concurrent.futures import Future

    from exchange.store.base import StoreError

    store = SqliteStore(tmp_path / "service.sqlite")
    store.append_log({"action": "first"}, at=AT)  # starts the writer
    writer = store._writer
    writer._queue.put(None)  # the writer stops here …
    late: Future = Future()
    writer._queue.put((log_template({"action": "late"}, AT), late))  # … and this one races it
    store.close()
    with pytest.raises(StoreError, match="closed before"):
        late.result(timeout=5)


def test_rounds_combine_into_one_figure():
    from exchange.serve_bench import WrkResult, bench_serve, combine

    rounds = [WrkResult(100, 1.0, 0, 1, 1.0, 9.0), WrkResult(300, 2.0, 2, 0, 2.0, 3.0),
              WrkResult(50, 1.0, 0, 0, 5.0, 4.0)]
    c = combine(rounds)
    assert (c.requests, c.seconds, c.socket_errors, c.non_2xx) == (450, 4.0, 2, 1)
    assert c.rps == 112.5 and c.p99_ms == 4.0 and c.p50_ms == 2.0  # all over all; medians
    assert combine(rounds[:2]).p99_ms == 6.0
    with pytest.raises(ValueError, match="no wrk results"):
        combine([])
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        bench_serve(Path("/nonexistent"), 10, rounds=0)
