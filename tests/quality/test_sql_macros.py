"""The DuckDB macros agree with quality.standards (GB 11643, GB 32100) on generated input."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quality import sql, standards
from tests.quality.factories import DIVISIONS


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    sql.install(c)
    return c


def ric_codes_sql(con: duckdb.DuckDBPyConnection, value: str) -> set[str]:
    return ric_codes_many(con, [value])[0]


def ric_codes_many(con: duckdb.DuckDBPyConnection, values: list[str]) -> list[set[str]]:
    preds = {
        "id_format": sql.regex_violation("v", f"^ *(?:(?:{sql.RIC_PATTERN_18}|{sql.RIC_PATTERN_15}) *)?$",
                                         True),
        "id_check_char": sql.ric_check_char_bad("v"),
        "id_division": sql.ric_division_bad("v"),
        "id_birth_date": sql.ric_birth_bad("v"),
    }
    cols = ", ".join(f"coalesce({p}, false)" for p in preds.values())
    rows = con.execute(f"SELECT {cols} FROM (SELECT unnest(?::VARCHAR[]) AS v, "
                       "generate_subscripts(?::VARCHAR[], 1) AS i) ORDER BY i",
                       [values, values]).fetchall()
    return [{code for code, hit in zip(preds, row) if hit} for row in rows]


def uscc_codes_sql(con: duckdb.DuckDBPyConnection, value: str) -> set[str]:
    return uscc_codes_many(con, [value])[0]


def uscc_codes_many(con: duckdb.DuckDBPyConnection, values: list[str]) -> list[set[str]]:
    fmt = sql.regex_violation("v", f"^ *(?:{sql.USCC_PATTERN} *)?$", True)
    rows = con.execute(f"SELECT coalesce({fmt}, false), coalesce({sql.uscc_check_char_bad('v')}, false)"
                       " FROM (SELECT unnest(?::VARCHAR[]) AS v, generate_subscripts(?::VARCHAR[], 1) AS i)"
                       " ORDER BY i", [values, values]).fetchall()
    return [{code for code, hit in zip(("uscc_format", "uscc_check_char"), row) if hit}
            for row in rows]


def non_blank(values: list[str]) -> list[str]:
    # Deliberate difference: a blank value is only missing_required in the SQL rules,
    # standards.*_findings report "format" for whitespace-only input.
    return [v for v in values if v.strip()]


def py_codes(findings: list[standards.Finding]) -> set[str]:
    return {f.code for f in findings}


# --------------------------------------------------------------------- strategies
births = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31))
valid_rics = st.builds(lambda d, b, s: standards.make_ric(d, b, s),
                       st.sampled_from(DIVISIONS), births, st.integers(0, 999))
digits = st.text("0123456789", min_size=1, max_size=20)


@st.composite
def mutated_rics(draw: st.DrawFn) -> str:
    ric = draw(valid_rics)
    pos = draw(st.integers(0, 17))
    ch = draw(st.sampled_from("0123456789Xx"))
    return ric[:pos] + ch + ric[pos + 1:]


@st.composite
def legacy_rics(draw: st.DrawFn) -> str:
    ric = draw(valid_rics)
    return ric[:6] + ric[8:17]  # 15 digits: drop the century and the check


ric_inputs = st.one_of(valid_rics, mutated_rics(), legacy_rics(), digits,
                       st.text("0123456789Xx ", min_size=1, max_size=19),
                       valid_rics.map(lambda r: f" {r.lower()} "))

valid_usccs = st.builds(
    lambda a, c, d, o: standards.make_uscc(a, c, d, o),
    st.sampled_from("159ABCDEGJNY"), st.sampled_from("123459"), st.sampled_from(DIVISIONS),
    st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=8, max_size=8))


@st.composite
def mutated_usccs(draw: st.DrawFn) -> str:
    code = draw(valid_usccs)
    pos = draw(st.integers(0, 17))
    ch = draw(st.sampled_from(standards.USCC_ALPHABET + "IOZSVaz"))
    return code[:pos] + ch + code[pos + 1:]


uscc_inputs = st.one_of(valid_usccs, mutated_usccs(), valid_usccs.map(str.lower),
                        st.text(standards.USCC_ALPHABET + "IO ", min_size=1, max_size=19))


# --------------------------------------------------------------------- tests
# Each example is a list, checked in one query: thousands of identifiers per run.
def _macro_many(con: duckdb.DuckDBPyConnection, macro: str, values: list[str]) -> list[str]:
    return [r[0] for r in con.execute(
        f"SELECT {macro}(v) FROM (SELECT unnest(?::VARCHAR[]) AS v, "
        "generate_subscripts(?::VARCHAR[], 1) AS i) ORDER BY i", [values, values]).fetchall()]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text("0123456789", min_size=17, max_size=17), min_size=1, max_size=100))
def test_ric_check_char_macro_matches_python(con, bodies: list[str]) -> None:
    assert _macro_many(con, "ow_ric_check_char", bodies) == [
        standards.ric_check_char(b) for b in bodies]


@settings(max_examples=60, deadline=None)
@given(st.lists(ric_inputs, min_size=1, max_size=100).map(non_blank))
def test_ric_predicates_match_ric_findings(con, values: list[str]) -> None:
    assert ric_codes_many(con, values) == [py_codes(standards.ric_findings(v)) for v in values]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(standards.USCC_ALPHABET, min_size=17, max_size=17), min_size=1,
                max_size=100))
def test_uscc_check_char_macro_matches_python(con, bodies: list[str]) -> None:
    assert _macro_many(con, "ow_uscc_check_char", bodies) == [
        standards.uscc_check_char(b) for b in bodies]


@settings(max_examples=60, deadline=None)
@given(st.lists(uscc_inputs, min_size=1, max_size=100).map(non_blank))
def test_uscc_predicates_match_uscc_findings(con, values: list[str]) -> None:
    assert uscc_codes_many(con, values) == [py_codes(standards.uscc_findings(v)) for v in values]


@pytest.mark.parametrize(("value", "codes"), [
    ("11010519491231002X", set()),  # GB 11643's own example
    ("340524198001010013", {"id_check_char", "id_division"}),  # check should be X
    ("110105491231002", set()),  # legacy 15 digits upgrade to the example
])
def test_ric_known_answers(con, value: str, codes: set[str]) -> None:
    assert ric_codes_sql(con, value) == codes == py_codes(standards.ric_findings(value))


@pytest.mark.parametrize(("value", "codes"), [
    ("91110000600037341L", set()),
    ("11100000000013338W", set()),
    ("91110000600037341M", {"uscc_check_char"}),  # last character changed
    ("11100000000013338X", {"uscc_check_char"}),
    ("9111000060003734IL", {"uscc_format"}),  # I is outside the GB 32100 alphabet
    ("9111000060003734", {"uscc_format"}),
])
def test_uscc_known_answers(con, value: str, codes: set[str]) -> None:
    assert uscc_codes_sql(con, value) == codes


@pytest.mark.parametrize(("value", "bad"), [
    ("2024-02-29", False), ("2023-02-29", True), ("2023-02-30", True), ("0000-01-01", True),
    ("2023-13-01", True), ("2023/01/01", True), ("2023-1-1", True), ("", False), (None, False),
    ("1900-02-29", True), ("2000-02-29", False),
])
def test_impossible_date_predicate(con, value: str | None, bad: bool) -> None:
    got = con.execute(f"SELECT coalesce({sql.impossible_date('v')}, false) "
                      "FROM (SELECT ?::VARCHAR AS v)", [value]).fetchone()[0]
    assert got is bad
