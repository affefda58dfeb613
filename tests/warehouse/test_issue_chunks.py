"""issue_rows over several chunks with one worker pool: every licence stored once, each
status list entry handed out once, and a chunk's transaction records the status list fill
of that chunk only (the next chunk is already being signed while it is stored); a failed
chunk leaves neither rows nor files behind."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from tests.warehouse.factories import pending_rows

AT = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
CHECK_AT = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


def _db(tmp_path):
    from warehouse.duck import connect
    from warehouse.schema import migrate

    con = connect(tmp_path / "lib.duckdb")
    migrate(con)
    return con


@pytest.mark.parametrize("workers", [1, 2])
def test_chunked_issuance_stores_each_licence_once_with_unique_status_entries(tmp_path, monkeypatch,
                                                                             keyring, workers):
    import certificates.issue as issue_mod
    from certificates import verify_licence
    from warehouse.build import _StatusAssigner, issue_rows

    monkeypatch.setattr(issue_mod, "PARALLEL_MIN_ROWS", 1)  # a real pool even for a small build
    con = _db(tmp_path)
    n = 700
    issued, reissued = issue_rows(con, pending_rows(n), keyring=keyring, assigner=_StatusAssigner(con),
                                  mode="batch", at=AT, prefix="t", files=tmp_path / "licences", chunk=200,
                                  batch_size=64, workers=workers)
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
    from warehouse.exceptions import LicenceConflict
    from warehouse.licence_store import registered

    monkeypatch.setattr(issue_mod, "PARALLEL_MIN_ROWS", 1)
    con = _db(tmp_path)
    files = tmp_path / "licences"
    # the last chunk holds one row twice: the same licence_id twice is refused when it is registered
    good = pending_rows(300)
    pending = pa.concat_tables([good, pending_rows(1, start=299).cast(good.schema)])
    with pytest.raises(LicenceConflict) as exc:
        issue_rows(con, pending, keyring=keyring, assigner=_StatusAssigner(con), mode="batch", at=AT,
                   prefix="t", files=files, chunk=200, batch_size=64, workers=workers)
    assert len(exc.value.licence_ids) == 1
    stored = con.execute("SELECT count(*) FROM licences").fetchone()[0]
    used = con.execute("SELECT coalesce(sum(used), 0) FROM status_lists").fetchone()[0]
    assert stored == 200, stored  # chunk 1 committed; chunk 2 (rows 200..299 + the duplicate) rolled back
    assert used == stored, f"status_lists.used sums to {used} after a failed chunk, {stored} licences stored"
    # only the committed chunk's files are left, and they are the registered ones
    assert sorted(p.name for p in files.iterdir()) == sorted(registered(con))
    con.close()


def test_jobs_group_rows_by_key_in_whole_batches_and_pickle_only_their_rows(tmp_path):
    import pickle

    from certificates.issue import make_jobs

    table = pending_rows(500)
    kids = ["kid-b" if i % 3 else "kid-a" for i in range(500)]  # interleaved, as two issuers are
    table = table.append_column("status_list", pa.array(["l"] * 500)).append_column(
        "status_index", pa.array(range(500), pa.int32()))
    jobs = make_jobs(table, kids, prefix="p", batch_size=64, out_dir=tmp_path, job_rows=128)
    want = [i for i in range(500) if kids[i] == "kid-a"] + [i for i in range(500) if kids[i] == "kid-b"]
    got = [k for job in jobs for k in job.rows.column("status_index").to_pylist()]
    assert got == want  # by key (sorted), then input order
    spans = [(job.rows.column("kid")[a].as_py(), z - a) for job in jobs for _, a, z in job.spans]
    assert [n for _, n in spans] == [64, 64, 39, 64, 64, 64, 64, 64, 13]  # 167 of kid-a, 333 of kid-b
    for job in jobs:
        for _, a, z in job.spans:
            assert len(set(job.rows.column("kid")[a:z].to_pylist())) == 1
        assert job.rows.num_rows <= 128
    assert len({b for job in jobs for b, _, _ in job.spans}) == 9
    # each job carries its own rows, not the whole chunk's buffers
    assert len(pickle.dumps(jobs[0])) < len(pickle.dumps(table)) / 3


def test_streamed_pending_rows_arrive_in_exact_chunks_in_order():
    from warehouse.build import PendingRows, _chunks

    table = pa.table({"k": list(range(1003))})
    batches = table.to_batches(max_chunksize=64)
    parts = list(_chunks(PendingRows(1003, [], iter(batches)), 200))
    assert [p.num_rows for p in parts] == [200] * 5 + [3]
    assert pa.concat_tables(parts).column("k").to_pylist() == list(range(1003))
    assert [p.num_rows for p in _chunks(table, 200)] == [200] * 5 + [3]
    assert list(_chunks(PendingRows(0, [], iter([])), 200)) == []


def test_the_build_streams_its_pending_rows_chunk_by_chunk(tmp_path, monkeypatch):
    """issue_pending reads the pending certificates through a cursor of its own while each
    chunk commits: the same licences as a build in one chunk, none twice, none missing."""
    import datetime as dt

    from exchange.departments import BASE_DATE, simulate
    from tests.pipeline_helpers import query, run_steps
    from warehouse.build import issue_pending
    from warehouse.datadir import Layout

    def build(root, chunk):
        layout = Layout(root).ensure()
        monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(root))
        simulate(layout, persons=600, seed=5, day=0)
        run_steps(layout, "gongan_population", BASE_DATE)
        result = issue_pending(layout, at=AT, chunk=chunk, workers=1)
        rows = query(layout.library, "SELECT cert_key, version, status_list IS NOT NULL FROM licences ORDER BY cert_key")
        certs = query(layout.library, "SELECT cert_key, version, true FROM certificates ORDER BY cert_key")
        return result, rows, certs, layout

    whole, rows_w, certs_w, _ = build(tmp_path / "whole", 200_000)
    streamed, rows_s, certs_s, layout = build(tmp_path / "streamed", 97)
    assert streamed.issued == whole.issued == len(certs_s) > 97 * 5
    assert rows_s == certs_s == rows_w == certs_w
    files = query(layout.library, "SELECT count(*) FROM licence_files")[0][0]
    assert files >= len(certs_s) // 97  # one or more files per chunk: it really ran in chunks
    assert issue_pending(layout, at=AT + dt.timedelta(hours=1), chunk=97, workers=1).issued == 0
