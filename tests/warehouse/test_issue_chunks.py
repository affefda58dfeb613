"""issue_rows over several chunks with one worker pool: every licence stored once, each
status list entry handed out once, and a chunk's transaction records the status list fill
of that chunk only (the next chunk is already being signed while it is stored)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

AT = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
CHECK_AT = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


def _pending(n: int, *, start: int = 0) -> pa.Table:
    from certificates.bench import library_rows

    cols = library_rows(n, start=start)
    cols["version"] = [1] * n
    cols["prev_licence_id"] = [None] * n
    return pa.table(cols)


def _db(tmp_path):
    from warehouse.duck import connect
    from warehouse.schema import migrate

    con = connect(tmp_path / "lib.duckdb")
    migrate(con)
    return con


@pytest.fixture(scope="module")
def keyring(tmp_path_factory):
    from certificates.bench import bench_keyring

    return bench_keyring(tmp_path_factory.mktemp("keys"))


@pytest.mark.parametrize("workers", [1, 2])
def test_chunked_issuance_stores_each_licence_once_with_unique_status_entries(tmp_path, monkeypatch,
                                                                             keyring, workers):
    import certificates.issue as issue_mod
    from certificates import verify_licence
    from warehouse.build import _StatusAssigner, issue_rows

    monkeypatch.setattr(issue_mod, "PARALLEL_MIN_ROWS", 1)  # a real pool even for a small build
    con = _db(tmp_path)
    n = 700
    issued, reissued = issue_rows(con, _pending(n), keyring=keyring, assigner=_StatusAssigner(con),
                                  mode="batch", at=AT, prefix="t", chunk=200, batch_size=64, workers=workers)
    assert (issued, reissued) == (n, 0)
    total, ids, entries, certs = con.execute(
        "SELECT count(*), count(DISTINCT licence_id), count(DISTINCT (status_list, status_index)), "
        "count(DISTINCT cert_key) FROM licences").fetchone()
    assert total == ids == entries == certs == n, (total, ids, entries, certs)
    used = con.execute("SELECT sum(used) FROM status_lists").fetchone()[0]
    assert used == n, f"status_lists.used sums to {used}, {n} licences stored"
    batches = con.execute("SELECT count(*), sum(size) FROM licence_batches").fetchone()
    assert batches[1] == n and batches[0] >= n // 64, batches
    trust = keyring.trust()
    stored = con.execute("SELECT licence_id, token, holder_code, issuer_code, version, status_list, status_index "
                         "FROM licences ORDER BY cert_key").fetchall()
    for licence_id, token, holder, issuer, version, status_list, status_index in stored[:: 7]:
        outcome = verify_licence(token, trust, at=CHECK_AT)
        assert outcome.ok, outcome.code
        # each row's columns belong to the token stored with it (rows are regrouped by issuer key)
        p = outcome.payload
        assert (p["licence_id"], p["holder"]["code"], p["issuer"]["code"], p["version"]) == \
            (licence_id, holder, issuer, version)
        assert status_list in str(p) and str(status_index) in str(p)
    con.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_chunk_keeps_earlier_chunks_and_their_status_fill_only(tmp_path, monkeypatch, keyring,
                                                                         workers):
    import certificates.issue as issue_mod
    from warehouse.build import _StatusAssigner, issue_rows

    monkeypatch.setattr(issue_mod, "PARALLEL_MIN_ROWS", 1)
    con = _db(tmp_path)
    # the last chunk holds one row twice: the same licence_id twice breaks the primary key on insert
    good = _pending(300)
    pending = pa.concat_tables([good, _pending(1, start=299).cast(good.schema)])
    with pytest.raises(duckdb.ConstraintException):
        issue_rows(con, pending, keyring=keyring, assigner=_StatusAssigner(con), mode="batch", at=AT,
                   prefix="t", chunk=200, batch_size=64, workers=workers)
    stored = con.execute("SELECT count(*) FROM licences").fetchone()[0]
    used = con.execute("SELECT coalesce(sum(used), 0) FROM status_lists").fetchone()[0]
    assert stored == 200, stored  # chunk 1 committed; chunk 2 (rows 200..299 + the duplicate) rolled back
    assert used == stored, f"status_lists.used sums to {used} after a failed chunk, {stored} licences stored"
    con.close()


def test_jobs_from_an_arrow_table_match_jobs_from_lists_and_pickle_only_their_rows():
    import pickle

    from certificates.issue import ROW_COLUMNS, make_jobs, make_jobs_from_table

    table = _pending(500)
    cols = table.to_pydict()
    kids = ["kid-b" if i % 3 else "kid-a" for i in range(500)]  # interleaved, as two issuers are
    refs = [("l", i) for i in range(500)]
    args = (cols["version"], cols["prev_licence_id"], kids)
    from_lists = make_jobs(cols, *args, prefix="p", batch_size=64, status_refs=refs)
    from_table = make_jobs_from_table(table, *args, prefix="p", batch_size=64, status_refs=refs)
    assert len({k for k in kids}) == 2 and len(from_table) == len(from_lists) > 2
    for a, b in zip(from_lists, from_table):
        assert (a.batch_id, a.kid, a.versions, a.supersedes, a.status_refs) == \
            (b.batch_id, b.kid, b.versions, b.supersedes, b.status_refs)
        assert [list(c) for c in a.columns] == [c.to_pylist() for c in b.columns], a.batch_id
    # each job carries its own rows, not the whole chunk's buffers
    whole = len(pickle.dumps(table.select(list(ROW_COLUMNS))))
    assert len(pickle.dumps(from_table[0])) < whole / 4
