"""Benchmark: check_batch on generated person rows vs one hand-written DuckDB query.

``bench_validate(n_rows, workdir)`` generates ``n_rows`` person rows inside DuckDB
(about 1 % defective), then times

* ``validate``: :func:`quality.check_batch` end to end (staging, split, both
  Parquet outputs, the GX checkpoint run, validation.json), and
* ``sql_anchor``: one hand-written DuckDB query over the same Parquet file that
  computes the same per-rule counts with inline expressions (no outputs, no GX),

and returns rows per second for both.  The GX library import is excluded (it is a
one-off per process); the GX context/checkpoint setup is included.

``bench_validate_pandas`` runs the *same* suite (every native and custom expectation,
the custom ones through their pandas implementations) on GX's pandas engine over the
same file: Parquet read, the same staging (duplicates collapsed, ``_key_rows``) and
the validation, without the split or any output — so that figure is, if anything,
generous to pandas.  Its per-rule counts are returned and tested equal to DuckDB's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb

from quality import sql, standards

_W = standards._RIC_WEIGHTS


def _generate(path: Path, n_rows: int) -> None:
    con = duckdb.connect()
    sql.install(con)
    con.execute("CREATE TABLE divs AS SELECT unnest(?::VARCHAR[]) AS d, "
                "generate_subscripts(?::VARCHAR[], 1) - 1 AS i",
                [list(standards.county_division_codes())] * 2)
    (n_divs,) = con.execute("SELECT count(*) FROM divs").fetchone()
    con.execute(f"""
        COPY (
          WITH g AS (
            SELECT r.i AS i, d.d AS division,
                   DATE '1940-01-01' + CAST(hash(r.i) % 25000 AS INTEGER) AS birth,
                   lpad(CAST(r.i % 1000 AS VARCHAR), 3, '0') AS seq
            FROM range({n_rows}) r(i) JOIN divs d ON d.i = hash(r.i * 7) % {n_divs}),
          b AS (SELECT *, division || strftime(birth, '%Y%m%d') || seq AS body FROM g),
          p AS (SELECT *, CASE WHEN i % 97 = 1  -- a wrong check character
                               THEN body || CASE ow_ric_check_char(body) WHEN '0' THEN '1' ELSE '0' END
                               ELSE body || ow_ric_check_char(body) END AS ric FROM b)
          SELECT ric AS id_number,
                 CASE WHEN i % 211 = 3 THEN 'å¼ ä¼' WHEN i % 401 = 5 THEN '' ELSE '张伟' END AS name,
                 CASE WHEN CAST(substr(seq, 3, 1) AS INTEGER) % 2 = 1 THEN '男' ELSE '女' END AS sex,
                 CASE WHEN i % 307 = 7 THEN '2023-02-30' ELSE strftime(birth, '%Y-%m-%d') END
                   AS birth_date,
                 '汉族' AS ethnicity, division AS division_code, '北京市朝阳区建国路1号' AS address,
                 'H' || i AS hukou_number, '2015-03-01' AS id_card_issue_date,
                 CASE WHEN i % 503 = 11 THEN '2010-01-01'  -- before the issue date
                      -- 居民身份证 validity by age at issue (2015-03-01): 5 / 10 / 20 years, 46+ 长期
                      WHEN DATE '2015-03-01' < birth + INTERVAL 16 YEAR THEN '2020-03-01'
                      WHEN DATE '2015-03-01' < birth + INTERVAL 26 YEAR THEN '2025-03-01'
                      WHEN DATE '2015-03-01' < birth + INTERVAL 46 YEAR THEN '2035-03-01'
                      ELSE '' END AS id_card_valid_until,
                 '某市公安局' AS id_card_authority, '01' AS status,
                 '2026-11-01T08:00:00' AS updated_at,
                 ric AS _record_key, 'gongan_population' AS _source_id,
                 '20261101T000000-20261102T000000' AS _interval
          FROM p
        ) TO '{path}' (FORMAT parquet)""")
    con.close()


def _anchor_query(path: Path) -> str:
    """Hand-written: the person checks inline, no macros, no GX."""
    ric = "upper(replace(id_number, ' ', ''))"
    # the 17 weighted digits in one list_dot_product (as quality.sql does): the cleaned
    # number is computed once per row instead of once per digit
    weights = "[" + ", ".join(str(w) for w in _W) + "]::INTEGER[]"
    checksum = (f"CAST(list_dot_product(CAST(string_split(substr({ric}, 1, 17), '') AS INTEGER[]), {weights})"
                " AS INTEGER)")
    fmt18 = "regexp_full_match(id_number, ' *[0-9]{17}[0-9Xx] *')"
    fmt15 = "regexp_full_match(id_number, ' *[0-9]{15} *')"
    birth = (f"CASE WHEN {fmt18} THEN substr({ric}, 7, 8) WHEN {fmt15} "
             f"THEN '19' || substr({ric}, 7, 6) END")

    def blank(c: str) -> str:
        return f"({c} IS NULL OR NOT regexp_matches({c}, '\\S'))"

    def bad_date(c: str) -> str:
        return (f"(NOT {blank(c)} AND (NOT regexp_full_match({c}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')"
                f" OR try_cast({c} AS DATE) IS NULL OR substr({c}, 1, 4) = '0000'))")

    moji = sql.lit(sql.MOJIBAKE_PATTERN)
    required = "id_number name sex birth_date id_card_issue_date status updated_at".split()
    cols = ("id_number, name, sex, birth_date, ethnicity, division_code, address, hukou_number, "
            "id_card_issue_date, id_card_valid_until, id_card_authority, status, updated_at, "
            "_record_key, _source_id, _interval")
    checks = {
        **{f"missing_{c}": blank(c) for c in required},
        **{f"date_{c}": bad_date(c) for c in ("birth_date", "id_card_issue_date",
                                               "id_card_valid_until")},
        "id_format": f"NOT ({blank('id_number')} OR {fmt18} OR {fmt15})",
        "id_check": f"CASE WHEN {fmt18} THEN substr({ric}, 18, 1) <> "
                    f"substr('10X98765432', 1 + (({checksum}) % 11), 1) END",
        "id_division": f"({fmt18} OR {fmt15}) AND substr({ric}, 1, 6) NOT IN "
                       "(SELECT code FROM ow_gb2260)",
        "id_birth": f"({birth}) IS NOT NULL AND try_strptime({birth}, '%Y%m%d') IS NULL",
        "end_before_start": "try_cast(id_card_valid_until AS DATE) < try_cast(id_card_issue_date AS DATE)",
        "validity_term": (
            "try_cast(birth_date AS DATE) IS NOT NULL AND try_cast(id_card_issue_date AS DATE) IS NOT NULL "
            "AND NOT coalesce(try_cast(id_card_valid_until AS DATE) < try_cast(id_card_issue_date AS DATE), false) "
            "AND CASE " + " ".join(
                f"WHEN try_cast(id_card_issue_date AS DATE) < try_cast(birth_date AS DATE) + INTERVAL {age} YEAR "
                f"THEN {blank('id_card_valid_until')} OR try_cast(id_card_valid_until AS DATE) <> "
                f"try_cast(id_card_issue_date AS DATE) + INTERVAL {term} YEAR"
                for age, term in ((16, 5), (26, 10), (46, 20)))
            + " ELSE try_cast(id_card_valid_until AS DATE) IS NOT NULL END"),
        "moji_name": f"regexp_matches(coalesce(name, ''), {moji})",
        "moji_address": f"regexp_matches(coalesce(address, ''), {moji})",
        "moji_authority": f"regexp_matches(coalesce(id_card_authority, ''), {moji})",
        "duplicate_key": f"NOT {blank('id_number')} AND key_rows > 1",
    }
    counts = ", ".join(f"count_if(coalesce({p}, false)) AS {name}" for name, p in checks.items())
    return f"""
        WITH d AS (SELECT DISTINCT {cols} FROM read_parquet('{path}')),
             k AS (SELECT *, count(*) OVER (PARTITION BY id_number) AS key_rows FROM d)
        SELECT count(*) AS n, {counts} FROM k"""


def bench_validate(n_rows: int, workdir: Path) -> dict[str, Any]:
    """Rows/s of check_batch and of the hand-written SQL anchor on ``n_rows`` persons."""
    import quality.check  # noqa: F401  (GX import, once per process, not timed)
    from quality import check_batch

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    raw = workdir / "persons.parquet"
    if not raw.exists():
        _generate(raw, n_rows)

    start = time.perf_counter()
    result = check_batch(raw, "persons", run_id="bench", out_dir=workdir / "out")
    validate_s = time.perf_counter() - start

    con = duckdb.connect()
    sql.install(con)  # only for the division table; the anchor's checks are inline
    start = time.perf_counter()
    anchor = con.execute(_anchor_query(raw)).fetchone()
    anchor_s = time.perf_counter() - start
    con.close()

    return {
        "rows": n_rows,
        "validate_seconds": round(validate_s, 3),
        "validate_rows_per_s": round(n_rows / validate_s),
        "sql_anchor_seconds": round(anchor_s, 3),
        "sql_anchor_rows_per_s": round(n_rows / anchor_s),
        "ratio_validate_to_anchor": round(anchor_s / validate_s, 3),
        "passed": result.passed,
        "quarantined": result.quarantined,
        "anchor_rows_checked": anchor[0],
        "per_rule": result.per_rule,
        "per_rule_field": result.per_rule_field,
    }


def pandas_suite(spec: Any) -> list[Any]:
    """The dataset's whole GX suite, as :mod:`quality.gx_suite` builds it for DuckDB.

    The same expectations in the same order: native GX expectations run on pandas
    natively, the custom ``ExpectColumnValuesToPassOneWindowRule`` through its pandas
    implementation (``Rule.py``, :mod:`quality.py_checks`).
    """
    from quality import gx_suite

    return [e for rule in spec.rules for e in gx_suite.expectations_for(rule, spec.name)]


def stage_frame(frame: Any, spec: Any) -> Any:
    """The pandas equivalent of :func:`quality.check.stage`: exact duplicates collapsed, ``_key_rows`` added."""
    frame = frame.drop_duplicates(ignore_index=True)
    frame["_key_rows"] = frame.groupby(spec.key, dropna=False)[spec.key].transform("size")
    return frame


def bench_validate_pandas(n_rows: int, workdir: Path) -> dict[str, Any]:
    """Rows/s of the same suite on GX's pandas engine (Parquet read and staging included, no outputs)."""
    import great_expectations as gx
    import pandas as pd
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from quality import gx_suite
    from quality.rules import dataset

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    raw = workdir / "persons.parquet"
    if not raw.exists():
        _generate(raw, n_rows)
    spec = dataset("persons")
    start = time.perf_counter()
    frame = stage_frame(pd.read_parquet(raw), spec)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (context.data_sources.add_pandas("bench_pandas")
                        .add_dataframe_asset("persons").add_batch_definition_whole_dataframe("batch"))
    suite = context.suites.add(gx.ExpectationSuite(name="onewindow.persons.pandas"))
    expectations = pandas_suite(spec)
    for expectation in expectations:
        suite.add_expectation(expectation)
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format=gx_suite.RESULT_FORMAT)
    elapsed = time.perf_counter() - start
    per_rule: dict[str, int] = {rule.rule_id: 0 for rule in spec.rules}
    errors = []
    for res in result.results:
        count = gx_suite._unexpected(res)
        if count is None:
            errors.append(str(res.exception_info)[:500])
        else:
            per_rule[res.expectation_config.meta["rule_id"]] += count
    return {"rows": n_rows, "seconds": round(elapsed, 3), "rows_per_s": round(n_rows / elapsed),
            "expectations": len(expectations), "per_rule": per_rule, "errors": errors,
            "success": bool(result.success)}


if __name__ == "__main__":  # pragma: no cover - manual run
    import json
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(bench_validate(n, Path(tmp)), ensure_ascii=False, indent=2))
