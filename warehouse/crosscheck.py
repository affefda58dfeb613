"""Cross-department checks (比对) over the library: findings, never silent picks.

The same fact held by two departments is compared after every merge:

* ``legal_rep_missing`` / ``name_mismatch`` — a business licence's legal
  representative (市场监管) is in the population registry (公安) under the same name;
* ``spouse_missing`` / ``name_mismatch`` — both spouses of a marriage certificate
  (民政) are in the population registry under the names on the certificate;
* ``owner_missing`` / ``name_mismatch`` — a property owner (自然资源) is a registered
  person (code type 111) or organisation (001), under the same name.

Each mismatch is a row of ``crosscheck_findings`` with the values each department
holds; the records themselves stay in the library (warnings, not quarantine).  The
findings are derived from the whole library, so :func:`refresh` recomputes them all
in one transaction: the result does not depend on the order sources were loaded in,
and a re-run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from certificates.registry import load_registry
from warehouse.datadir import Layout
from warehouse.library import Library

PERSONS_SOURCE = "gongan_population"
ORGANISATIONS_SOURCE = "scjg_enterprises"
CHECKS = ("legal_rep_missing", "spouse_missing", "owner_missing", "name_mismatch")


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _norm(expr: str) -> str:
    """Names compare after trimming spaces (a trailing blank is not a different name)."""
    return f"trim(coalesce({expr}, ''))"


def findings_sql() -> str:
    """One SELECT yielding every finding: (source_id, dataset, record_key, check, field, subject_code, values, interval)."""
    lt = load_registry().licence_type
    business, marriage, prop = (_lit(lt(k).code) for k in ("business_licence", "marriage", "property"))
    persons, orgs = _lit(PERSONS_SOURCE), _lit(ORGANISATIONS_SOURCE)
    return f"""
    WITH person AS (SELECT subject_code, name FROM subjects WHERE kind = 'person'),
         org AS (SELECT subject_code, name FROM subjects WHERE kind = 'organisation'),
         rep AS (
            SELECT c.source_id, c.cert_number AS record_key, c.changed_interval AS interval,
                   trim(c.extension->>'legal_rep_id') AS code, (c.extension->>'legal_rep_name') AS name
            FROM certificates c
            WHERE c.licence_type_code = {business} AND nullif(trim(c.extension->>'legal_rep_id'), '') IS NOT NULL),
         spouse AS (
            SELECT c.source_id, c.cert_number AS record_key, c.changed_interval AS interval,
                   c.holder_code AS code, c.holder_name AS name,
                   CASE WHEN c.holder_code = (c.extension->>'spouse1_id') THEN 'spouse1' ELSE 'spouse2' END AS who
            FROM certificates c WHERE c.licence_type_code = {marriage}),
         owner AS (
            SELECT c.source_id, c.cert_number AS record_key, c.changed_interval AS interval,
                   c.holder_code AS code, c.holder_code_type AS code_type, c.holder_name AS name
            FROM certificates c WHERE c.licence_type_code = {prop} AND c.holder_code_type IN ('111', '001'))
    SELECT r.source_id, 'enterprises' AS dataset, r.record_key,
           CASE WHEN p.subject_code IS NULL THEN 'legal_rep_missing' ELSE 'name_mismatch' END AS "check",
           CASE WHEN p.subject_code IS NULL THEN 'legal_rep_id' ELSE 'legal_rep_name' END AS field,
           r.code AS subject_code,
           json_object(r.source_id, r.name, {persons}, p.name) AS "values", r.interval
    FROM rep r LEFT JOIN person p ON p.subject_code = r.code
    WHERE p.subject_code IS NULL OR {_norm('p.name')} <> {_norm('r.name')}
    UNION ALL
    SELECT s.source_id, 'marriages', s.record_key,
           CASE WHEN p.subject_code IS NULL THEN 'spouse_missing' ELSE 'name_mismatch' END,
           s.who || CASE WHEN p.subject_code IS NULL THEN '_id' ELSE '_name' END,
           s.code, json_object(s.source_id, s.name, {persons}, p.name), s.interval
    FROM spouse s LEFT JOIN person p ON p.subject_code = s.code
    WHERE p.subject_code IS NULL OR {_norm('p.name')} <> {_norm('s.name')}
    UNION ALL
    SELECT o.source_id, 'properties', o.record_key,
           CASE WHEN r.subject_code IS NULL THEN 'owner_missing' ELSE 'name_mismatch' END,
           CASE WHEN r.subject_code IS NULL THEN 'owner_code' ELSE 'owner_name' END,
           o.code,
           json_object(o.source_id, o.name, CASE o.code_type WHEN '111' THEN {persons} ELSE {orgs} END, r.name),
           o.interval
    FROM owner o
    LEFT JOIN (SELECT subject_code, name, '111' AS code_type FROM person
               UNION ALL
               SELECT subject_code, name, '001' FROM org) r
      ON r.subject_code = o.code AND r.code_type = o.code_type
    WHERE r.subject_code IS NULL OR {_norm('r.name')} <> {_norm('o.name')}"""


@dataclass(frozen=True)
class CrosscheckResult:
    findings: int
    by_check: dict[str, int]


def refresh_on(con) -> CrosscheckResult:
    """Recompute ``crosscheck_findings`` on an open library connection (caller owns the transaction)."""
    con.execute("DELETE FROM crosscheck_findings")
    con.execute(f"""
        INSERT INTO crosscheck_findings (source_id, dataset, record_key, "check", field, subject_code, "values",
                                         interval)
        {findings_sql()}""")
    by_check = dict(con.execute('SELECT "check", count(*) FROM crosscheck_findings GROUP BY 1').fetchall())
    return CrosscheckResult(sum(by_check.values()), by_check)


def refresh(layout: Layout) -> CrosscheckResult:
    """Recompute every cross-check finding in the library, in one transaction."""
    return Library.from_env(layout).write(refresh_on, lane="merge")
