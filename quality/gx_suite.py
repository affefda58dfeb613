"""Run a dataset's rules as a Great Expectations suite over the staged DuckDB table.

One ephemeral GX context per batch; one suite, one validation definition, one
checkpoint, one run (result format BASIC).  Importing this module registers the
DuckDB datasource fix of :mod:`quality.gx_duckdb`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations import expectations as gxe  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

from quality import gx_duckdb  # noqa: E402
from quality.rules import DatasetSpec, Rule  # noqa: E402

# GX logs every metric computation and prints progress bars by default.
logging.getLogger("great_expectations").setLevel(logging.WARNING)


class ExpectNoRowsToViolateRule(gxe.UnexpectedRowsExpectation):
    """``UnexpectedRowsExpectation`` that only counts the rows its query selects.

    GX's own class computes two metrics, ``unexpected_rows_query.table`` (a sample of
    the rows) and ``.row_count``, i.e. it runs the rule's predicate over the batch
    twice; the hub keeps the failing rows itself (the quarantine split), so one
    counting scan per rule is enough.  Same query, same count, same result shape
    (``observed_value``) as the parent class in BASIC/SUMMARY result formats.
    """

    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count",)

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None,
                  execution_engine: Any = None) -> dict[str, Any]:
        count = metrics["unexpected_rows_query.row_count"]
        return {"success": count == 0, "result": {"observed_value": count}}


def expectations_for(rule: Rule) -> list[Any]:
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
    # GX fills {batch} with str.format, so the predicate's own braces (regex {17}) are doubled.
    predicate = rule.predicate.replace("{", "{{").replace("}", "}}")
    query = f"SELECT * FROM {{batch}} WHERE coalesce({predicate}, false)"
    return [ExpectNoRowsToViolateRule(unexpected_rows_query=query, **common)]


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
            for expectation in expectations_for(rule):
                suite.add_expectation(expectation)
        suite = context.suites.add(suite)
        definition = context.validation_definitions.add(gx.ValidationDefinition(
            name=f"{spec.name}.batch", data=batch_definition, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"{spec.name}.checkpoint", validation_definitions=[definition],
            result_format={"result_format": "BASIC"}))
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
    for res in validation.results:
        config = res.expectation_config
        count = _unexpected(res)
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
        "errors": errors,
        "data_docs": data_docs,
    }
