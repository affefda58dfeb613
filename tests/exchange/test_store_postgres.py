"""The PostgreSQL store as several replicas use it: one chain, one redemption, one schema, no blocked loop.

The shared behaviour runs on both backends in the store, usage-log and access tests
(``store_backend``); these are the parts only a server shared by processes has.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import multiprocessing
import threading
import time
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from exchange.store import ENV_URL, StoreError, open_store
from exchange.store.base import GENESIS, chain_hash
from exchange.store.postgres import CHAIN_LOCK, PostgresStore, redact

pytestmark = pytest.mark.postgres

AT = dt.datetime(2026, 11, 20, 10, 0, 0)


@pytest.fixture()
def stores(pg_dsn):
    """Two store objects on one database: two replicas, as far as PostgreSQL can tell."""
    opened = [PostgresStore(pg_dsn), PostgresStore(pg_dsn)]
    yield opened
    for store in opened:
        store.close()


def _chain(store) -> list[int]:
    """The seqs of the store's chain after checking every link (as ``audit verify-log`` does)."""
    prev, seqs = GENESIS, []
    for r in store.log_records():
        assert r.prev_hash == prev and chain_hash(r.prev_hash, r.record) == r.hash, r.seq
        assert json.loads(r.record)["seq"] == r.seq
        prev = r.hash
        seqs.append(r.seq)
    return seqs


def test_two_replicas_appending_from_threads_and_loops_keep_one_chain_that_verify_log_accepts(
        stores, pg_dsn, layout, monkeypatch):
    got: list[int] = []
    lock = threading.Lock()

    def thread(store: PostgresStore, n: int) -> None:
        for i in range(40):
            seq = store.append_log({"action": "thread", "n": n, "i": i}, at=AT).seq
            with lock:
                got.append(seq)

    def loop(store: PostgresStore, n: int) -> None:
        async def task(t: int) -> list[int]:
            return [(await store.submit_log_async({"action": "loop", "n": n, "t": t, "i": i}, at=AT)).seq
                    for i in range(20)]

        async def main() -> list[list[int]]:
            return await asyncio.gather(*(task(t) for t in range(8)))

        per_task = asyncio.run(main())
        assert all(s == sorted(s) for s in per_task)  # each task's records in its order
        with lock:
            got.extend(s for seqs in per_task for s in seqs)

    workers = [threading.Thread(target=thread, args=(store, n)) for store in stores for n in range(3)]
    workers += [threading.Thread(target=loop, args=(store, n)) for n, store in enumerate(stores)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    total = 2 * 3 * 40 + 2 * 8 * 20
    assert sorted(got) == list(range(1, total + 1))  # no seq twice, none skipped
    assert _chain(stores[0]) == list(range(1, total + 1))
    assert all(0 < s._async_writer.batches < 8 * 20 for s in stores), "loop appends were never grouped"

    from certificates import publish_trust
    from certificates.pki import Keyring
    from exchange.cli import app

    publish_trust(Keyring.load_or_create(layout, at=AT), layout.trust)
    monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(layout.root))
    monkeypatch.setenv(ENV_URL, pg_dsn)
    out = CliRunner().invoke(app, ["audit", "verify-log", "--store"])
    assert out.exit_code == 0 and "usage log intact" in out.output, out.output
    assert f"unsealed records in the store checked: {total}" in out.output


def _append_in_process(url: str, n: int, ready: Any, out: Any) -> None:
    """A replica: its event loop and two threads append for 1.5 s, once every replica has opened the store."""
    store = PostgresStore(url)
    ready.wait(60)
    end = time.monotonic() + 1.5

    def thread(i: int) -> list[int]:
        seqs = []
        while time.monotonic() < end:
            seqs.append(store.append_log({"replica": n, "thread": i}, at=AT).seq)
        return seqs

    async def main() -> list[int]:
        async def task(t: int) -> list[int]:
            seqs = []
            while time.monotonic() < end:
                seqs.append((await store.submit_log_async({"replica": n, "task": t}, at=AT)).seq)
            return seqs

        threads = [asyncio.to_thread(thread, i) for i in range(2)]
        done = await asyncio.gather(*(task(t) for t in range(6)), *threads)
        return [s for seqs in done for s in seqs]

    seqs = asyncio.run(main())
    store.close()
    out.put(seqs)


def test_two_replica_processes_appending_at_once_keep_one_chain(pg_dsn):
    PostgresStore(pg_dsn).close()  # the schema exists before both start
    ctx = multiprocessing.get_context("spawn")
    out, ready = ctx.Queue(), ctx.Barrier(2)
    procs = [ctx.Process(target=_append_in_process, args=(pg_dsn, n, ready, out)) for n in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    total = len(results[0]) + len(results[1])
    assert sorted(results[0] + results[1]) == list(range(1, total + 1))  # no seq twice, none skipped
    # the replicas really interleaved: each holds records on both sides of the other's
    assert min(results[0]) < max(results[1]) and min(results[1]) < max(results[0])
    store = PostgresStore(pg_dsn)
    assert _chain(store) == list(range(1, total + 1))
    store.close()


def _redeem_in_process(url: str, code: str, case: str, ready: Any, out: Any) -> None:
    store = PostgresStore(url)
    ready.wait(60)
    try:
        app = store.redeem_code(code, "330106198506150038", case_number=case, item_code="000173010000",
                                clerk_id="c", client_id="counter", at=AT)
        out.put(("won", case, app.case_number))
    except StoreError as exc:
        out.put(("refused", case, exc.code))
    finally:
        store.close()


@pytest.mark.parametrize("held", [True, False], ids=["both-waiting-on-a-held-lock", "free-race"])
def test_two_replicas_redeeming_one_code_exactly_one_wins(pg_dsn, held):
    store = PostgresStore(pg_dsn)
    codes = [store.issue_code("330106198506150038", at=AT, ttl=dt.timedelta(hours=1)) for _ in range(3)]
    ctx = multiprocessing.get_context("spawn")
    out, ready = ctx.Queue(), ctx.Barrier(2 * len(codes))
    blocker = psycopg.connect(pg_dsn, autocommit=False) if held else None
    if blocker is not None:  # another writer holds the store: every redemption starts, then waits on it
        blocker.execute("UPDATE store_generation SET gen = gen + 1 WHERE id = 1")
    procs = [ctx.Process(target=_redeem_in_process, args=(pg_dsn, code, f"K-{i}-{side}", ready, out))
             for i, code in enumerate(codes) for side in "ab"]
    for p in procs:
        p.start()
    if blocker is not None:
        _wait_for_lock_waiters(store, len(procs))
        assert out.empty(), "a redemption finished while another writer held the store"
        blocker.rollback()
        blocker.close()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    for i in range(len(codes)):
        mine = sorted((r[0], r[2]) for r in results if r[1].startswith(f"K-{i}-"))
        assert [m[0] for m in mine] == ["refused", "won"], mine
        assert mine[0][1] == "authorisation_code_used", mine
        winner = mine[1][1]
        assert store.application(winner).basis == "code"
        loser = f"K-{i}-{'b' if winner.endswith('a') else 'a'}"
        assert store.application(loser) is None  # the refused case got no application
    store.close()


def _wait_for_lock_waiters(store: PostgresStore, n: int, timeout: float = 60) -> None:
    """Until ``n`` sessions of the store's database wait on a lock."""
    deadline = time.monotonic() + timeout
    while store._rows("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND wait_event_type = 'Lock'")[0][0] < n:
        assert time.monotonic() < deadline, f"fewer than {n} sessions ever waited on a lock"
        time.sleep(0.05)


def test_opening_a_new_store_from_two_places_at_once_migrates_once(pg_dsn):
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresStore(pg_dsn))
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert {s.schema_version for s in opened} == {1}
    assert opened[0]._rows("SELECT count(*) FROM schema_migrations")[0][0] == 1
    for s in opened:
        s.close()


def test_the_loop_serves_while_another_replica_holds_the_chain_and_answers_only_after_commit(stores):
    store, other = stores
    store.append_log({"action": "first"}, at=AT)
    holder = psycopg.connect(other.url, autocommit=False)
    holder.execute(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")  # another replica's batch, mid-commit

    async def main() -> tuple[list[int], int]:
        futures = [store.submit_log_async({"action": "waiting", "i": i}, at=AT) for i in range(5)]
        ticks = 0
        for _ in range(40):  # 0.2 s of the loop doing other work
            await asyncio.sleep(0.005)
            ticks += 1
        assert not any(f.done() for f in futures), "answered before the record was committed"
        assert other.log_extent() == (1, 1)
        holder.rollback()  # the other batch is done: ours commits
        seqs = [(await f).seq for f in futures]
        return seqs, ticks

    seqs, ticks = asyncio.run(main())
    holder.close()
    assert seqs == [2, 3, 4, 5, 6] and ticks == 40
    assert other.log_extent() == (6, 6)
    assert _chain(other) == [1, 2, 3, 4, 5, 6]


def test_a_failed_batch_fails_every_waiter_writes_nothing_and_the_next_batch_reconnects(stores):
    store, other = stores

    async def first() -> int:
        return (await store.submit_log_async({"action": "first"}, at=AT)).seq

    async def doomed() -> list[BaseException | int]:
        futures = [store.submit_log_async({"action": "doomed", "i": i}, at=AT) for i in range(3)]
        while other._rows("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND wait_event_type = 'Lock'")[0][0] < 1:
            await asyncio.sleep(0.01)  # the batch started and waits on the chain lock held below
        other._rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")
        return await asyncio.gather(*futures, return_exceptions=True)

    async def main() -> tuple[list, int]:
        assert await first() == 1
        holder = psycopg.connect(other.url, autocommit=False)
        holder.execute(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")
        try:
            outcomes = await doomed()
        finally:
            holder.rollback()
            holder.close()
        after = (await store.submit_log_async({"action": "after"}, at=AT)).seq
        return outcomes, after

    outcomes, after = asyncio.run(main())
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert after == 2
    assert [json.loads(r.record)["action"] for r in other.log_records()] == ["first", "after"]


def test_close_from_another_thread_lets_the_batch_in_flight_and_the_records_behind_it_commit(stores):
    store, other = stores
    holder = psycopg.connect(other.url, autocommit=False)
    holder.execute(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")
    closing = threading.Thread(target=store.close)

    async def main() -> None:
        first = [store.submit_log_async({"action": "in flight", "i": i}, at=AT) for i in range(3)]
        while other._rows("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND wait_event_type = 'Lock'")[0][0] < 1:
            await asyncio.sleep(0.01)  # that batch waits on the chain lock
        behind = [store.submit_log_async({"action": "queued", "i": i}, at=AT) for i in range(2)]
        closing.start()  # waits for the loop's batches, then closes their connection
        await asyncio.sleep(0.1)
        assert closing.is_alive() and not any(f.done() for f in first + behind)
        holder.rollback()
        assert [(await f).seq for f in first + behind] == [1, 2, 3, 4, 5]
        while closing.is_alive():
            await asyncio.sleep(0.01)
        with pytest.raises(StoreError, match="closed"):
            store.submit_log_async({"action": "late"}, at=AT)

    asyncio.run(main())
    holder.close()
    assert _chain(other) == [1, 2, 3, 4, 5]


def test_a_connection_the_server_dropped_is_opened_again(stores):
    store, other = stores
    store.add_department("D1", "dept")
    store.append_log({"action": "before"}, at=AT)
    other._rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")
    assert store.departments() == [("D1", "dept")]  # a read outside a transaction is retried once
    store.add_department("D2", "again")  # and so is the BEGIN of a write
    assert store.append_log({"action": "after"}, at=AT).seq == 2  # the writer thread reconnects too
    assert [d for d, _ in other.departments()] == ["D1", "D2"]


def test_bad_urls_and_unreachable_servers_say_what_and_where_without_the_password(layout):
    with pytest.raises(StoreError, match="must be a postgresql:// URL") as bad:
        open_store(layout, "mysql://user:secret@host/db")
    assert bad.value.code == "store_url_invalid" and "secret" not in str(bad.value)
    from tests.pgserver import free_port

    url = f"postgresql://store:hunter2@127.0.0.1:{free_port()}/onewindow_store"
    with pytest.raises(StoreError) as down:
        open_store(layout, url)
    assert down.value.code == "store_unavailable"
    assert "ONEWINDOW_STORE_URL" in str(down.value) and "127.0.0.1" in str(down.value)
    assert "hunter2" not in str(down.value) and "store:***@" in str(down.value)
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_rows_read_like_sqlite_rows_and_text_sorts_bytewise(stores):
    store, _ = stores
    for code in ("b", "B", "a-b", "ab", "中"):
        store.add_department(code, f"dept {code}")
    assert [c for c, _ in store.departments()] == sorted(["b", "B", "a-b", "ab", "中"])  # as SQLite and Python
    row = store._rows("SELECT code, name FROM departments WHERE code = ?", ("ab",))[0]
    assert (row[0], row["name"], dict(row), tuple(row)) == ("ab", "dept ab", {"code": "ab", "name": "dept ab"},
                                                             ("ab", "dept ab"))


def test_another_replicas_applications_are_found_kept_and_preloaded_newest_first(stores):
    store, other = stores
    for i in range(3):
        store.accept_application(f"C-{i}", "000120003000", f"H{i}", "clerk", "client", at=AT + dt.timedelta(minutes=i))
    assert other.preload_applications(limit=2) == 2
    assert list(other._applications) == ["C-1", "C-2"]  # the two newest, oldest kept first
    assert other.application("C-0").holder_code == "H0"  # not preloaded: read, then kept
    assert other.application("C-9") is None
    store.accept_application("C-9", "000120003000", "H9", "clerk", "client", at=AT)
    assert other.application("C-9").holder_code == "H9"  # an absent case is looked up again
