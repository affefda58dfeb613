"""Every DAG file imports cleanly and every DAG carries docs, tags, retries and a timezone-aware start."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from exchange.orchestrate import airflow_env, ensure_metadata_db
from exchange.sources.registry import load_sources

_PROBE = r"""
import json
from airflow.dag_processing.dagbag import DagBag
from exchange.orchestrate import DAGS_FOLDER
bag = DagBag(str(DAGS_FOLDER))
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "doc_md": bool(dag.doc_md and dag.doc_md.strip()),
        "tags": sorted(dag.tags or []),
        "retries": [t.retries for t in dag.tasks],
        "start_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
        "catchup": dag.catchup,
        "tasks": [t.task_id for t in dag.tasks],
    }
print("JSON:" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    from warehouse.datadir import Layout

    layout = Layout(tmp_path_factory.mktemp("dagbag") / "var").ensure()
    ensure_metadata_db(layout)
    res = subprocess.run([sys.executable, "-c", _PROBE], env=airflow_env(layout), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("JSON:")][-1]
    return json.loads(line[5:])


@pytest.mark.airflow
def test_no_import_errors(dagbag):
    assert dagbag["errors"] == {}


@pytest.mark.airflow
def test_one_ingest_dag_per_registered_source(dagbag):
    expected = {f"ingest_{s.id}" for s in load_sources()}
    assert expected <= set(dagbag["dags"])
    assert "library_build" in dagbag["dags"]
    for dag_id in expected:
        assert dagbag["dags"][dag_id]["tasks"] == ["extract", "validate", "load"]


@pytest.mark.airflow
def test_every_dag_has_docs_tags_retries_and_tz_start(dagbag):
    for dag_id, d in dagbag["dags"].items():
        assert d["doc_md"], f"{dag_id} lacks doc_md"
        assert d["tags"], f"{dag_id} lacks tags"
        assert all(r >= 1 for r in d["retries"]), f"{dag_id} has a task without retries"
        assert d["start_tz"] not in (None, "None"), f"{dag_id} start_date is naive"
        assert d["catchup"] is False


@pytest.mark.airflow
def test_dag_files_do_not_import_heavy_libraries_at_parse_time(tmp_path):
    """Parsing the DAG folder must not pull in duckdb, pandas, great_expectations, cryptography or pyarrow."""
    from warehouse.datadir import Layout

    code = (
        "import sys, runpy, glob, json\n"
        "import airflow.sdk, pendulum\n"
        "heavy = ('duckdb', 'pandas', 'great_expectations', 'cryptography', 'pyarrow')\n"
        "before = {m for m in sys.modules if m.split('.')[0] in heavy}\n"
        "from exchange.orchestrate import DAGS_FOLDER\n"
        "for f in sorted(glob.glob(str(DAGS_FOLDER / '*.py'))):\n"
        "    runpy.run_path(f)\n"
        "after = {m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy} - {m.split('.')[0] for m in before}\n"
        "print('NEW:' + json.dumps(sorted(after)))\n"
    )
    env = airflow_env(Layout(tmp_path / "var").ensure())
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    new = json.loads([ln for ln in res.stdout.splitlines() if ln.startswith("NEW:")][-1][4:])
    assert new == [], f"DAG parsing imported heavy libraries: {new}"
