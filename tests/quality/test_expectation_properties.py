"""Known answers and properties of the identifier expectations, on both of their implementations.

``ExpectColumnValuesToPassOneWindowRule`` evaluates a rule's SQL predicate inside
DuckDB and the rule's Python predicate (``Rule.py``) on GX's pandas engine.  For the
GB 11643, GB 32100 and GB/T 36904 rules, both must

* pass the public examples of STANDARDS.md and fail its counter-examples,
* pass every valid identifier generated from the division table, and
* fail every single-character change of a valid identifier (an error, or for a
  credit code's / licence identifier's check character the flag it is specified to get).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certificates.identifiers import make_identifier
from quality import DATASETS, sql, standards

DIVISION_CODES = sorted(standards.division_codes())  # historical codes included
RIC_RULES = [r for r in DATASETS["persons"].rules if r.field == "id_number" and r.code.startswith("id_")]
USCC_RULES = [r for r in DATASETS["enterprises"].rules if r.field == "uscc" and r.code.startswith("uscc_")]
LICENCE_ID_RULES = [r for r in DATASETS["licences"].rules
                    if r.field == "licence_id" and r.code in ("licence_id_format", "licence_id_check_char",
                                                               "licence_id_variant")]
USCC_ALPHABET = standards.USCC_ALPHABET
ID36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    sql.install(c)
    sql.install_licence_functions(c)
    return c


def fired(con, rules, column: str, values: list[str]) -> list[set[str]]:
    """Codes each value fires, by the SQL predicates; asserts the Python predicates agree."""
    cols = ", ".join(f"coalesce({r.predicate}, false)" for r in rules)
    rows = con.execute(f'SELECT {cols} FROM (SELECT unnest(?::VARCHAR[]) AS "{column}", '
                       "generate_subscripts(?::VARCHAR[], 1) AS i) ORDER BY i", [values, values]).fetchall()
    by_sql = [{r.code for r, hit in zip(rules, row) if hit} for row in rows]
    frame = pd.DataFrame({column: values})
    hits = {r.code: list(r.py(frame)) for r in rules}
    by_py = [{code for code, h in hits.items() if h[i]} for i in range(len(values))]
    assert by_sql == by_py
    return by_sql


# ------------------------------------------------------------------ known answers (STANDARDS.md)
@pytest.mark.parametrize(("value", "codes"), [
    ("11010519491231002X", set()),
    ("340524198001010013", {"id_check_char", "id_division"}),  # check should be X (and 340524 is no county)
    ("110105491231002", set()),  # legacy 15 digits
    ("11010519491231002Y", {"id_format"}),
    ("11010519490231002X", {"id_birth_date", "id_check_char"}),
])
def test_ric_known_answers(con, value, codes):
    assert fired(con, RIC_RULES, "id_number", [value]) == [codes]


@pytest.mark.parametrize(("value", "codes"), [
    ("91110000600037341L", set()), ("11100000000013338W", set()),
    ("91110000600037341M", {"uscc_check_char"}),  # changing the last character must fail
    ("9111000060003734IL", {"uscc_format"}),
])
def test_uscc_known_answers(con, value, codes):
    assert fired(con, USCC_RULES, "uscc", [value]) == [codes]


@pytest.mark.parametrize(("value", "codes"), [
    ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U", set()),
    ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S", set()),
    ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.T", {"licence_id_variant"}),
    ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.7", {"licence_id_check_char"}),
    ("1.2.156.3005.2.11100000000013338W011", {"licence_id_format"}),
])
def test_licence_identifier_known_answers(con, value, codes):
    assert fired(con, LICENCE_ID_RULES, "licence_id", [value]) == [codes]


# ------------------------------------------------------------------ properties
valid_rics = st.builds(standards.make_ric, st.sampled_from(DIVISION_CODES),
                       st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)), st.integers(0, 999))
# GB 32100 (and python-stdnum) take the first 8 characters as digits: authority and category digits
valid_usccs = st.builds(standards.make_uscc, st.sampled_from("159"), st.sampled_from("123459"),
                        st.sampled_from(DIVISION_CODES), st.text(USCC_ALPHABET, min_size=8, max_size=8))
valid_licence_ids = st.builds(
    lambda t, i, serial, v: make_identifier(t + "011", i, serial, v),
    valid_usccs, valid_usccs, st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=1, max_size=12),
    st.integers(1, 999))


def one_change(value: str, alphabet: str, data: st.DataObject) -> str:
    positions = [i for i, c in enumerate(value) if c != "."]
    i = data.draw(st.sampled_from(positions))
    c = data.draw(st.sampled_from([a for a in alphabet if a != value[i].upper()]))
    return value[:i] + c + value[i + 1:]


@settings(max_examples=25, deadline=None)
@given(st.lists(valid_rics, min_size=1, max_size=50), st.data())
def test_ric_valid_pass_and_any_single_change_fails(con, values, data):
    assert fired(con, RIC_RULES, "id_number", values) == [set()] * len(values)
    changed = [one_change(v, "0123456789X", data) for v in values]
    assert all(codes for codes in fired(con, RIC_RULES, "id_number", changed)), changed


@settings(max_examples=25, deadline=None)
@given(st.lists(valid_usccs, min_size=1, max_size=50), st.data())
def test_uscc_valid_pass_and_any_single_change_fails(con, values, data):
    assert fired(con, USCC_RULES, "uscc", values) == [set()] * len(values)
    changed = [one_change(v, USCC_ALPHABET + "IOZSV", data) for v in values]
    assert all(codes for codes in fired(con, USCC_RULES, "uscc", changed)), changed


@settings(max_examples=15, deadline=None)
@given(st.lists(valid_licence_ids, min_size=1, max_size=30), st.data())
def test_licence_identifier_valid_pass_and_any_single_change_fails(con, values, data):
    assert fired(con, LICENCE_ID_RULES, "licence_id", values) == [set()] * len(values)
    changed = [one_change(v, ID36, data) for v in values]
    assert all(codes for codes in fired(con, LICENCE_ID_RULES, "licence_id", changed)), changed
