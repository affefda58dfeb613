"""Validation benchmark figures: the JSON shape of `make bench`, and both sides count the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from quality.bench import bench_validate, pandas_suite
from quality.rules import dataset


@pytest.mark.slow
def test_validate_figures_have_the_bench_shape(tmp_path):
    from exchange.bench import bench_validate as figures_of

    figures = figures_of(tmp_path, sizes=(20_000,))
    assert set(figures) == {"validate_rows_per_s_20000", "validate_pandas_rows_per_s_20000"}
    for fig in figures.values():
        assert set(fig) == {"value", "unit", "anchor", "anchor_value", "ratio"}
        assert fig["unit"] == "rows/s" and fig["anchor"] == "sql_anchor_rows_per_s_20000"
        assert fig["value"] > 0 and fig["anchor_value"] > 0
        assert fig["ratio"] == round(fig["value"] / fig["anchor_value"], 4)
    assert not list(tmp_path.iterdir())  # generated data removed


@pytest.mark.slow
def test_generated_rows_fail_only_the_injected_rules(tmp_path):
    out = bench_validate(20_000, tmp_path)
    assert out["anchor_rows_checked"] == 20_000
    assert out["per_rule"]["validity_term"] == 0  # the generator follows the ID card age bands
    assert out["per_rule"]["id_check_char"] > 0 and out["quarantined"] > 0


@pytest.mark.slow
def test_pandas_figure_runs_the_whole_suite_and_counts_the_same_rows(tmp_path):
    from quality.bench import bench_validate_pandas

    ours = bench_validate(20_000, tmp_path)
    pandas = bench_validate_pandas(20_000, tmp_path)
    assert pandas["errors"] == []
    assert pandas["expectations"] == len(pandas_suite(dataset("persons")))
    assert pandas["per_rule"] == ours["per_rule_field"]  # same suite, same rows, same verdicts
    assert pandas["per_rule"]["id_check_char:id_number"] > 0


def test_anchor_checks_what_the_suite_checks():
    from quality.bench import _anchor_query

    query = _anchor_query(Path("x.parquet"))
    # one count per rule of the persons suite (the two date rules of the card are one CASE each)
    codes = {r.code for r in dataset("persons").rules}
    assert codes == {"missing_required", "impossible_date", "id_format", "id_check_char", "id_division",
                     "id_birth_date", "validity_end_before_start", "validity_term", "mis_encoded_text",
                     "duplicate_key"}
    assert query.count("count_if(") == len(dataset("persons").rules)
