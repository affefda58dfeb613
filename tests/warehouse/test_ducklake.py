"""The library on DuckLake: catalog in a real PostgreSQL server, data files on a real S3 server (moto).

The same pipeline steps on DuckLake give the same library as on the embedded file; two
writer processes at once (merges, quality records, licence builds) both finish, their
conflicting transactions run again, and nothing is lost or stored twice.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from exchange.departments import BASE_DATE, simulate
from tests.pipeline_helpers import data_dir, library_hash, query, run_steps
from warehouse.datadir import Layout
from warehouse.exceptions import LibraryConfigError
from warehouse.lake import LAKE_URL_ENV, Lake
from warehouse.library import CATALOG_URL_ENV, DATA_URL_ENV, Library

pytestmark = pytest.mark.postgres

SOURCES = ("gongan_population", "minzheng_marriages", "zrzy_property")  # persons first: cross-checks read them
REPO = Path(__file__).resolve().parents[2]
AT = "2026-11-02T10:00:00+08:00"
CHECK_AT = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)
# what "the same library" means across two builds: every row, licences by what they sign
COMPARED = {
    "subjects": "SELECT * FROM subjects",
    "certificates": "SELECT * FROM certificates",
    "certificate_history": "SELECT * FROM certificate_history",
    "licences": "SELECT cert_key, version, supersedes IS NULL, mode, issuer_code FROM licences",
    "quarantine": "SELECT * FROM quarantine WHERE source_id <> 'hub_licences'",
    "quality_runs": "SELECT source_id, dataset, interval, rows, passed, quarantined, flagged, per_rule, status "
                    "FROM quality_runs",
    "watermarks": "SELECT * FROM watermarks",
    "crosscheck_findings": "SELECT * FROM crosscheck_findings",
}


@pytest.fixture()
def ducklake_env(s3_lake_env, pg_dsn, monkeypatch) -> dict[str, str]:
    """The lake on S3 and the library on DuckLake: catalog in a fresh PostgreSQL database, data
    files in the lake's bucket under ``library/``."""
    bucket = s3_lake_env[LAKE_URL_ENV][len("s3://"):].partition("/")[0]
    env = {**s3_lake_env, CATALOG_URL_ENV: pg_dsn, DATA_URL_ENV: f"s3://{bucket}/library"}
    monkeypatch.setenv(CATALOG_URL_ENV, env[CATALOG_URL_ENV])
    monkeypatch.setenv(DATA_URL_ENV, env[DATA_URL_ENV])
    return env


def _simulated(root: Path) -> Layout:
    layout = Layout(root).ensure()
    simulate(layout, persons=300, seed=11, day=0)
    return layout


def _build_and_publish(layout: Layout) -> Path:
    from exchange.pipeline import build_step, publish_step
    from warehouse.snapshot import current

    with data_dir(layout):
        build_step(AT)
        publish_step(AT)
    return current(layout)


def _rows(snapshot: Path) -> dict[str, list]:
    return {name: sorted(query(snapshot, sql), key=repr) for name, sql in COMPARED.items()}


def _ducklake_hash(layout: Layout) -> str:
    from warehouse.schema import content_hash

    with Library.from_env(layout).reader() as con:
        return content_hash(con)


def _embedded(root: Path, monkeypatch) -> tuple[Layout, str, Path]:
    """The same day on the embedded library and a local lake: (layout, hash after the loads, snapshot)."""
    layout = _simulated(root)
    with monkeypatch.context() as m:
        for var in (CATALOG_URL_ENV, DATA_URL_ENV, LAKE_URL_ENV):
            m.delenv(var, raising=False)
        for s in SOURCES:
            run_steps(layout, s, BASE_DATE)
        loaded = library_hash(layout)
        return layout, loaded, _build_and_publish(layout)


def _library_objects(env: dict[str, str], layout: Layout) -> list[str]:
    lake = Lake.from_env(layout, {**env, LAKE_URL_ENV: env[DATA_URL_ENV]})
    return lake.files()


def test_settings_select_embedded_or_ducklake(tmp_path):
    layout = Layout(tmp_path / "var")
    assert not Library.from_env(layout, {}).shared
    creds = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "ONEWINDOW_S3_ENDPOINT": "http://minio:9000"}
    lib = Library.from_env(layout, {CATALOG_URL_ENV: "postgresql://cat:p%40ss'w@db.internal:6543/onewindow_catalog"
                                    "?sslmode=require", DATA_URL_ENV: "s3://onewindow-lake/library/", **creds})
    assert lib.shared and lib.data_url == "s3://onewindow-lake/library/" and lib.s3.host == "minio:9000"
    assert lib.catalog == ("host='db.internal' port='6543' dbname='onewindow_catalog' user='cat' "
                           "password='p@ss\\'w' sslmode='require'")
    assert "p@ss" not in lib.describe() and "password=***" in lib.describe()
    shared_dir = Library.from_env(layout, {CATALOG_URL_ENV: "postgresql://cat@db/c", DATA_URL_ENV: str(tmp_path)})
    assert shared_dir.data_url == str(tmp_path) + "/" and shared_dir.s3 is None


@pytest.mark.parametrize(("env", "variable", "words"), [
    ({CATALOG_URL_ENV: "postgresql://cat@db/c"}, DATA_URL_ENV, "needs the place of its data files"),
    ({CATALOG_URL_ENV: "mysql://cat@db/c", DATA_URL_ENV: "/x"}, CATALOG_URL_ENV, "postgresql://"),
    ({CATALOG_URL_ENV: "postgresql://cat@db/", DATA_URL_ENV: "/x"}, CATALOG_URL_ENV, "dbname"),
    ({CATALOG_URL_ENV: "postgresql://cat@db/c", DATA_URL_ENV: "gs://b/x"}, DATA_URL_ENV, "s3://bucket/prefix"),
    ({CATALOG_URL_ENV: "postgresql://cat@db/c", DATA_URL_ENV: "s3://B_/x"}, DATA_URL_ENV, "bucket name"),
])
def test_bad_library_settings_name_the_variable(tmp_path, env, variable, words):
    with pytest.raises(LibraryConfigError) as err:
        Library.from_env(Layout(tmp_path), env)
    assert err.value.variable == variable and words in str(err.value)
    assert "@" not in str(err.value).partition(":")[2] or "<hidden>" in str(err.value)


def test_pipeline_on_ducklake_matches_the_embedded_library(tmp_path, ducklake_env, monkeypatch):
    from certificates import TrustStore, verify_licence

    local, local_loaded, local_snapshot = _embedded(tmp_path / "embedded", monkeypatch)
    layout = _simulated(tmp_path / "ducklake")
    runs = {s: run_steps(layout, s, BASE_DATE) for s in SOURCES}
    assert all(r["loaded"]["certificates_new"] > 0 for r in runs.values())
    assert _ducklake_hash(layout) == local_loaded  # every library table, row for row

    snapshot = _build_and_publish(layout)
    assert _rows(snapshot) == _rows(local_snapshot)
    # the library lives in the catalog and the bucket: nothing of it in the data directory but the snapshot
    assert not layout.library.exists() and not list(layout.warehouse.glob("licences/*"))
    objects = _library_objects(ducklake_env, layout)
    assert objects and all(o.endswith(".parquet") for o in objects), objects
    # the snapshot's licences are rows (no links to licence files) and verify with the published trust
    assert query(snapshot, "SELECT count(*) FROM licence_files") == [(0,)]
    trust = TrustStore.from_dir(layout.trust)
    rows = query(snapshot, "SELECT l.token, c.status FROM licences l JOIN certificates c "
                           "ON c.cert_key = l.cert_key AND c.version = l.version")
    assert len(rows) == query(snapshot, "SELECT count(*) FROM certificates")[0][0]
    assert {verify_licence(t, trust, at=CHECK_AT).code for t, status in rows if status == "01"} == {"valid"}

    # a re-run of a loaded interval changes nothing; a second build issues nothing
    before = _ducklake_hash(layout)
    again = run_steps(layout, "gongan_population", BASE_DATE)["loaded"]
    assert (again["certificates_new"], again["certificates_changed"]) == (0, 0)
    assert _ducklake_hash(layout) == before
    from warehouse.build import issue_pending

    assert issue_pending(layout, at=dt.datetime.fromisoformat(AT)).issued == 0


def _writers(layout: Layout, env: dict[str, str], *jobs: list[str]) -> list[dict]:
    """Start one writer process per job, released together by a barrier; wait for all; their JSON reports."""
    barrier = Path(tempfile.mkdtemp(prefix="barrier-", dir=layout.root))
    child_env = {**os.environ, **env, "ONEWINDOW_DATA_DIR": str(layout.root), "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.warehouse.ducklake_writer", str(barrier), str(len(jobs)),
                               *job],
                              env=child_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for job in jobs]
    reports = []
    for job, proc in zip(jobs, procs):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"writer {job} failed ({proc.returncode}):\n{err[-4000:]}"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def test_two_writer_processes_at_once_conflict_retry_and_lose_nothing(tmp_path, ducklake_env):
    layout = _simulated(tmp_path / "ducklake")
    n = 40
    reports = _writers(layout, ducklake_env, ["runs", "a", str(n)], ["runs", "b", str(n)])
    # 50 write transactions of the merge lane, from two processes at the same time: some conflicted
    assert sum(r["retried"] for r in reports) > 0, reports
    with Library.from_env(layout).reader() as con:
        got = con.execute("SELECT source_id, interval, run_id FROM quality_runs ORDER BY 1, 2").fetchall()
        lanes = con.execute("SELECT generation FROM library_lane_merge").fetchall()
    assert got == [(f"probe_{p}", f"{k:04d}", f"{p}-{k}") for p in "ab" for k in range(n)]
    assert lanes == [(2 * n,)]  # one bump per committed transaction, none from a rolled-back attempt


def test_concurrent_loads_and_builds_give_the_library_of_one_writer(tmp_path, ducklake_env, monkeypatch):
    """Two processes load different sources at once (their cross-checks read each other's rows:
    the merge lane orders them), then two processes build at once (the issue lane: every
    certificate gets one licence, every status-list entry is handed out once)."""
    local, local_loaded, local_snapshot = _embedded(tmp_path / "embedded", monkeypatch)
    layout = _simulated(tmp_path / "ducklake")
    _writers(layout, ducklake_env, ["load", SOURCES[0]], ["load", *SOURCES[1:]])
    assert _ducklake_hash(layout) == local_loaded
    with Library.from_env(layout).reader() as con:
        findings = sorted(con.execute("SELECT * FROM crosscheck_findings").fetchall(), key=repr)
    assert findings == sorted(query(local.library, "SELECT * FROM crosscheck_findings"), key=repr)
    assert findings  # the simulated departments disagree somewhere

    builds = _writers(layout, ducklake_env, ["build"], ["build"])
    with Library.from_env(layout).reader() as con:
        certificates = con.execute("SELECT count(*) FROM certificates").fetchone()[0]
        assert sum(b["issued"] for b in builds) == certificates, builds
        assert con.execute("SELECT count(*), count(DISTINCT (cert_key, version)), count(DISTINCT licence_id), "
                           "count(DISTINCT (status_list, status_index)) FROM licences").fetchone() == (
            certificates,) * 4
        used = dict(con.execute("SELECT list_id, used FROM status_lists").fetchall())
        per_list = dict(con.execute("SELECT status_list, count(*) FROM licences GROUP BY 1").fetchall())
    assert used == per_list
    assert sum(b["retried"] for b in builds) > 0 or 0 in [b["issued"] for b in builds], builds
