"""
### Library build

Runs when any ingest DAG has updated its dataset in the library (asset-triggered):

1. **issue_licences** — for every new or changed certificate, an electronic licence
   with a GB/T 36904 identifier, signed (Ed25519 JWS) by its issuing department's
   key under the hub root;
2. **publish_snapshot** — an immutable read-only snapshot of the library; the
   service swaps to it atomically. A failed build leaves the last snapshot serving.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetAny, dag, task

from exchange.sources.registry import load_sources

_datasets = sorted({s.dataset for s in load_sources()})


def _moment(logical_date, dag_run):
    """The build's moment: the logical date of a manual or embedded run; an asset-triggered run has
    none, so the moment it was queued to run after (there is no ``run_after`` key in the task context)."""
    return logical_date or dag_run.run_after


@dag(
    dag_id="library_build",
    doc_md=__doc__,
    description="Issue signed licences for changed certificates and publish a snapshot",
    schedule=AssetAny(*(Asset(f"onewindow://library/{d}") for d in _datasets)),
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    tags=["onewindow", "library", "licences"],
)
def library_build():
    @task
    def issue_licences(logical_date=None, dag_run=None) -> dict:
        from exchange.pipeline import build_step

        return build_step(_moment(logical_date, dag_run).isoformat())

    @task(outlets=[Asset("onewindow://snapshot")])
    def publish_snapshot(issued: dict, logical_date=None, dag_run=None) -> dict:
        from exchange.pipeline import publish_step

        return {"issued": issued, **publish_step(_moment(logical_date, dag_run).isoformat())}

    publish_snapshot(issue_licences())


library_build()
