"""Run the hub's DAGs through Airflow for the embedded default.

The parent (CLI) starts one child process per batch of DAG runs with Airflow's
environment pointing at the data directory; the child runs each DAG with
``dag.test()`` against a local SQLite metadata DB and reports progress as JSON
lines in an events file, while Airflow's own logs go to a log file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from warehouse.datadir import ENV_VAR, Layout

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "dags"
CST = dt.timezone(dt.timedelta(hours=8))
EVENTS_ENV = "ONEWINDOW_EVENTS"


def emit_event(**fields: object) -> None:
    """Append a progress event for the CLI's display, when a run asked for them."""
    path = os.environ.get(EVENTS_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(fields, default=str, ensure_ascii=False) + "\n")


class DagRunFailed(RuntimeError):
    """A DAG run did not succeed; the message names the task and points at the log."""

    def __init__(self, dag_id: str, state: str, failed_tasks: list[str], log_path: Path, detail: str = "") -> None:
        self.dag_id, self.state, self.failed_tasks, self.log_path = dag_id, state, failed_tasks, log_path
        super().__init__(f"DAG {dag_id} ended {state}; failed tasks: {', '.join(failed_tasks) or '-'}. "
                         f"{detail} See the Airflow log: {log_path}")


def airflow_env(layout: Layout, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Airflow processes on this data directory (embedded default)."""
    env = dict(os.environ if base is None else base)
    home = layout.airflow_home
    env.update({
        ENV_VAR: str(layout.root),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
        # Airflow starts its components as `airflow …` subprocesses: the venv's bin must be on PATH
        "PATH": os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p),
    })
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}")
    return env


def ensure_metadata_db(layout: Layout) -> None:
    """``airflow db migrate`` once per data directory (a few seconds)."""
    stamp = layout.airflow_home / ".migrated"
    if stamp.exists():
        return
    layout.airflow_home.mkdir(parents=True, exist_ok=True)
    log = layout.airflow_home / "migrate.log"
    with open(log, "w") as fh:
        res = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=airflow_env(layout),
                             stdout=fh, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed (exit {res.returncode}); see {log}")
    stamp.write_text("ok\n")


@dataclass(frozen=True)
class DagRequest:
    dag_id: str
    logical_date: str  # ISO, timezone-aware


def run_dags(layout: Layout, requests: list[DagRequest], *,
             on_event: Callable[[dict], None] | None = None) -> list[dict]:
    """Run DAGs in order in one child process; stop at the first failure (raises DagRunFailed)."""
    ensure_metadata_db(layout)
    run_dir = layout.airflow_home / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
    events_path = run_dir / f"events-{stamp}.jsonl"
    log_path = run_dir / f"airflow-{stamp}.log"
    req_path = run_dir / f"request-{stamp}.json"
    req_path.write_text(json.dumps([r.__dict__ for r in requests]))
    events_path.touch()
    with open(log_path, "w") as log:
        env = airflow_env(layout)
        env[EVENTS_ENV] = str(events_path)
        proc = subprocess.Popen([sys.executable, "-m", "exchange.orchestrate", str(req_path), str(events_path)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        results: list[dict] = []
        for event in _follow(events_path, proc):
            if on_event:
                on_event(event)
            if event["event"] == "dag_end":
                results.append(event)
                if event["state"] != "success":
                    proc.wait()
                    raise DagRunFailed(event["dag_id"], event["state"], event.get("failed_tasks", []), log_path,
                                       event.get("error", ""))
        rc = proc.wait()
    if rc != 0 or len(results) != len(requests):
        raise DagRunFailed(requests[len(results)].dag_id if len(results) < len(requests) else "?",
                           f"exit code {rc}", [], log_path)
    return results


def _follow(path: Path, proc: subprocess.Popen) -> Iterator[dict]:
    with open(path) as fh:
        buf = ""
        while True:
            chunk = fh.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
            elif proc.poll() is not None:
                rest = fh.read()
                for line in (buf + rest).split("\n"):
                    if line.strip():
                        yield json.loads(line)
                return
            else:
                time.sleep(0.1)


def _child(req_path: str, events_path: str) -> int:
    """Child process: runs the DAGs with dag.test() and writes events."""
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    requests = json.loads(Path(req_path).read_text())
    emit = emit_event

    bag = DagBag(str(DAGS_FOLDER))
    if bag.import_errors:
        emit(event="dag_end", dag_id="(parse)", state="import_error", error=json.dumps(bag.import_errors))
        return 1
    for req in requests:
        dag = bag.get_dag(req["dag_id"])
        if dag is None:
            emit(event="dag_end", dag_id=req["dag_id"], state="unknown_dag", error="no such DAG in dags/")
            return 1
        emit(event="dag_start", dag_id=req["dag_id"], logical_date=req["logical_date"])
        started = time.monotonic()
        dr = dag.test(logical_date=pendulum.parse(req["logical_date"]))
        tis = {ti.task_id: ti for ti in dr.get_task_instances()}
        failed = [t for t, ti in tis.items() if str(ti.state) not in ("success", "TaskInstanceState.SUCCESS")]
        state = str(getattr(dr.state, "value", dr.state))
        emit(event="dag_end", dag_id=req["dag_id"], state=state, failed_tasks=failed,
             seconds=round(time.monotonic() - started, 2),
             data_interval=[str(dr.data_interval_start), str(dr.data_interval_end)])
        if state != "success":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2]))
