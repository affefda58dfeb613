"""
### Department ingest (one DAG per registered source)

Generated from the source registry (`exchange/sources/registry.toml`): adding a
department source is adding an entry there.

Each run handles one data interval (China Standard Time):

1. **extract** — incremental pull since the stored watermark into
   `lake/raw/source=<id>/interval=<key>/data.parquet` (replaced on re-run);
2. **validate** — the dataset's great-expectations suite, run inside DuckDB; rows
   split into pass and quarantine with reasons;
3. **load** — one transaction merges passing rows into `library.duckdb` (history
   kept), replaces this interval's quarantine rows and only then advances the
   watermark. A batch over its error threshold stops here, and the last good
   library keeps serving.

On success the dataset's asset is updated, which triggers the library build.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from exchange.sources.registry import Source, load_sources

DEFAULT_ARGS = {"owner": "data-engineering", "retries": 2, "retry_delay": pendulum.duration(minutes=2)}


def _fail_fast(exc: Exception) -> Exception:
    """Errors a retry cannot fix fail the task at once instead of retrying."""
    from airflow.sdk.exceptions import AirflowFailException

    if getattr(exc, "retryable", True):
        return exc
    return AirflowFailException(str(exc))


def build_ingest_dag(source: Source):
    @dag(
        dag_id=f"ingest_{source.id}",
        doc_md=__doc__,
        description=f"Pull {source.dataset} from {source.department} ({source.kind}) into the library",
        schedule=CronDataIntervalTimetable(source.schedule, timezone="Asia/Shanghai"),
        start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Shanghai"),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["onewindow", "ingest", source.department, source.kind],
    )
    def ingest():
        @task
        def extract(data_interval_start=None, data_interval_end=None) -> dict:
            from exchange.pipeline import extract_step
            from exchange.sources.interval import Interval

            interval = Interval.from_aware(data_interval_start, data_interval_end)
            try:
                return extract_step(source.id, interval.key)
            except Exception as exc:
                raise _fail_fast(exc) from exc

        @task
        def validate(extracted: dict, run_id=None) -> dict:
            from exchange.pipeline import validate_step

            try:
                return validate_step(extracted, run_id)
            except Exception as exc:
                raise _fail_fast(exc) from exc

        @task(outlets=[Asset(f"onewindow://library/{source.dataset}")])
        def load(checked: dict, run_id=None, data_interval_end=None) -> dict:
            from exchange.pipeline import load_step

            try:
                return load_step(checked, run_id, data_interval_end.isoformat())
            except Exception as exc:
                raise _fail_fast(exc) from exc

        load(validate(extract()))

    return ingest()


for _source in load_sources():
    globals()[f"ingest_{_source.id}"] = build_ingest_dag(_source)
