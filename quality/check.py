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
from warehouse.duck import apply_bounds

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
        # a partition path (source=…/interval=…) must not add hive columns: the batch is the file's columns
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)",
                                [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise RawBatchError(path, spec.name, f"not readable as Parquet ({exc})") from exc
    columns = [row[0] for row in described]
    missing = tuple(c for c in spec.raw_columns if c not in columns)
    if missing:
        raise RawBatchError(path, spec.name, f"missing columns {', '.join(missing)}", missing)
    return columns


def stage(con: Any, spec: DatasetSpec, path: Path) -> tuple[list[str], int]:
    """Create the staged table; returns (output columns, raw row count).

    Exact duplicate rows are collapsed and ``_key_rows`` counts the distinct rows
    sharing the business key.  Two rows can only be exact duplicates if they share
    the key, so the (expensive) all-column comparison runs only over the rows whose
    key occurs more than once, usually none or a handful.
    """
    columns = _input_columns(con, spec, path)
    select = ", ".join(
        _q(c) if c in spec.numeric or c not in spec.raw_columns
        else f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}"
        for c in columns)
    every = ", ".join(_q(c) for c in columns)
    key = _q(spec.key)
    # Keys are counted in a GROUP BY over the key column alone and joined back for the
    # few keys held by more than one row (cheaper than a window over every column).
    con.execute(f"""
        CREATE TABLE {STAGED} AS
        SELECT {select}, file_row_number AS {_ROW}, coalesce(ow_shared.ow_n, 1) AS _key_rows
        FROM read_parquet(?, file_row_number = true, hive_partitioning = false) AS ow_src
        LEFT JOIN (SELECT {key} AS ow_k, count(*) AS ow_n FROM read_parquet(?, hive_partitioning = false)
                   GROUP BY ALL HAVING count(*) > 1) AS ow_shared
          ON ow_src.{key} IS NOT DISTINCT FROM ow_shared.ow_k""", [str(path), str(path)])
    (shared,) = con.execute(f"SELECT count(*) FROM {STAGED} WHERE _key_rows > 1").fetchone()
    if shared:
        con.execute(f"""
            DELETE FROM {STAGED} WHERE {_ROW} IN (
                SELECT {_ROW} FROM {STAGED} WHERE _key_rows > 1
                QUALIFY row_number() OVER (PARTITION BY {every} ORDER BY {_ROW}) > 1)""")
        con.execute(f"""
            UPDATE {STAGED} SET _key_rows = c.n
            FROM (SELECT {key} AS k, count(*) AS n FROM {STAGED} WHERE _key_rows > 1 GROUP BY ALL) c
            WHERE {STAGED}._key_rows > 1 AND {STAGED}.{key} IS NOT DISTINCT FROM c.k""")
    (rows,) = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = false)",
                          [str(path)]).fetchone()
    return columns, rows


def judge(con: Any, spec: DatasetSpec, firing: set[str] | None = None) -> dict[str, Any]:
    """Attach every applicable reason to each staged row some rule fires on; return the split's counts.

    One scan of the staged table: the predicates of the rules in ``firing`` (rule
    ids; default all) are OR-ed in the WHERE clause and the reason structs are built
    only for the rows that pass it (a few percent).  ``ow_judged`` holds only those
    rows (``_row`` and its reasons).  :func:`check_batch` passes the rules GX counted
    at least one bad row for: a rule GX found no row for cannot add a reason.
    """
    rules = [r for r in spec.rules if firing is None or r.rule_id in firing] or list(spec.rules[:1])
    reasons = ",\n".join(_reason_struct(r) for r in rules)
    any_bad = "\n OR ".join(f"({r.predicate})" for r in rules) if firing is None or firing else "false"
    con.execute(f"""
        CREATE TABLE {JUDGED} AS
        SELECT {_ROW}, list_filter([{reasons}], r -> r IS NOT NULL) AS ow_all
        FROM {STAGED} WHERE {any_bad}""")
    con.execute(f"""
        CREATE OR REPLACE TABLE ow_judged_split AS
        SELECT {_ROW}, ow_all, len(list_filter(ow_all, r -> r.severity = 'error')) > 0 AS ow_bad,
               list_sort(list_distinct(list_transform(
                   list_filter(ow_all, r -> r.severity = 'warning'), r -> r.code))) AS ow_flags
        FROM {JUDGED}""")
    (staged,) = con.execute(f"SELECT count(*) FROM {STAGED}").fetchone()
    quarantined, flagged = con.execute(
        "SELECT coalesce(count_if(ow_bad), 0), "
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
        apply_bounds(con)  # the batch is staged in memory: bounded like the library, spilling beyond it
        sql.install(con)
        if spec.name in NEEDS_LICENCE_FUNCTIONS:
            sql.install_licence_functions(con)
        columns, rows = stage(con, spec, raw_parquet)
        validation = gx_suite.validate(spec, database, STAGED, run_id, docs_dir)
        (staged_rows,) = con.execute(f"SELECT count(*) FROM {STAGED}").fetchone()
        if validation["errors"] or validation["rows_seen"] not in (None, staged_rows):
            raise ValidationDisagreementError(spec.name, {"rows": staged_rows},
                                              {"rows": validation["rows_seen"]}, validation["errors"])
        # GX's counts decide which rules the row-level split evaluates; the split's own
        # counts must then agree with GX's for every rule.
        split = judge(con, spec, firing={rule_id for rule_id, n in validation["per_rule"].items() if n})
        if validation["per_rule"] != split["per_rule_field"]:
            raise ValidationDisagreementError(spec.name, split["per_rule_field"],
                                              validation["per_rule"], validation["errors"])
        out_dir.mkdir(parents=True, exist_ok=True)
        keep = ", ".join(f"s.{_q(c)}" for c in columns)
        passed_path = out_dir / "passed.parquet"
        quarantine_path = out_dir / "quarantine.parquet"
        validation_path = out_dir / "validation.json"
        _replace_atomically(con, f"SELECT {keep}, coalesce(j.ow_flags, []) AS _flags FROM {STAGED} s "
                                 f"LEFT JOIN ow_judged_split j USING ({_ROW}) "
                                 f"WHERE NOT coalesce(j.ow_bad, false) ORDER BY s.{_ROW}", passed_path)
        _replace_atomically(con, f"SELECT {keep}, CAST(to_json(j.ow_all) AS VARCHAR) AS _reasons "
                                 f"FROM {STAGED} s JOIN ow_judged_split j USING ({_ROW}) "
                                 f"WHERE j.ow_bad ORDER BY s.{_ROW}", quarantine_path)
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
