"""The compact licence store: Parquet files of token segments registered in the library,
read through the `licences` view — exact tokens back, nothing half-stored after a failure,
legacy tables migrated byte for byte, snapshots serving the same tokens."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.warehouse.factories import pending_rows

AT = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
CHECK_AT = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


def _issue(tmp_path, keyring, mode, n=150, **kw):
    from warehouse.build import _StatusAssigner, issue_rows
    from warehouse.duck import connect
    from warehouse.schema import migrate

    con = connect(tmp_path / "lib.duckdb")
    migrate(con)
    files = tmp_path / "licences"
    issue_rows(con, pending_rows(n, **kw), keyring=keyring, assigner=_StatusAssigner(con), mode=mode, at=AT,
               prefix="t", files=files, chunk=100, batch_size=32)
    return con, files


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_stored_segments_are_the_reference_tokens_and_verify(tmp_path, keyring, mode):
    """Each stored row's segments join into exactly the token the reference signers make
    (sign_batch for a batch, sign_licence alone), and that token verifies; a flipped
    character of a stored segment does not."""
    from certificates.batch import sign_batch
    from certificates.signing import sign_licence
    from certificates.verify import verify_licence

    con, files = _issue(tmp_path, keyring, mode)
    stored = pa.concat_tables([pq.read_table(files / name) for (name,) in
                               con.execute("SELECT file FROM licence_files ORDER BY seq").fetchall()])
    view = dict(con.execute("SELECT licence_id, token FROM licences").fetchall())
    assert stored.num_rows == len(view) == 150
    rows = stored.to_pylist()
    trust = keyring.trust()
    by_batch: dict[str, list[dict]] = {}
    for row in rows:
        token = f"{row['token_header']}.{row['token_payload']}.{row['token_tail']}"
        assert view[row["licence_id"]] == token
        outcome = verify_licence(token, trust, at=CHECK_AT)
        assert outcome.ok, outcome.code
        assert outcome.payload["licence_id"] == row["licence_id"] and outcome.payload["version"] == row["version"]
        by_batch.setdefault(row["batch_id"], []).append(row)
    if mode == "batch":
        sizes = dict(con.execute("SELECT batch_id, size FROM licence_batches").fetchall())
        assert {b: len(m) for b, m in by_batch.items()} == sizes and max(sizes.values()) == 32
        for batch_id, members in by_batch.items():
            kid = json.loads(_b64d(members[0]["token_header"]))["kid"]
            key = next(i.private_key for i in (keyring.issuer("scjg"), keyring.issuer("zrzy")) if i.kid == kid)
            payloads = [_b64d(r["token_payload"]) for r in members]
            reference = sign_batch(payloads, private_key=key, kid=kid, batch_id=batch_id).tokens
            assert [f"{r['token_header']}.{r['token_payload']}.{r['token_tail']}" for r in members] == reference
    else:
        for row in rows[::7]:
            issuer = next(i for i in (keyring.issuer("scjg"), keyring.issuer("zrzy")) if i.code == row["issuer_code"])
            payload = json.loads(_b64d(row["token_payload"]))
            assert sign_licence(payload, issuer) == view[row["licence_id"]]
    # tampering with what is stored is caught by the verifier
    row = rows[3]
    flipped = row["token_payload"][:40] + ("A" if row["token_payload"][40] != "A" else "B") + row["token_payload"][41:]
    assert verify_licence(f"{row['token_header']}.{flipped}.{row['token_tail']}", trust, at=CHECK_AT).code == "tampered"
    con.close()


def test_the_store_columns_are_the_parquet_schema():
    from certificates.issue import ISSUED_SCHEMA
    from warehouse.licence_store import STORE_COLUMNS

    sql = {pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.timestamp("us"): "TIMESTAMP"}
    assert [(f.name, sql[f.type]) for f in ISSUED_SCHEMA] == list(STORE_COLUMNS)


def test_a_licence_already_stored_is_refused_and_nothing_of_its_chunk_stays(tmp_path, keyring):
    from warehouse.build import _StatusAssigner, issue_rows
    from warehouse.exceptions import LicenceConflict
    from warehouse.licence_store import registered

    con, files = _issue(tmp_path, keyring, "batch", n=60)
    before = con.execute("SELECT count(*), (SELECT sum(used) FROM status_lists) FROM licences").fetchone()
    names = sorted(registered(con))
    with pytest.raises(LicenceConflict) as exc:  # the same certificates once more (a later build, say)
        issue_rows(con, pending_rows(5, start=40), keyring=keyring, assigner=_StatusAssigner(con), mode="batch",
                   at=AT, prefix="u", files=files, chunk=100, batch_size=32)
    assert len(exc.value.licence_ids) == 5 and "nothing of this chunk was stored" in str(exc.value)
    assert con.execute("SELECT count(*), (SELECT sum(used) FROM status_lists) FROM licences").fetchone() == before
    assert sorted(registered(con)) == names == sorted(p.name for p in files.iterdir())
    con.close()


def test_files_a_failed_build_left_behind_are_ignored_then_removed(tmp_path, monkeypatch):
    """A build that dies after its workers wrote files but before its transaction committed
    leaves unregistered files: `licences` never reads them, and the next build deletes them."""
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from tests.warehouse.test_build import _library
    from warehouse.build import issue_pending
    from warehouse.licence_store import files_dir, registered
    from tests.pipeline_helpers import query

    layout = _library(tmp_path, 12)
    issue_pending(layout, at=AT, batch_size=8)
    directory = files_dir(layout)
    (good,) = [p.name for p in directory.iterdir()]
    orphan = directory / "20261102T180000-0000-000-deadbeef.parquet"
    orphan.write_bytes((directory / good).read_bytes())  # the same rows again, unregistered
    (directory / ".x.parquet.0123.tmp").write_bytes(b"half a file")
    assert query(layout.library, "SELECT count(*), count(DISTINCT licence_id) FROM licences")[0] == (12, 12)
    result = issue_pending(layout, at=AT + dt.timedelta(days=1))
    assert (result.issued, result.licences_total) == (0, 12)
    assert sorted(p.name for p in directory.iterdir()) == [good]
    from warehouse.duck import connect

    con = connect(layout.library, read_only=True)
    assert registered(con) == [good]
    con.close()


def test_a_missing_registered_file_is_a_clear_error(tmp_path, keyring):
    from warehouse.exceptions import LicenceFilesMissing
    from warehouse.licence_store import refresh_view, registered

    con, files = _issue(tmp_path, keyring, "single", n=20)
    (name,) = registered(con)
    (files / name).rename(tmp_path / name)
    with pytest.raises(LicenceFilesMissing, match="restore them"):
        refresh_view(con, files)
    con.close()


def _v4_library(path, tokens):
    from warehouse.duck import connect
    from warehouse.schema import MIGRATIONS

    con = connect(path)
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    for version, ddl in enumerate(MIGRATIONS[:4], start=1):
        con.execute(ddl)
        con.execute("INSERT INTO schema_migrations VALUES (?, current_timestamp)", [version])
    for k, (mode, token) in enumerate(tokens):
        con.execute("INSERT INTO licences VALUES (?, ?, ?, 1, ?, ?, NULL, 'i', 't', 'h', ?, ?, 'l', ?)",
                    [f"id-{k}", f"base-{k}", f"key-{k}", token, dt.datetime(2026, 11, 2, 18), mode,
                     "b" if mode == "batch" else None, k])
    return con


def test_migration_splits_stored_tokens_and_gives_them_back_byte_for_byte(tmp_path, keyring):
    from warehouse.schema import migrate

    (tmp_path / "src").mkdir()
    con, _ = _issue(tmp_path / "src", keyring, "batch", n=40)
    tokens = [("batch", t) for (t,) in con.execute("SELECT token FROM licences ORDER BY licence_id").fetchall()]
    con.close()
    con = _v4_library(tmp_path / "old.duckdb", tokens + [("single", "aGVhZA.cGF5bG9hZA.c2ln")])
    before = con.execute("SELECT * FROM licences ORDER BY licence_id").fetchall()
    assert migrate(con) == 6
    assert con.execute("SELECT * FROM licences ORDER BY licence_id").fetchall() == before
    assert con.execute("SELECT count(*) FROM licence_store").fetchone()[0] == len(before)
    con.close()


def test_migration_refuses_a_token_that_is_not_three_segments_and_changes_nothing(tmp_path):
    import duckdb

    from warehouse.schema import migrate

    con = _v4_library(tmp_path / "old.duckdb", [("single", "aGVhZA.cGF5bG9hZA.c2ln"), ("single", "only.two")])
    with pytest.raises(duckdb.Error, match="id-1: its stored token is not three segments"):
        migrate(con)
    assert con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 4
    assert con.execute("SELECT count(*) FROM licences").fetchone()[0] == 2  # still the table, untouched
    con.close()


def test_the_snapshot_links_the_files_and_serves_the_same_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    import os

    from tests.pipeline_helpers import query
    from tests.warehouse.test_build import _library
    from warehouse.build import issue_pending
    from warehouse.licence_store import files_dir
    from warehouse.snapshot import KEEP, licence_links, publish

    layout = _library(tmp_path, 10)
    issue_pending(layout, at=AT, batch_size=4)
    snap = publish(layout, built_at=AT)
    library = query(layout.library, "SELECT * FROM licences ORDER BY licence_id")
    assert query(snap.path, "SELECT * FROM licences ORDER BY licence_id") == library and snap.counts["licences"] == 10
    (source,) = files_dir(layout).iterdir()
    link = licence_links(snap.path) / source.name
    assert os.stat(link).st_ino == os.stat(source).st_ino  # a hard link, not a copy
    # the service reads it like any snapshot: `licences` has every column it needs, token included
    from exchange.api.core.snapshot import Snapshot

    served = Snapshot.open(snap.path)
    try:
        some = library[0]
        assert served.index.licence(some[0])["token"] == some[4]
    finally:
        served.retire()
    # publishing the same library again keeps the links; pruned snapshots lose theirs
    assert publish(layout, built_at=AT).path == snap.path and link.exists()
    paths = [publish(layout, built_at=AT + dt.timedelta(hours=h)).path for h in range(1, KEEP + 1)]
    assert not licence_links(snap.path).exists() and all(licence_links(p).is_dir() for p in paths)
