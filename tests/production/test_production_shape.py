"""The production shape, run for real on loopback (docs/production.md).

PostgreSQL, Redis, an S3 server (moto) for the lake, Airflow 3 with the CeleryExecutor
(api-server, scheduler, dag-processor, triggerer, two workers) and two hub replicas,
all real processes. The test triggers every ingest DAG for simulated day 0 through
Airflow's REST API; the first load to reach the middle of its library transaction is
held there and its Celery worker is killed (SIGKILL, the whole process tree, as when
its machine dies). Airflow fails the task on its missing heartbeat and retries it on
the other worker; the asset-triggered library build publishes; both replicas serve the
result. The library must equal a clean run's, and killing one replica under load must
leave the other answering every request.
"""

from __future__ import annotations

import collections
import datetime as dt
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.pipeline_helpers import data_dir, query, run_steps
from tests.production.airflow_api import TERMINAL
from tests.production.cluster import ShapeError, read_events, wait_until
from tests.production.shape import AIRFLOW_ROLES, REPLICAS, WORKERS, Shape, _source_ids, start_shape
from warehouse.datadir import Layout

pytestmark = [pytest.mark.production, pytest.mark.slow]

DAY_START, DAY_END = "2026-11-01T00:00:00+08:00", "2026-11-02T00:00:00+08:00"
WATERMARK = "2026-11-02 00:00:00"
CST = dt.timezone(dt.timedelta(hours=8))
_SHAPE: Shape | None = None  # read by conftest.py to print every log when a test fails


@pytest.fixture(scope="module")
def shape(tmp_path_factory):
    global _SHAPE
    started = start_shape(tmp_path_factory.mktemp("production"))
    _SHAPE = started
    try:
        yield started
    finally:
        started.stop()
        _SHAPE = None


@dataclass(frozen=True)
class PipelineRun:
    run_ids: dict[str, str]  # ingest DAG id -> run id
    victim: str  # the worker that was killed
    paused_pid: int  # the task process held at the pause point
    survivors: tuple[str, ...]
    seconds: float


@pytest.fixture(scope="module")
def pipeline(shape) -> PipelineRun:
    try:
        return _run_day0(shape)
    except ShapeError as exc:
        raise ShapeError(f"{exc}\n{shape.report()}") from None


def _run_day0(shape: Shape) -> PipelineRun:
    api, procs = shape.api, shape.procs
    started = time.monotonic()
    sources = _source_ids(shape)
    dags = [f"ingest_{s}" for s in sources]
    for dag_id in [*dags, "library_build"]:
        api.unpause(dag_id)
    run_ids = {d: api.trigger(d, run_id=f"day0__{d}", start=DAY_START, end=DAY_END)["dag_run_id"] for d in dags}
    everyone = ("redis", "departments-api", *AIRFLOW_ROLES, *WORKERS, *REPLICAS)

    wait_until("a load task held in the middle of its library transaction", shape.pause_file.exists, timeout=480,
               every=0.5, processes=procs, alive=everyone)
    paused_pid = int(shape.pause_file.read_text())
    victim = next((w for w in WORKERS if any(p.pid == paused_pid for p in procs.procs[w].tree())), None)
    if victim is None:
        raise ShapeError(f"the held task process {paused_pid} belongs to no Celery worker")
    procs.procs[victim].kill()
    survivors = tuple(w for w in WORKERS if w != victim)
    alive = tuple(n for n in everyone if n != victim)

    def ingests_done() -> bool:
        states = {d: api.run(d, r)["state"] for d, r in run_ids.items()}
        failed = [d for d, s in states.items() if s == "failed"]
        if failed:
            raise ShapeError(f"ingest runs failed: {failed}")
        return all(s == "success" for s in states.values())

    wait_until("every ingest run to succeed", ingests_done, timeout=720, every=3, processes=procs, alive=alive)

    def build_settled() -> bool:
        from warehouse.snapshot import current

        runs = api.runs("library_build")
        if any(r["state"] == "failed" for r in runs):
            raise ShapeError(f"a library_build run failed: {[r['dag_run_id'] for r in runs if r['state'] == 'failed']}")
        if not runs or any(r["state"] not in TERMINAL for r in runs) or api.queued_asset_events("library_build"):
            return False
        snap = current(shape.layout)
        marks = dict(query(snap, "SELECT source_id, cursor FROM watermarks")) if snap else {}
        return all(marks.get(s) == WATERMARK for s in sources)

    wait_until("the asset-triggered library build to publish every source", build_settled, timeout=420, every=3,
               processes=procs, alive=alive)
    return PipelineRun(run_ids, victim, paused_pid, survivors, time.monotonic() - started)


@pytest.fixture(scope="module")
def reference(shape, pipeline, tmp_path_factory) -> Path:
    """A clean run of the same day on the same department systems: pipeline steps in-process, local lake, no faults."""
    from exchange.departments import BASE_DATE
    from exchange.pipeline import build_step, publish_step
    from warehouse.snapshot import current

    layout = Layout(tmp_path_factory.mktemp("reference") / "var").ensure()
    shutil.copytree(shape.root / "departments-at-start", layout.departments, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as m:
        for var in ("AIRFLOW_CONN_GONGAN_POPULATION_DB", "AIRFLOW_CONN_SCJG_API", "ONEWINDOW_SOURCES"):
            m.setenv(var, shape.hub_env[var])
        for source_id in _source_ids(shape):
            run_steps(layout, source_id, BASE_DATE)
        at = dt.datetime.now(CST).isoformat()
        with data_dir(layout):
            build_step(at)
            publish_step(at)
    return current(layout)


def _published(shape: Shape) -> Path:
    from warehouse.snapshot import current

    return current(shape.layout)


# what "the same library" means: every row of the tables below; licences by the certificate
# and version they sign (identifiers, signatures and times differ between any two builds)
COMPARED = {
    "subjects": "SELECT * FROM subjects",
    "certificates": "SELECT * FROM certificates",
    "certificate_history": "SELECT * FROM certificate_history",
    "licences": "SELECT cert_key, version FROM licences",
    "quarantine": "SELECT * FROM quarantine WHERE source_id <> 'hub_licences'",
    "quarantined licences": """SELECT "row"->>'cert_key', "row"->>'version' FROM quarantine
                               WHERE source_id = 'hub_licences' AND resolved_interval IS NULL""",
    "quality_runs": """SELECT source_id, dataset, interval, rows, passed, quarantined, flagged, per_rule, gx_success,
                              status FROM quality_runs WHERE source_id <> 'hub_licences'""",
    "watermarks": "SELECT * FROM watermarks",
    "crosscheck_findings": "SELECT * FROM crosscheck_findings",
}


def _rows(snapshot: Path, sql: str) -> list[tuple]:
    return sorted(query(snapshot, sql), key=repr)


def test_every_ingest_and_the_library_build_ran_on_the_celery_workers(shape, pipeline):
    api = shape.api
    for dag_id, run_id in pipeline.run_ids.items():
        run = api.run(dag_id, run_id)
        assert run["state"] == "success", run
        assert [dt.datetime.fromisoformat(run[k]) for k in ("data_interval_start", "data_interval_end")] == [
            dt.datetime.fromisoformat(DAY_START), dt.datetime.fromisoformat(DAY_END)], run
        assert {ti["task_id"]: ti["state"] for ti in api.task_instances(dag_id, run_id)} == {
            "extract": "success", "validate": "success", "load": "success"}
    builds = api.runs("library_build")
    assert builds and all(r["state"] == "success" and r["run_type"] == "asset_triggered" for r in builds), builds
    # every step ran in a Celery worker's task process (each worker writes its own events file);
    # each source's load reported exactly once: the killed attempt never finished
    events = [e for w in WORKERS for e in read_events(shape.events_file(w)) if e.get("event") == "step"]
    loads = collections.Counter(e["source_id"] for e in events if e["step"] == "load")
    assert loads == {s: 1 for s in _source_ids(shape)}, loads
    assert {e["step"] for e in events} >= {"extract", "validate", "load", "issue", "check_licences", "publish"}


def test_a_task_on_a_killed_worker_is_retried_on_the_other_worker(shape, pipeline):
    api = shape.api
    assert not shape.procs.procs[pipeline.victim].alive()
    held = [(dag_id, run_id) for dag_id, run_id in pipeline.run_ids.items()
            if api.tries(dag_id, run_id, "load")[0]["pid"] == pipeline.paused_pid]
    assert len(held) == 1, f"no load task ran as the held process {pipeline.paused_pid}"
    dag_id, run_id = held[0]
    tries = api.tries(dag_id, run_id, "load")
    assert [t["try_number"] for t in tries] == [1, 2], tries
    assert tries[0]["state"] != "success" and tries[1]["state"] == "success", tries
    source_id = dag_id.removeprefix("ingest_")
    retried_on = [w for w in WORKERS if any(e.get("step") == "load" and e.get("source_id") == source_id
                                            for e in read_events(shape.events_file(w)))]
    assert retried_on == list(pipeline.survivors)


def test_the_library_equals_a_clean_run(shape, pipeline, reference):
    published = _published(shape)
    for name, sql in COMPARED.items():
        got, want = _rows(published, sql), _rows(reference, sql)
        missing, extra = [r for r in want if r not in got], [r for r in got if r not in want]
        assert got == want, f"{name}: {len(got)} rows vs {len(want)} in the clean run; " \
                            f"missing {missing[:3]}, extra {extra[:3]}"
    assert query(published, "SELECT count(*) FROM certificates")[0][0] > 300
    assert query(published, "SELECT count(*) - count(DISTINCT (cert_key, version)) FROM licences") == [(0,)]
    assert query(published, """SELECT count(*) FROM certificates c LEFT JOIN licences l
                               ON l.cert_key = c.cert_key AND l.version = c.version
                               WHERE l.licence_id IS NULL""") == [(0,)]


def test_the_library_is_on_ducklake(shape, pipeline):
    """The workers wrote one DuckLake (catalog in onewindow_catalog, data files on S3), no library file."""
    from warehouse.lake import LAKE_URL_ENV, Lake
    from warehouse.library import DATA_URL_ENV, Library

    library = Library.from_env(shape.layout, shape.hub_env)
    assert library.shared and library.data_url == shape.hub_env[DATA_URL_ENV] + "/"
    assert not shape.layout.library.exists() and not list(shape.layout.warehouse.glob("licences/*"))
    data = Lake.from_env(shape.layout, {**shape.hub_env, LAKE_URL_ENV: shape.hub_env[DATA_URL_ENV]}).files()
    assert data and all(f.endswith(".parquet") for f in data), data
    with psycopg.connect(shape.pg.dsn("onewindow_catalog")) as pg:
        tables = {r[0] for r in pg.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        committed = pg.execute("SELECT count(*) FROM ducklake_snapshot").fetchone()[0]
    assert {"ducklake_snapshot", "ducklake_table", "ducklake_data_file"} <= tables and committed > 1
    with library.reader() as con:  # what the service serves is what the DuckLake holds
        lib = con.execute("SELECT count(*) FROM certificates").fetchone()[0]
    assert query(_published(shape), "SELECT count(*) FROM certificates") == [(lib,)]


def test_the_lake_is_on_s3_one_object_per_partition(shape, pipeline):
    from exchange.sources.interval import Interval
    from warehouse.lake import Lake

    lake = Lake.from_env(shape.layout, shape.hub_env)
    assert lake.remote
    key = Interval.for_day(dt.date(2026, 11, 1)).key
    sources = _source_ids(shape)
    assert lake.files("raw") == sorted(lake.raw(s, key) for s in sources)
    assert lake.files("quarantine") == sorted(lake.quarantine(s, key) for s in sources)
    checked = set(lake.files("checked"))
    for s in sources:
        assert {f"{lake.checked(s, key)}/{n}" for n in ("passed.parquet", "quarantine.parquet", "validation.json")} \
            <= checked
    assert not [f for f in lake.files() if f.rsplit("/", 1)[1].startswith(".")], "temporary objects left"
    assert not list(shape.layout.lake.rglob("*.parquet")), "lake files on the workers' disk"


@dataclass(frozen=True)
class Grant:
    licence_id: str
    holder: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def grant(shape, pipeline) -> Grant:
    """A department client granted 居民身份证 reads, and an accepted application for one holder."""
    licence_id, holder = query(_published(shape), """
        SELECT l.licence_id, c.holder_code FROM licences l
        JOIN certificates c ON c.cert_key = l.cert_key AND c.version = l.version
        WHERE c.licence_type_name = '居民身份证' AND c.status = '01' ORDER BY l.licence_id LIMIT 1""")[0]
    department = "11330100002496476R"
    shape.onewindow("admin-department", "admin", "add-department", department, "杭州市民政局")
    out = shape.onewindow("admin-client", "admin", "add-client", "mz-counter", "--department", department, "--counter")
    key = out.strip().splitlines()[-1].strip()
    assert key.startswith("ow_"), out
    shape.onewindow("admin-grant", "admin", "grant", department, "id_card")
    shape.onewindow("admin-accept", "admin", "accept", "HZ-2026-0001", "--item-code", "000173010000",
                    "--holder", holder, "--clerk", "c-7")
    return Grant(licence_id, holder, {"X-API-Key": key, "X-Purpose-Item": "000173010000",
                                      "X-Case-Number": "HZ-2026-0001", "X-Clerk-Id": "c-7"})


def test_both_replicas_serve_the_published_snapshot_a_licence_and_its_verification(shape, pipeline, grant):
    snapshot_id = query(_published(shape), "SELECT snapshot_id FROM snapshot_meta")[0][0]
    for name in REPLICAS:
        with httpx.Client(base_url=shape.replica_url(name), timeout=30) as client:
            health = wait_until(f"{name} to serve snapshot {snapshot_id}",
                                lambda: (h := client.get("/healthz")).status_code == 200
                                and h.json()["snapshot_id"] == snapshot_id and h.json(), timeout=60)
            assert health["counts"]
            resp = client.get(f"/api/v1/licences/{grant.licence_id}", headers=grant.headers)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["holder_code"] == grant.holder and body["use_copy"]
            for token in (body["token"], f"{body['use_copy']['token']}~{body['token']}"):
                verdict = client.post("/api/v1/verify", json={"token": token}).json()
                assert verdict["outcome"] == "valid" and verdict["valid"], verdict
            denied = client.get(f"/api/v1/licences/{grant.licence_id}",
                                headers={**grant.headers, "X-API-Key": "ow_not-a-key"})
            assert denied.status_code == 401


def test_killing_one_replica_under_load_leaves_the_other_answering(shape, pipeline, grant):
    url = f"/api/v1/licences/{grant.licence_id}"
    results: dict[str, list[tuple[float, float, object]]] = {name: [] for name in REPLICAS}
    stop = threading.Event()

    def hammer(name: str) -> None:
        with httpx.Client(base_url=shape.replica_url(name), headers=grant.headers, timeout=10) as client:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    outcome: object = client.get(url).status_code
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                results[name].append((began, time.monotonic(), outcome))

    threads = [threading.Thread(target=hammer, args=(name,)) for name in REPLICAS for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    victim, other = REPLICAS
    killed_at = time.monotonic()
    shape.procs.procs[victim].kill()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    served = results[other]
    outcomes = collections.Counter(o for _, _, o in served)
    assert outcomes and set(outcomes) == {200}, outcomes  # zero errors on the surviving replica
    assert sum(1 for began, _, _ in served if began > killed_at) >= 20
    before = [o for _, ended, o in results[victim] if ended < killed_at]
    after = [o for began, _, o in results[victim] if began > killed_at + 0.5]
    assert before and set(before) == {200}
    assert after and 200 not in after  # the replica really died
    # the usage log both replicas wrote into the one PostgreSQL store, one of them killed
    # mid-stream, is still one intact chain
    out = shape.onewindow("verify-log", "audit", "verify-log", "--store")  # exit 0, or ShapeError with its log
    assert "usage log intact" in out, out
    checked = int(out.split("unsealed records in the store checked:")[1].split()[0])
    answered = sum(1 for name in REPLICAS for *_, outcome in results[name] if outcome == 200)
    assert checked >= answered  # every answered read was committed to the log first
    assert not (shape.layout.service / "service.sqlite").exists()  # no replica fell back to a file of its own
    with psycopg.connect(shape.hub_env["ONEWINDOW_STORE_URL"]) as con:
        clients = dict(con.execute("SELECT application_name, count(*) FROM pg_stat_activity "
                                   "WHERE datname = 'onewindow_store' GROUP BY 1").fetchall())
        assert con.execute("SELECT count(*) FROM usage_log").fetchone()[0] >= checked
    assert clients.get("onewindow-store", 0) >= 2  # the surviving replica's connections (store, log writer)
    # and the killed replica comes back on the same snapshot
    shape.start_replica(victim)
    snapshot_id = query(_published(shape), "SELECT snapshot_id FROM snapshot_meta")[0][0]
    wait_until(f"{victim} back on snapshot {snapshot_id}",
               lambda: httpx.get(f"{shape.replica_url(victim)}/healthz", timeout=5).json()["snapshot_id"] == snapshot_id,
               timeout=120, processes=shape.procs, alive=(victim,))
