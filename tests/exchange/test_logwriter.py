"""Group commit on the event loop: one linear chain, nothing answered before its commit, busy locks waited out."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading

import pytest

from exchange.store.base import StoreError
from exchange.store.sqlite import SqliteStore, chain_hash

AT = dt.datetime(2026, 11, 20, 10, 0, 0)


def _chain_ok(store: SqliteStore) -> list[int]:
    prev, seqs = "0" * 64, []
    for r in store.log_records():
        assert r.prev_hash == prev and chain_hash(r.prev_hash, r.record) == r.hash
        prev = r.hash
        seqs.append(r.seq)
    return seqs


def test_loop_appends_from_many_tasks_and_threads_form_one_chain(tmp_path):
    store = SqliteStore(tmp_path / "service.sqlite")

    async def task(n: int) -> list[int]:
        return [(await store.submit_log_async({"action": "loop", "task": n, "i": i}, at=AT)).seq
                for i in range(25)]

    def thread(n: int) -> None:
        for i in range(25):
            store.append_log({"action": "thread", "n": n, "i": i}, at=AT)

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(task(n) for n in range(32)))

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    per_task = asyncio.run(main())
    for t in threads:
        t.join()
    assert all(seqs == sorted(seqs) for seqs in per_task)  # each task's records in its order
    assert _chain_ok(store) == list(range(1, 32 * 25 + 4 * 25 + 1))
    assert 0 < store._loop_writer.batches < 32 * 25, "loop appends were never grouped into a batch"
    store.close()


def test_loop_waits_out_a_busy_write_lock_and_answers_only_after_commit(tmp_path):
    store = SqliteStore(tmp_path / "service.sqlite")
    store.append_log({"action": "first"}, at=AT)
    other = sqlite3.connect(tmp_path / "service.sqlite", timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

    async def main() -> tuple[list[int], int]:
        futures = [store.submit_log_async({"action": "busy", "i": i}, at=AT) for i in range(5)]
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in futures), "answered before the record was committed"
        assert store._loop_writer.busy_retries > 0
        other.execute("ROLLBACK")  # the lock is free again
        seqs = [(await f).seq for f in futures]
        return seqs, len(store.log_records())

    seqs, count = asyncio.run(main())
    assert seqs == [2, 3, 4, 5, 6] and count == 6
    _chain_ok(store)
    other.close()
    store.close()


def test_loop_batch_fails_every_waiter_after_the_busy_limit_and_writes_nothing(tmp_path):
    store = SqliteStore(tmp_path / "service.sqlite")
    store.append_log({"action": "first"}, at=AT)
    store._loop_writer.busy_limit_s = 0.05
    other = sqlite3.connect(tmp_path / "service.sqlite", timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def main() -> None:
        futures = [store.submit_log_async({"action": "blocked", "i": i}, at=AT) for i in range(3)]
        for f in futures:
            with pytest.raises(sqlite3.OperationalError):
                await f

    try:
        asyncio.run(main())
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [r.seq for r in store.log_records()] == [1]

    async def after() -> int:
        return (await store.submit_log_async({"action": "after"}, at=AT)).seq

    assert asyncio.run(after()) == 2
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_close_commits_what_the_loop_has_queued_and_refuses_later_records(tmp_path, backend, request):
    from exchange.store import open_store
    from warehouse.datadir import Layout

    url = request.getfixturevalue("pg_dsn") if backend == "postgres" else ""
    opened = lambda: open_store(Layout(tmp_path), url)  # noqa: E731 — the same store, twice
    store = opened()

    async def main() -> None:
        futures = [store.submit_log_async({"action": "queued", "i": i}, at=AT) for i in range(3)]
        store.close()  # before the loop ran the flush (SQLite) or the drain (PostgreSQL)
        assert [(await f).seq for f in futures] == [1, 2, 3]
        with pytest.raises(StoreError, match="closed"):
            store.submit_log_async({"action": "late"}, at=AT)

    asyncio.run(main())
    reopened = opened()
    assert _chain_ok(reopened) == [1, 2, 3]
    reopened.close()


def test_loop_connection_leaves_checkpoints_to_the_checkpoint_thread(tmp_path):
    store = SqliteStore(tmp_path / "service.sqlite")
    store._loop_writer.checkpoint_s = 0.02

    async def main() -> None:
        for i in range(200):
            await store.submit_log_async({"action": "fill", "i": i, "pad": "x" * 2000}, at=AT)
        q = next(iter(store._loop_writer._queues.values()))
        assert q.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        await asyncio.sleep(0.2)

    asyncio.run(main())
    assert store._loop_writer.checkpoints > 0
    store.close()


def test_found_applications_stay_cached_across_store_changes_absent_ones_do_not(tmp_path):
    store = SqliteStore(tmp_path / "service.sqlite")
    store.add_department("D1", "部门")
    store.accept_application("C-1", "000120003000", "H1", "clerk", "client", at=AT)
    other = SqliteStore(tmp_path / "service.sqlite")
    assert other.preload_applications() == 1
    queries = []
    original = other._application
    other._application = lambda case: queries.append(case) or original(case)  # type: ignore[method-assign]
    assert other.application("C-1").holder_code == "H1" and queries == []  # preloaded
    assert other.application("C-2") is None and queries == ["C-2"]
    store.accept_application("C-2", "000120003000", "H2", "clerk", "client", at=AT)  # another process
    other.grant("D1", "T", by="admin", at=AT)  # a store change clears the rules cache …
    assert other.application("C-2").holder_code == "H2"  # … an absent case is looked up again
    assert other.application("C-1").holder_code == "H1" and queries == ["C-2", "C-2"]  # still kept
    other._CACHE_LIMIT = 2
    store.accept_application("C-3", "000120003000", "H3", "clerk", "client", at=AT)
    assert other.application("C-3").holder_code == "H3"
    assert list(other._applications) == ["C-2", "C-3"]  # the oldest kept one made room
    other.close()
    store.close()
