"""The suite runs unchanged on GX's pandas engine and counts exactly what it counts inside DuckDB.

This is what makes ``validate_pandas_rows_per_s_1m`` a like-for-like figure: the same
expectations (native and custom) over the same rows, on the other execution engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import quality
from quality import gx_suite
from quality.bench import pandas_suite, stage_frame
from tests.quality.factories import MAKERS, write_batch
from tests.quality.test_check_batch import CASES

PANDAS_READY = sorted(n for n, spec in quality.DATASETS.items() if all(r.py for r in spec.rules))


def test_the_source_suites_are_complete_on_pandas():
    assert {"persons", "enterprises", "food_licences", "marriages", "properties", "licences"} <= set(PANDAS_READY)


def test_pandas_suite_is_the_duckdb_suite():
    spec = quality.DATASETS["persons"]
    suite = pandas_suite(spec)
    assert [e.configuration.to_json_dict() for e in suite] == [
        e.configuration.to_json_dict() for r in spec.rules for e in gx_suite.expectations_for(r, spec.name)]
    custom = [e for e in suite if isinstance(e, gx_suite.ExpectColumnValuesToPassOneWindowRule)]
    assert {e.rule_id for e in custom} >= {"id_check_char:id_number", "id_division:id_number",
                                           "id_birth_date:id_number", "validity_term:id_card_valid_until",
                                           "duplicate_key:id_number"}


def pandas_counts(raw: Path, dataset: str) -> tuple[dict[str, int], list[str]]:
    import great_expectations as gx

    spec = quality.DATASETS[dataset]
    frame = stage_frame(pd.read_parquet(raw), spec)
    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("p").add_dataframe_asset(dataset)
             .add_batch_definition_whole_dataframe("b").get_batch(batch_parameters={"dataframe": frame}))
    suite = context.suites.add(gx.ExpectationSuite(name=f"{dataset}.pandas"))
    for e in pandas_suite(spec):
        suite.add_expectation(e)
    result = batch.validate(suite, result_format=gx_suite.RESULT_FORMAT)
    counts = {r.rule_id: 0 for r in spec.rules}
    errors = []
    for res in result.results:
        n = gx_suite._unexpected(res)
        if n is None:
            errors.append(str(res.exception_info))
        else:
            counts[res.expectation_config.meta["rule_id"]] += n
    return counts, errors


@pytest.mark.parametrize("dataset", PANDAS_READY)
def test_pandas_engine_counts_what_duckdb_counts_on_crafted_batches(tmp_path: Path, dataset: str) -> None:
    cases = [c for c in CASES if c[0] == dataset]
    rows = [MAKERS[dataset](**overrides) for _, overrides, _, _ in cases]
    spec = quality.DATASETS[dataset]
    other = [c for c in spec.columns if c != spec.key][-1]
    rows += [MAKERS[dataset](), rows[0], dict(rows[0], **{other: f"{rows[0][other]}!"})]  # a duplicate, a clash
    raw = write_batch(rows, dataset, tmp_path / "raw.parquet")
    result = quality.check_batch(raw, dataset, run_id="t", out_dir=tmp_path / "out")
    counts, errors = pandas_counts(raw, dataset)
    assert errors == []
    assert counts == result.per_rule_field
    assert sum(counts.values()) > 0 and counts[f"duplicate_key:{spec.key}"] == 2


def test_a_rule_without_a_python_predicate_fails_clearly_on_pandas(tmp_path: Path) -> None:
    missing = [n for n in quality.DATASETS if n not in PANDAS_READY]
    if not missing:
        pytest.skip("every dataset runs on pandas")
    dataset = missing[0]
    raw = write_batch([MAKERS[dataset]()], dataset, tmp_path / "raw.parquet")
    _, errors = pandas_counts(raw, dataset)
    assert errors and all("no Python predicate" in e for e in errors)
