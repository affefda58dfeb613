"""check_batch: stage a raw batch in DuckDB, split it by the rules, validate with GX.

Everything runs in one in-process DuckDB database (a named ``:memory:`` database
shared by our connection and the GX engine); no table is pulled into pandas.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from quality import gx_duckdb, gx_suite, sql
from quality.exceptions import RawBatchError, ValidationDisagreementError
from quality.results import CheckResult
from quality.rules import NEEDS_LICENCE_FUNCTIONS, DatasetSpec, Rule, dataset

STAGED = "ow_staged"
JUDGED = "ow_judged"
_ROW = "ow_row"


def _q(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def _reason_struct(rule: Rule) -> str:
    return (f"CASE WHEN coalesce({rule.predicate}, false) THEN struct_pack("
            f"code := {sql.lit(rule.code)}, field := {sql.lit(rule.field)}, "
            f"value := CAST({_q(rule.field)} AS VARCHAR), severity := {sql.lit(rule.severity)}, "
            f"message := coalesce({rule.message}, {sql.lit(rule.code)})) END")


def _input_columns(con: Any, spec: DatasetSpec, path: Path) -> list[str]:
    if not path.is_file():
        raise RawBatchError(path, spec.name, "file does not exist")
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise RawBatchError(path, spec.name, f"not readable as Parquet ({exc})") from exc
    columns = [row[0] for row in described]
    missing = tuple(c for c in spec.raw_columns if c not in columns)
    if missing:
        raise RawBatchError(path, spec.name, f"missing columns {', '.join(missing)}", missing)
    return columns


def stage(con: Any, spec: DatasetSpec, path: Path) -> tuple[list[str], int]:
    """Create the staged table; returns (output columns, raw row count)."""
    columns = _input_columns(con, spec, path)
    select = ", ".join(
        _q(c) if c in spec.numeric or c not in spec.raw_columns
        else f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}"
        for c in columns)
    every = ", ".join(_q(c) for c in columns)
    con.execute(f"""
        CREATE TABLE {STAGED} AS
        WITH src AS (SELECT {select}, file_row_number AS {_ROW}
                     FROM read_parquet(?, file_row_number = true)),
             distinct_rows AS (SELECT * FROM src
                               QUALIFY row_number() OVER (PARTITION BY {every} ORDER BY {_ROW}) = 1)
        SELECT *, count(*) OVER (PARTITION BY {_q(spec.key)}) AS _key_rows
        FROM distinct_rows ORDER BY {_ROW}""", [str(path)])
    (rows,) = con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
    return columns, rows


def judge(con: Any, spec: DatasetSpec) -> dict[str, Any]:
    """Attach every applicable reason to each staged row; return the split's counts."""
    reasons = ",\n".join(_reason_struct(r) for r in spec.rules)
    any_bad = " OR ".join(f"coalesce({r.predicate}, false)" for r in spec.rules)
    # Reason structs are built only for rows where some rule fires (a few percent):
    # DuckDB evaluates a CASE branch only for the rows that select it.
    con.execute(f"""
        CREATE TABLE {JUDGED} AS
        SELECT *, CASE WHEN {any_bad}
                       THEN list_filter([{reasons}], r -> r IS NOT NULL)
                       ELSE [] END AS ow_all
        FROM {STAGED}""")
    con.execute(f"""
        CREATE OR REPLACE VIEW ow_judged_split AS
        SELECT *, len(list_filter(ow_all, r -> r.severity = 'error')) > 0 AS ow_bad,
               list_sort(list_distinct(list_transform(
                   list_filter(ow_all, r -> r.severity = 'warning'), r -> r.code))) AS ow_flags
        FROM {JUDGED}""")
    staged, quarantined, flagged = con.execute(
        "SELECT count(*), coalesce(count_if(ow_bad), 0), "
        "coalesce(count_if(NOT ow_bad AND len(ow_flags) > 0), 0) FROM ow_judged_split").fetchone()
    per_field = dict(con.execute(
        f"SELECT r.code || ':' || r.field, count(*) FROM "
        f"(SELECT unnest(ow_all) AS r FROM {JUDGED}) GROUP BY 1").fetchall())
    per_code = dict(con.execute(
        f"SELECT r.code, count(DISTINCT {_ROW}) FROM "
        f"(SELECT {_ROW}, unnest(ow_all) AS r FROM {JUDGED}) GROUP BY 1").fetchall())
    return {
        "staged": staged, "quarantined": quarantined, "flagged": flagged,
        "per_rule_field": {r.rule_id: int(per_field.get(r.rule_id, 0)) for r in spec.rules},
        "per_rule": {code: int(per_code.get(code, 0)) for code in sorted({r.code for r in spec.rules})},
    }


def _replace_atomically(con: Any, query: str, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        con.execute(f"COPY ({query}) TO '{tmp}' (FORMAT parquet)")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json_atomically(payload: dict[str, Any], target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def check_batch(raw_parquet: Path, dataset_name: str, *, run_id: str, out_dir: Path,
                docs_dir: Path | None = None) -> CheckResult:
    """Split ``raw_parquet`` into passed / quarantined rows and validate it with GX.

    Writes ``out_dir/passed.parquet`` (input columns + ``_flags``),
    ``out_dir/quarantine.parquet`` (input columns + ``_reasons`` JSON) and
    ``out_dir/validation.json``, each atomically, and only after GX and the split
    agreed on every rule's count.  With ``docs_dir``, the run's GX Data Docs page is
    kept there next to earlier runs' pages.
    """
    spec = dataset(dataset_name)
    raw_parquet, out_dir = Path(raw_parquet), Path(out_dir)
    database = f":memory:onewindow_{uuid.uuid4().hex}"
    engine = sa.create_engine(gx_duckdb.connection_string(database), poolclass=sa.pool.NullPool)
    dbapi = engine.raw_connection()
    con = dbapi.driver_connection  # duckdb_engine's wrapper of the DuckDB connection
    try:
        sql.install(con)
        if spec.name in NEEDS_LICENCE_FUNCTIONS:
            sql.install_licence_functions(con)
        columns, rows = stage(con, spec, raw_parquet)
        split = judge(con, spec)
        validation = gx_suite.validate(spec, database, STAGED, run_id, docs_dir)
        if validation["errors"] or validation["per_rule"] != split["per_rule_field"]:
            raise ValidationDisagreementError(spec.name, split["per_rule_field"],
                                              validation["per_rule"], validation["errors"])
        out_dir.mkdir(parents=True, exist_ok=True)
        keep = ", ".join(_q(c) for c in columns)
        passed_path = out_dir / "passed.parquet"
        quarantine_path = out_dir / "quarantine.parquet"
        validation_path = out_dir / "validation.json"
        _replace_atomically(con, f"SELECT {keep}, ow_flags AS _flags FROM ow_judged_split "
                                 f"WHERE NOT ow_bad ORDER BY {_ROW}", passed_path)
        _replace_atomically(con, f"SELECT {keep}, CAST(to_json(ow_all) AS VARCHAR) AS _reasons "
                                 f"FROM ow_judged_split WHERE ow_bad ORDER BY {_ROW}",
                            quarantine_path)
    finally:
        dbapi.close()
        engine.dispose()

    staged = split["staged"]
    result = CheckResult(
        dataset=spec.name, rows=rows, passed=staged - split["quarantined"],
        quarantined=split["quarantined"], flagged=split["flagged"], per_rule=split["per_rule"],
        gx_success=validation["success"], passed_path=passed_path,
        quarantine_path=quarantine_path, validation_path=validation_path,
        duplicates_collapsed=rows - staged, per_rule_field=split["per_rule_field"])
    _write_json_atomically({
        "dataset": spec.name, "source_id": spec.source_id, "run_id": run_id,
        "raw_parquet": str(raw_parquet), "rows": rows, "passed": result.passed,
        "quarantined": result.quarantined, "flagged": result.flagged,
        "duplicates_collapsed": result.duplicates_collapsed, "per_rule": result.per_rule,
        "split_per_rule_field": split["per_rule_field"], "gx": validation,
    }, validation_path)
    return result
