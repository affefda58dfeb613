"""Run a dataset's rules as a Great Expectations suite over the staged DuckDB table.

One ephemeral GX context per batch; one suite, one validation definition, one
checkpoint, one run (result format BASIC without sample values: the hub keeps the
failing rows itself, in the quarantine).  Importing this module registers the
DuckDB datasource fix of :mod:`quality.gx_duckdb` and the custom expectation
:class:`ExpectColumnValuesToPassOneWindowRule`.

Every expectation of the suite is a column-map expectation, so GX computes all their
``unexpected_count`` metrics as aggregates of the same table and bundles them into
one SQL query (``SqlAlchemyExecutionEngine.resolve_metric_bundle``): one scan of the
batch inside DuckDB for the whole suite.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from great_expectations import expectations as gxe  # noqa: E402
from great_expectations.core.metric_domain_types import MetricDomainTypes  # noqa: E402
from great_expectations.core.metric_function_types import MetricPartialFunctionTypes  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.execution_engine import (  # noqa: E402
    PandasExecutionEngine,
    SqlAlchemyExecutionEngine,
)
from great_expectations.expectations.expectation import ColumnMapExpectation  # noqa: E402
from great_expectations.expectations.metrics import (  # noqa: E402
    ColumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.metric_provider import metric_partial  # noqa: E402

from quality import gx_duckdb  # noqa: E402
from quality.rules import DatasetSpec, Rule, dataset  # noqa: E402

# A sample of failing values would cost one more query per expectation; the hub
# writes every failing row with its reasons to the quarantine instead.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}

# GX logs every metric computation and prints progress bars by default.
logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _rule(dataset_name: str, rule_id: str) -> Rule:
    for rule in dataset(dataset_name).rules:
        if rule.rule_id == rule_id:
            return rule
    raise KeyError(f"dataset {dataset_name!r} has no rule {rule_id!r}")


class ColumnValuesPassOneWindowRule(ColumnMapMetricProvider):
    """Map metric ``column_values.onewindow_rule``: a row is unexpected where the rule's predicate holds.

    SQL engines evaluate the rule's own SQL predicate (the text the split uses) in the
    batch's database; the pandas engine evaluates the same predicate written in Python
    (``Rule.py``, :mod:`quality.py_checks`) over the batch's DataFrame.  A predicate may
    read other columns of the row, so NULLs of the named column are not filtered out.
    """

    condition_metric_name = "column_values.onewindow_rule"
    condition_value_keys = ("dataset", "rule_id", "predicate")
    filter_column_isnull = False

    @column_condition_partial(engine=SqlAlchemyExecutionEngine, filter_column_isnull=False)
    def _sqlalchemy(cls, column: Any, dataset: str, rule_id: str, predicate: str, **kwargs: Any) -> Any:
        return sa.literal_column(f"(NOT coalesce({predicate}, false))", type_=sa.Boolean)

    @metric_partial(engine=PandasExecutionEngine, partial_fn_type=MetricPartialFunctionTypes.MAP_CONDITION_SERIES,
                    domain_type=MetricDomainTypes.COLUMN)
    def _pandas(cls, execution_engine: PandasExecutionEngine, metric_domain_kwargs: dict,
                metric_value_kwargs: dict, metrics: dict, runtime_configuration: dict) -> Any:
        frame, compute_kwargs, accessor_kwargs = execution_engine.get_compute_domain(
            domain_kwargs=metric_domain_kwargs, domain_type=MetricDomainTypes.COLUMN)
        rule = _rule(metric_value_kwargs["dataset"], metric_value_kwargs["rule_id"])
        if rule.py is None:
            raise NotImplementedError(f"rule {rule.rule_id} of {metric_value_kwargs['dataset']} has no Python "
                                      "predicate (Rule.py), so it cannot run on GX's pandas engine")
        return rule.py(frame).to_numpy(dtype=bool), compute_kwargs, accessor_kwargs


class ExpectColumnValuesToPassOneWindowRule(ColumnMapExpectation):
    """Expect no row of the batch to break one hub rule (a Chinese-standards check such as
    GB 11643 check character, GB/T 2260 division, ID card validity by age band).

    ``predicate`` is the rule's SQL (TRUE for a bad row), kept in the suite for
    auditors; ``dataset`` and ``rule_id`` name the rule in :mod:`quality.rules`.
    Success means no unexpected row at all (also when the column is entirely NULL:
    GX's default map expectation would call that vacuously true).
    """

    dataset: str
    rule_id: str
    predicate: str

    map_metric: ClassVar[str] = "column_values.onewindow_rule"
    success_keys: ClassVar[tuple[str, ...]] = ("dataset", "rule_id", "predicate", "mostly")

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None,
                  execution_engine: Any = None) -> dict[str, Any]:
        count = metrics[f"{self.map_metric}.unexpected_count"]
        total = metrics.get("table.row_count") or 0
        return {"success": not count, "result": {
            "element_count": total, "unexpected_count": count,
            "unexpected_percent": 100.0 * count / total if total else None,
            "partial_unexpected_list": []}}


def expectations_for(rule: Rule, dataset_name: str) -> list[Any]:
    """The GX expectations that together count exactly the rows ``rule.predicate`` selects."""
    meta = {"rule_id": rule.rule_id, "code": rule.code, "field": rule.field}
    severity = "warning" if rule.severity == "warning" else "critical"
    common: dict[str, Any] = {"meta": meta, "severity": severity, "description": rule.rule_id}
    if rule.gx_form == "regex_match":
        return [gxe.ExpectColumnValuesToMatchRegex(column=rule.field, regex=rule.pattern, **common)]
    if rule.gx_form == "regex_not_match":
        return [gxe.ExpectColumnValuesToNotMatchRegex(column=rule.field, regex=rule.pattern,
                                                      **common)]
    if rule.gx_form == "required":
        # NULLs and non-NULL blanks are disjoint, so the two counts add up to the predicate's.
        out = [gxe.ExpectColumnValuesToNotBeNull(column=rule.field, **common)]
        if rule.pattern is not None:
            out.append(gxe.ExpectColumnValuesToMatchRegex(column=rule.field, regex=rule.pattern,
                                                          **common))
        return out
    return [ExpectColumnValuesToPassOneWindowRule(column=rule.field, dataset=dataset_name,
                                                  rule_id=rule.rule_id, predicate=rule.predicate, **common)]


def _unexpected(result: Any) -> int | None:
    """Rows an expectation found bad; None when GX could not compute it (an exception)."""
    res = result.result or {}
    for key in ("unexpected_count", "observed_value"):
        if key in res:
            return int(res[key] or 0)  # GX reports None for an empty batch
    return None


def validate(spec: DatasetSpec, database: str, table: str, run_id: str,
             docs_dir: Path | None = None) -> dict[str, Any]:
    """Validate ``table`` in the DuckDB database ``database`` (``:memory:name`` or a path).

    Returns a JSON-ready summary: success, statistics, per-expectation unexpected
    counts and per-rule counts (summed over a rule's expectations).  With ``docs_dir``
    the run's GX Data Docs page is written there (:mod:`quality.data_docs`).
    """
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_duckdb(
        name=f"onewindow_{spec.name}", connection_string=gx_duckdb.connection_string(database))
    try:
        asset = datasource.add_table_asset(name=spec.name, table_name=table)
        batch_definition = asset.add_batch_definition_whole_table("batch")
        suite = gx.ExpectationSuite(name=f"onewindow.{spec.name}")
        for rule in spec.rules:
            for expectation in expectations_for(rule, spec.name):
                suite.add_expectation(expectation)
        suite = context.suites.add(suite)
        definition = context.validation_definitions.add(gx.ValidationDefinition(
            name=f"{spec.name}.batch", data=batch_definition, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"{spec.name}.checkpoint", validation_definitions=[definition],
            result_format=RESULT_FORMAT))
        checkpoint_result = checkpoint.run(run_id=gx.RunIdentifier(run_name=run_id))
    finally:
        datasource.get_execution_engine().close()

    (validation,) = checkpoint_result.run_results.values()
    data_docs = None
    if docs_dir is not None:
        from quality.data_docs import write_run_page

        data_docs = str(write_run_page(validation, docs_dir, run_id))
    expectations = []
    per_rule: dict[str, int] = {rule.rule_id: 0 for rule in spec.rules}
    errors = []
    rows_seen = None  # the batch's row count as GX saw it (element_count of the map expectations)
    for res in validation.results:
        config = res.expectation_config
        count = _unexpected(res)
        if (res.result or {}).get("element_count") is not None:
            rows_seen = int(res.result["element_count"])
        rule_id = config.meta["rule_id"]
        if count is None:
            errors.append({"rule_id": rule_id, "exception_info": str(res.exception_info)[:2000]})
        else:
            per_rule[rule_id] += count
        expectations.append({"rule_id": rule_id, "expectation_type": config.type,
                             "success": bool(res.success), "unexpected_count": count,
                             "severity": config.severity.value
                             if hasattr(config.severity, "value") else str(config.severity)})
    stats = validation.statistics
    return {
        "suite": suite.name,
        "validation_definition": definition.name,
        "checkpoint": checkpoint.name,
        "run_id": run_id,
        "success": bool(checkpoint_result.success),
        "statistics": {k: stats[k] for k in ("evaluated_expectations", "successful_expectations",
                                             "unsuccessful_expectations") if k in stats},
        "expectations": expectations,
        "per_rule": per_rule,
        "rows_seen": rows_seen,
        "errors": errors,
        "data_docs": data_docs,
    }
