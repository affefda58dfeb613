"""Library build: licences issued in batch mode (default) and single mode, both verifiable."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from tests.certificates.factories import make_cert_row
from tests.pipeline_helpers import query
from warehouse.datadir import Layout
from warehouse.schema import CERT_COLUMNS

AT = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.timezone.utc)
CHECK_AT = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


def _library(root, n: int, statuses=("01",)) -> Layout:
    from warehouse.load import open_library

    layout = Layout(root).ensure()
    rows = []
    for i in range(n):
        r = make_cert_row(cert_number=f"JY1330106{i:07d}", status=statuses[i % len(statuses)],
                          issue_date=dt.date(2026, 3, 1), valid_from=dt.date(2026, 3, 1),
                          valid_until=dt.date(2031, 2, 28))
        r.update(source_updated_at=dt.datetime(2026, 11, 1), content_hash=f"c{i}", row_hash=f"r{i}")
        rows.append({c: r.get(c) for c in CERT_COLUMNS})
    con = open_library(layout)
    con.register("new_certs", pa.Table.from_pylist(rows))
    con.execute(f"INSERT INTO certificates SELECT {', '.join(CERT_COLUMNS)} FROM new_certs")
    con.close()
    return layout


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_issue_pending_signs_every_certificate_and_each_token_verifies(tmp_path, monkeypatch, mode):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from certificates import TrustStore, verify_licence
    from warehouse.build import issue_pending

    layout = _library(tmp_path, 30, statuses=("01", "01", "02"))
    result = issue_pending(layout, at=AT, mode=mode, batch_size=8)
    assert (result.issued, result.reissued, result.licences_total) == (30, 0, 30)
    trust = TrustStore.from_dir(layout.trust)
    rows = query(layout.library, "SELECT l.token, l.mode, l.batch_id, c.status FROM licences l "
                                 "JOIN certificates c USING (cert_key) ORDER BY l.licence_id")
    for token, stored_mode, batch_id, status in rows:
        assert stored_mode == mode and (batch_id is not None) == (mode == "batch")
        code = verify_licence(token, trust, at=CHECK_AT).code
        assert code == ("valid" if status == "01" else "suspended")
    batches = query(layout.library, "SELECT size, root_jws FROM licence_batches ORDER BY batch_id")
    assert [b[0] for b in batches] == ([8, 8, 8, 6] if mode == "batch" else [])
    # nothing pending: a second run issues nothing and keeps the tokens
    again = issue_pending(layout, at=AT, mode=mode)
    assert (again.issued, again.reissued, again.licences_total) == (0, 0, 30)


def test_batch_is_the_default_and_a_changed_certificate_gets_a_new_version(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    monkeypatch.delenv("ONEWINDOW_LICENCE_MODE", raising=False)
    from certificates import TrustStore, verify_licence
    from warehouse.build import issue_pending
    from warehouse.load import open_library

    layout = _library(tmp_path, 3)
    issue_pending(layout, at=AT)
    con = open_library(layout)
    key = con.execute("SELECT min(cert_key) FROM certificates").fetchone()[0]
    con.execute("UPDATE certificates SET version = 2, holder_name = '杭州新味道餐饮有限公司' WHERE cert_key = ?", [key])
    con.close()
    result = issue_pending(layout, at=AT + dt.timedelta(days=1))
    assert (result.issued, result.reissued, result.licences_total) == (0, 1, 4)
    trust = TrustStore.from_dir(layout.trust)
    token, supersedes, mode = query(layout.library, "SELECT token, supersedes, mode FROM licences "
                                                    "WHERE cert_key = ? AND version = 2", [key])[0]
    assert mode == "batch"
    v = verify_licence(token, trust, at=CHECK_AT)
    assert v.code == "valid" and v.payload["supersedes"] == supersedes and v.payload["version"] == 2
    assert v.payload["holder"]["name"] == "杭州新味道餐饮有限公司"
    assert json.loads(json.dumps(v.payload))["licence_id"].rsplit(".", 2)[0] == supersedes.rsplit(".", 2)[0]


def test_parallel_issuance_gives_the_same_licences_as_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    import pyarrow.parquet as pq

    from certificates import TrustStore, verify_licence
    from certificates.issue import JobRunner, make_jobs
    from certificates.pki import Keyring

    layout = Layout(tmp_path).ensure()
    keyring = Keyring.load_or_create(layout, at=AT)
    issuer = keyring.issuer("scjg")
    rows = [make_cert_row(cert_number=f"JY1330106{i:07d}", issue_date=dt.date(2026, 3, 1),
                          valid_from=dt.date(2026, 3, 1), valid_until=None) for i in range(60)]
    table = pa.Table.from_pylist([r | {"version": 1, "prev_licence_id": None, "status_list": f"{issuer.code}-0001",
                                       "status_index": i} for i, r in enumerate(rows)])
    keys = {issuer.kid: issuer.private_key}
    import certificates.issue as issue_mod

    monkeypatch.setattr(issue_mod, "PARALLEL_MIN_ROWS", 1)
    stored = {}
    for workers in (2, 1):
        jobs = make_jobs(table, [issuer.kid] * 60, prefix="t", batch_size=16, out_dir=tmp_path / f"w{workers}",
                         job_rows=32)
        with JobRunner(keys, mode="batch", at=AT, workers=workers, rows=60) as runner:
            assert (runner.pool is not None) == (workers == 2)
            results = list(runner.submit(jobs))
        assert [r.rows for r in results] == [32, 28] and len({r.file for r in results}) == 2
        stored[workers] = pa.concat_tables([pq.read_table(tmp_path / f"w{workers}" / r.file) for r in results])
    assert stored[1].equals(stored[2])
    trust = TrustStore.from_dir(publish(keyring, layout))
    tokens = [".".join(seg) for seg in zip(*(stored[2].column(c).to_pylist()
                                             for c in ("token_header", "token_payload", "token_tail")))]
    assert all(verify_licence(t, trust, at=CHECK_AT).code == "valid" for t in tokens)


def publish(keyring, layout):
    from certificates import publish_trust

    return publish_trust(keyring, layout.trust)


def test_status_assigner_fills_each_list_in_its_seeded_order_then_opens_the_next(tmp_path):
    """Entries per issuer come from that issuer's open list, in the list's seeded order, with
    no index twice; a full list is followed by a new one (small lists here)."""
    from certificates.statuslist import index_order
    from warehouse.build import _StatusAssigner
    from warehouse.duck import connect
    from warehouse.schema import migrate

    con = connect(tmp_path / "lib.duckdb")
    migrate(con)
    assigner = _StatusAssigner(con)
    assigner.size = 5
    issuers = ["A", "B", "A", "A"] * 3 + ["B"] * 6
    first = assigner.assign(issuers[:7])
    refs = first + assigner.assign(issuers[7:])  # a second call carries on where the first stopped
    by_list: dict[str, list[int]] = {}
    for issuer, (list_id, index) in zip(issuers, refs):
        assert list_id.startswith(f"{issuer}-")
        by_list.setdefault(list_id, []).append(index)
    assert sorted(by_list) == ["A-0001", "A-0002", "B-0001", "B-0002"]
    for list_id, indexes in by_list.items():
        assert indexes == index_order(assigner.lists[list_id][1], 5)[:len(indexes)]
        assert assigner.lists[list_id][2] == len(indexes)
    assert [len(by_list[k]) for k in ("A-0001", "A-0002", "B-0001", "B-0002")] == [5, 4, 5, 4]
    con.close()
