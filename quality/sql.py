"""DuckDB SQL building blocks: identifier macros and value predicates.

Each check is written once here as SQL and used both by the row-level split and by
the Great Expectations suite (see :mod:`quality.rules`).  The macros mirror
:mod:`quality.standards` (tested against it with hypothesis) and are generated from
the same weight tables, so the two cannot drift apart silently.
"""

from __future__ import annotations

from quality import standards

RIC_PATTERN_18 = "[0-9]{17}[0-9Xx]"
RIC_PATTERN_15 = "[0-9]{15}"
USCC_PATTERN = "[0-9]{8}[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{10}"
DATE_PATTERN = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
# RE2 and Python agree on these (RE2's \S is ASCII-only, Python's is Unicode-aware).
NON_BLANK_PATTERN = r"[^\t\n\f\r ]"
# Chinese text never holds U+0080..U+00FF except the middle dot U+00B7 of minority
# names (阿卜杜·热合曼); UTF-8 or GBK bytes decoded as Latin-1 land exactly there
# (中 -> "ä¸\xad", GBK 广东 -> "¹ã¶«"), as does the replacement character U+FFFD.
# "锟斤拷" is what replacement characters become after a UTF-8 -> GBK -> UTF-8 round
# trip (EF BF BD EF BF BD read as GBK), the classic mark of a GBK export gone wrong.
# Valid in RE2 (DuckDB) and in Python's re (GX's pandas engine) alike: U+FFFD is
# written as the character itself, \xhh is a code point in both.
MOJIBAKE_PATTERN = "[\ufffd" r"\x80-\xB6\xB8-\xFF]|锟斤拷"

_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _ric_check_expr(body: str) -> str:
    # One list_dot_product over the 17 digits: ``body`` appears once, so a caller's
    # cleaning expression (upper(replace(...))) is evaluated once per row, not 17
    # times as in a written-out sum of 17 terms (about 3x faster on 1M rows).
    weights = "[" + ", ".join(str(w) for w in standards._RIC_WEIGHTS) + "]::INTEGER[]"
    total = f"CAST(list_dot_product(CAST(string_split({body}, '') AS INTEGER[]), {weights}) AS INTEGER)"
    return f"substr({lit(standards._RIC_CHECK)}, 1 + ({total} % 11), 1)"


def _uscc_check_expr(body: str) -> str:
    alphabet = lit(standards.USCC_ALPHABET)
    terms = " + ".join(f"(strpos({alphabet}, substr({body}, {i + 1}, 1)) - 1) * {w}"
                       for i, w in enumerate(_USCC_WEIGHTS))
    return f"substr({alphabet}, 1 + ((31 - (({terms}) % 31)) % 31), 1)"


def macro_statements() -> list[str]:
    """``CREATE MACRO`` statements (catalog macros, visible to every connection).

    Macros are expanded inline, so none nests a 17-term check inside another
    macro's argument: that multiplies the expression size and planning time.
    """
    clean = "replace(s, ' ', '')"
    return [
        # GB 11643 check character of 17 digits (ISO 7064 MOD 11-2); an error for anything else.
        f"CREATE OR REPLACE MACRO ow_ric_check_char(b) AS {_ric_check_expr('b')}",
        # 18 for a well-formed citizen ID, 15 for a legacy number, else NULL (same
        # format rules as standards.ric_findings: surrounding spaces and a lower-case x pass).
        "CREATE OR REPLACE MACRO ow_ric_kind(s) AS CASE"
        f" WHEN regexp_full_match(s, ' *{RIC_PATTERN_18} *') THEN 18"
        f" WHEN regexp_full_match(s, ' *{RIC_PATTERN_15} *') THEN 15 END",
        # YYYYMMDD birth date of a well-formed number (a legacy one gets its "19").
        f"CREATE OR REPLACE MACRO ow_ric_birth8(s) AS CASE ow_ric_kind(s)"
        f" WHEN 18 THEN substr({clean}, 7, 8) WHEN 15 THEN '19' || substr({clean}, 7, 6) END",
        # GB 32100 check character of 17 characters (upper case).
        f"CREATE OR REPLACE MACRO ow_uscc_check_char(b) AS {_uscc_check_expr('b')}",
        f"CREATE OR REPLACE MACRO ow_uscc_ok(s) AS regexp_full_match(s, ' *{USCC_PATTERN} *')",
        # A real calendar date written YYYY-MM-DD (year 0000 does not exist).
        "CREATE OR REPLACE MACRO ow_date(s) AS CASE"
        f" WHEN regexp_full_match(s, '{DATE_PATTERN}') AND substr(s, 1, 4) <> '0000'"
        " THEN try_cast(s AS DATE) END",
        "CREATE OR REPLACE MACRO ow_blank(s) AS"
        f" (s IS NULL OR NOT regexp_matches(s, '{NON_BLANK_PATTERN}'))",
    ]


def division_table_statements() -> tuple[str, str]:
    """Create the GB/T 2260 table; the second statement takes the code list as parameter."""
    return ("CREATE OR REPLACE TABLE ow_gb2260 (code VARCHAR PRIMARY KEY)",
            "INSERT INTO ow_gb2260 SELECT unnest(?::VARCHAR[])")


def install(con: object) -> None:
    """Install macros and the division table on a DuckDB DBAPI connection."""
    for stmt in macro_statements():
        con.execute(stmt)  # type: ignore[attr-defined]
    create, insert = division_table_statements()
    con.execute(create)  # type: ignore[attr-defined]
    con.execute(insert, [sorted(standards.division_codes())])  # type: ignore[attr-defined]


def licence_id_status(value: str | None) -> str | None:
    """GB/T 36904 identifier check through ``certificates.check_identifier``.

    ``valid``, ``known_variant`` (the off-by-one check character, flagged and kept),
    ``invalid`` (wrong check character) or ``format`` (not shaped like an identifier).
    """
    if value is None:
        return None
    from certificates.identifiers import check_identifier

    result = check_identifier(value)
    if result.status == "invalid" and result.identifier is None:
        return "format"
    return result.status


def install_licence_functions(con: object) -> None:
    """Register ``ow_licence_id_status`` (a Python UDF, visible to every connection of the database)."""
    raw = getattr(con, "_ConnectionWrapper__c", con)  # duckdb_engine wraps the DuckDB connection
    raw.create_function("ow_licence_id_status", licence_id_status, ["VARCHAR"], "VARCHAR",  # type: ignore[attr-defined]
                        side_effects=False)


# ------------------------------------------------------------------ value predicates
# Each returns SQL that is TRUE when the value is *bad*; NULL-safety is the caller's
# (rules wrap every predicate in coalesce(..., false)).

def regex_violation(column: str, pattern: str, must_match: bool) -> str:
    """The predicate GX's native regex expectations compute (NULL is never a violation)."""
    test = f"regexp_matches(coalesce({column}, ''), {lit(pattern)})"
    return f"NOT {test}" if must_match else test


def _clean(col: str) -> str:
    return f"upper(replace({col}, ' ', ''))"


def ric_expected_check_char(col: str) -> str:
    return f"ow_ric_check_char(substr({_clean(col)}, 1, 17))"


def ric_check_char_bad(col: str) -> str:
    # A legacy 15-digit number has no check character (its upgrade computes one).
    # CASE, not AND: the check character is computed only for well-formed numbers
    # (list_dot_product rejects anything but 17 digits).
    return (f"(CASE WHEN ow_ric_kind({col}) = 18 THEN "
            f"substr({_clean(col)}, 18, 1) <> {ric_expected_check_char(col)} ELSE false END)")


def ric_division_bad(col: str) -> str:
    return (f"(ow_ric_kind({col}) IS NOT NULL AND "
            f"substr({_clean(col)}, 1, 6) NOT IN (SELECT code FROM ow_gb2260))")


def ric_birth_bad(col: str) -> str:
    # ow_ric_birth8 is 8 digits or NULL; strptime checks the calendar (year 0000 does not exist).
    b = f"ow_ric_birth8({col})"
    return f"((try_strptime({b}, '%Y%m%d') IS NULL OR {b} LIKE '0000%') AND {b} IS NOT NULL)"


def uscc_expected_check_char(col: str) -> str:
    return f"ow_uscc_check_char({_clean(col)})"


def uscc_check_char_bad(col: str) -> str:
    return (f"(ow_uscc_ok({col}) AND "
            f"substr({_clean(col)}, 18, 1) <> {uscc_expected_check_char(col)})")


def impossible_date(col: str) -> str:
    return f"(NOT ow_blank({col}) AND ow_date({col}) IS NULL)"


def end_before_start(start: str, end: str) -> str:
    return f"(ow_date({end}) < ow_date({start}))"
