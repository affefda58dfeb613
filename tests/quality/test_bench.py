"""Validation benchmark figures: the JSON shape of `make bench`, and both sides count the same rows."""

from __future__ import annotations

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


def test_pandas_suite_is_the_native_part_of_the_suite():
    spec = dataset("persons")
    native = pandas_suite(spec)
    assert native and all(type(e).__name__.startswith("ExpectColumnValues") for e in native)
    assert len(native) == sum(2 if r.pattern and r.gx_form == "required" else 1
                              for r in spec.rules if r.gx_form != "rows")
