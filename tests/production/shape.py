"""The production shape of docker/compose.yaml, started natively on loopback.

PostgreSQL (Airflow metadata DB, the service store's and the library catalog's
databases, the 公安 registry), Redis (Celery broker), an S3-compatible server (moto)
holding the lake, Airflow 3 with the CeleryExecutor (api-server, scheduler,
dag-processor, triggerer, two Celery workers), the simulated 市场监管 REST API and two
replicas of the hub service, every one a real process with its own log.

The service store runs on PostgreSQL here (``ONEWINDOW_STORE_URL`` in :data:`BACKEND_ENV`),
so both replicas and every admin and audit command write one store, and the library on
DuckLake (``ONEWINDOW_LIBRARY_CATALOG_URL``: the ``onewindow_catalog`` database;
``ONEWINDOW_LIBRARY_DATA_URL``: ``s3://onewindow-lake/library`` beside the lake's ``hub/``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.pgserver import PostgresServer, start_postgres
from tests.production.airflow_api import AirflowAPI
from tests.production.cluster import Processes, ShapeError, port_open, ports, wait_until
from tests.s3server import S3Server, start_s3
from warehouse.datadir import Layout

BIN = Path(sys.executable).parent
ONEWINDOW, AIRFLOW = str(BIN / "onewindow"), str(BIN / "airflow")
REPO = Path(__file__).resolve().parents[2]

DATABASES = ("airflow", "onewindow_store", "onewindow_catalog", "gongan")
LAKE_URL = "s3://onewindow-lake/hub"
# Settings of the service store and library backends, added to every hub and Airflow process.
# The service store on PostgreSQL; the library on DuckLake (catalog in PostgreSQL, data files
# in the lake's bucket), so the workers write it without a file lock.
# Placeholders: {pg} = postgresql://postgres@127.0.0.1:<port>, {lake} = LAKE_URL.
BACKEND_ENV: dict[str, str] = {"ONEWINDOW_STORE_URL": "{pg}/onewindow_store",
                               "ONEWINDOW_LIBRARY_CATALOG_URL": "{pg}/onewindow_catalog",
                               "ONEWINDOW_LIBRARY_DATA_URL": "s3://onewindow-lake/library"}
# Cron schedules are off in this test (its simulated days lie in November 2026, the clock
# does not): a leap-day cron's first interval after the DAGs' start date closes on
# 2032-02-29, so only the runs the test triggers, with explicit data intervals, exist.
NO_SCHEDULE = "0 0 29 2 *"
WORKERS = ("worker-1", "worker-2")
REPLICAS = ("hub-1", "hub-2")
AIRFLOW_ROLES = ("api-server", "scheduler", "dag-processor", "triggerer")
PAUSE_POINT = "merge_mid_transaction"


@dataclass
class Shape:
    root: Path
    layout: Layout
    procs: Processes
    pg: PostgresServer
    s3: S3Server
    hub_env: dict[str, str]
    airflow_env: dict[str, str]
    api: AirflowAPI
    replica_ports: dict[str, int] = field(default_factory=dict)
    pause_file: Path = Path()

    def events_file(self, worker: str) -> Path:
        return self.root / f"events-{worker}.jsonl"

    def replica_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.replica_ports[name]}"

    def start_replica(self, name: str) -> None:
        self.procs.start(name, [ONEWINDOW, "serve", "--host", "127.0.0.1", "--port", str(self.replica_ports[name])],
                         self.hub_env)

    def onewindow(self, name: str, *args: str, timeout: float = 120) -> str:
        return self.procs.run(name, [ONEWINDOW, *args], self.hub_env, timeout=timeout)

    def report(self) -> str:
        return self.procs.report() + f"\n===== moto ({self.s3.log}) =====\n" + "\n".join(
            self.s3.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        self.api.close()
        self.procs.kill_all()
        self.s3.stop()
        self.pg.stop()


def _registry_without_schedules(dest: Path) -> Path:
    text = (REPO / "exchange" / "sources" / "registry.toml").read_text(encoding="utf-8")
    dest.write_text(re.sub(r'^schedule = ".*"$', f'schedule = "{NO_SCHEDULE}"', text, flags=re.M), encoding="utf-8")
    return dest


def _clean_environ() -> dict[str, str]:
    """The test process's environment without any hub, Airflow or AWS setting of its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ONEWINDOW_", "AIRFLOW", "AWS_"))}


def hub_environment(root: Path, layout: Layout, pg: PostgresServer, s3: S3Server, scjg_port: int) -> dict[str, str]:
    pg_base = pg.dsn("").rstrip("/")
    env = _clean_environ()
    env.update({
        "ONEWINDOW_DATA_DIR": str(layout.root),
        "ONEWINDOW_ENV": "production",
        "ONEWINDOW_KEY_PASSPHRASE": secrets.token_urlsafe(24),
        "ONEWINDOW_WEB_SECRET": secrets.token_urlsafe(32),
        "ONEWINDOW_SOURCES": str(_registry_without_schedules(root / "registry.toml")),
        "AIRFLOW_CONN_GONGAN_POPULATION_DB": pg.dsn("gongan"),
        "AIRFLOW_CONN_SCJG_API": f"http://127.0.0.1:{scjg_port}",
        "PYTHONPATH": str(REPO),
        **s3.lake_env(LAKE_URL),
    })
    env.update({k: v.format(pg=pg_base, lake=LAKE_URL) for k, v in BACKEND_ENV.items()})
    return env


def airflow_environment(hub_env: dict[str, str], layout: Layout, pg: PostgresServer, redis_port: int,
                        api_port: int, trigger_log_port: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    from exchange.orchestrate import airflow_env

    # psycopg 3 for both of Airflow's engines: its derived async URL would need asyncpg, which is not installed
    db = pg.dsn("airflow").replace("postgresql://", "postgresql+psycopg://")
    env = airflow_env(layout, base={**hub_env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db})
    env.update({
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": db,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # a message whose worker died is redelivered after this; Airflow has long retried the task by then
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # a task whose worker died is failed (and retried) 30 s after its last heartbeat
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_log_port),
    })
    return env


def start_shape(root: Path) -> Shape:
    """Start every process of the production shape; on any failure everything started is stopped."""
    layout = Layout(root / "var").ensure()
    procs = Processes(root)
    pg = start_postgres()
    s3 = None
    try:
        for name in DATABASES:
            pg.create_database(name)
        s3 = start_s3(root)
        redis_port, api_port, scjg_port, trigger_log, *rest = ports(4 + len(WORKERS) + len(REPLICAS))
        worker_log_ports, replica_ports = rest[:len(WORKERS)], rest[len(WORKERS):]
        (root / "redis").mkdir()
        procs.start("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(root / "redis")], _clean_environ())
        hub_env = hub_environment(root, layout, pg, s3, scjg_port)
        af_env = airflow_environment(hub_env, layout, pg, redis_port, api_port, trigger_log)
        api = AirflowAPI(f"http://127.0.0.1:{api_port}",
                         Path(af_env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated")
        shape = Shape(root, layout, procs, pg, s3, hub_env, af_env, api,
                      replica_ports=dict(zip(REPLICAS, replica_ports)), pause_file=root / "paused")
        _prepare_data(shape)
        procs.start("departments-api", [ONEWINDOW, "departments", "serve-api", "--port", str(scjg_port)], hub_env)
        procs.run("airflow-db-migrate", [AIRFLOW, "db", "migrate"], af_env, timeout=600)
        for role in AIRFLOW_ROLES:
            procs.start(role, [AIRFLOW, *role.split()], af_env)
        for worker, log_port in zip(WORKERS, worker_log_ports):
            procs.start(worker, [AIRFLOW, "celery", "worker", "--concurrency", "2", "--celery-hostname",
                                 f"{worker}@onewindow"], {
                **af_env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
                "ONEWINDOW_EVENTS": str(shape.events_file(worker)),
                "ONEWINDOW_FAULT_PAUSE": PAUSE_POINT, "ONEWINDOW_FAULT_PAUSE_FILE": str(shape.pause_file)})
        for name in REPLICAS:
            shape.start_replica(name)
        _await_ready(shape)
        return shape
    except BaseException:
        report = procs.report()
        procs.kill_all()
        if s3 is not None:
            s3.stop()
        pg.stop()
        raise ShapeError(f"the production shape did not start:\n{report}") from None


def _prepare_data(shape: Shape) -> None:
    """The lake's bucket, the simulated department systems (公安 in PostgreSQL) and the auditor key."""
    shape.onewindow("lake-init", "lake", "init")
    shape.onewindow("simulate", "departments", "simulate", "--persons", "300", "--seed", "11",
                    "--pg-dsn", shape.pg.dsn("gongan"), timeout=300)
    shape.onewindow("auditor-key", "audit", "auditor-key", "--private", str(shape.root / "auditor.key.pem"))
    shutil.copytree(shape.layout.departments, shape.root / "departments-at-start")


def _await_ready(shape: Shape) -> None:
    everyone = ("redis", "departments-api", *AIRFLOW_ROLES, *WORKERS, *REPLICAS)
    wait = dict(processes=shape.procs, alive=everyone)
    wait_until("the Airflow api-server's simple auth password file", shape.api.passwords_file.exists,
               timeout=240, **wait)
    wait_until("the api-server to sign in", lambda: shape.api.login() or True, timeout=120, every=2, **wait)

    def healthy() -> bool:
        h = shape.api.health()
        return all(h.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler", "triggerer",
                                                                           "dag_processor"))

    wait_until("metadatabase, scheduler, triggerer and dag-processor healthy", healthy, timeout=240, every=2, **wait)
    expected = {f"ingest_{s}" for s in _source_ids(shape)} | {"library_build"}
    wait_until("every DAG parsed", lambda: shape.api.import_errors() == [] and expected <= shape.api.dag_ids(),
               timeout=300, every=3, **wait)
    if shape.api.import_errors():
        raise ShapeError(f"DAG import errors: {shape.api.import_errors()}")
    wait_until("both hub replicas listening", lambda: all(port_open(p) for p in shape.replica_ports.values()),
               timeout=120, **wait)


def _source_ids(shape: Shape) -> list[str]:
    from exchange.sources.registry import load_sources

    return [s.id for s in load_sources(Path(shape.hub_env["ONEWINDOW_SOURCES"]))]
