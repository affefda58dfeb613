"""Whole-column helpers: base64url, slices and fingerprints of Arrow string arrays, and the
column-wise canonical extension text, each against its one-value-at-a-time definition."""

from __future__ import annotations

import base64
import json
import random

import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from certificates.arrow_text import b64url_array, fingerprints, fixed_width, slices
from certificates.columns import canonical_extensions
from certificates.signing import canonical_json


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=40), st.integers(0, 5))
def test_b64url_of_a_column_is_each_value_s_b64url(values, skip):
    arr = pa.array(values, pa.binary()).slice(min(skip, len(values) - 1))  # offsets need not start at 0
    want = [base64.urlsafe_b64encode(v).rstrip(b"=").decode() for v in values[min(skip, len(values) - 1):]]
    assert b64url_array(arr).to_pylist() == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=30))
def test_b64url_of_text_is_that_of_its_utf8(values):
    want = [base64.urlsafe_b64encode(v.encode()).rstrip(b"=").decode() for v in values]
    assert b64url_array(pa.array(values, pa.string())).to_pylist() == want


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=200).map(lambda b: b.hex().encode()), st.data())
def test_slices_cut_the_text(text, data):
    cuts = data.draw(st.lists(st.tuples(st.integers(0, len(text)), st.integers(0, 40)), max_size=20))
    starts = [min(a, len(text)) for a, _ in cuts]
    lengths = [min(n, len(text) - a) for a, n in zip(starts, (n for _, n in cuts))]
    import numpy as np

    got = slices(text, np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.int64)).to_pylist()
    assert got == [text[a:a + n].decode() for a, n in zip(starts, lengths)]


def test_fixed_width_rows_are_the_values():
    import numpy as np

    m = np.frombuffer(b"abcdefghijkl", dtype=np.uint8).reshape(3, 4)
    assert fixed_width(m).to_pylist() == ["abcd", "efgh", "ijkl"]
    assert fixed_width(m[:, :2]).to_pylist() == ["ab", "ef", "ij"]


def test_fingerprints_are_equal_for_equal_values_and_differ_otherwise():
    rng = random.Random(7)
    values = ["".join(rng.choice("0123456789ABCDEF.") for _ in range(rng.randint(0, 88))) for _ in range(20_000)]
    values += values[:50] + ["", "a", "a\x00", "1.2.156.3005.2"]
    fps = fingerprints(pa.array(values))
    by_value: dict[str, int] = {}
    for v, f in zip(values, fps.tolist()):
        assert by_value.setdefault(v, f) == f
    assert len(set(by_value.values())) == len(by_value)  # no two distinct values share one
    # values of one width take the fast path; mixed with other widths, the general one: same fingerprints
    fixed = [v.ljust(82, "0")[:82] for v in values[:1000]]
    assert fingerprints(pa.array(fixed)).tolist() == fingerprints(pa.array(fixed + ["short"])).tolist()[:-1]
    assert fingerprints(pa.array(["x" * 89])) is None


_key = st.text(st.characters(min_codepoint=1, max_codepoint=0x10FFFF, blacklist_categories=("Cs",)), max_size=6)
_value = st.one_of(st.text(max_size=8), st.integers(-10**17, 10**17), st.none(), st.booleans(),
                   st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(), max_size=2),
                   st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


def _as_written(pairs, spaced: bool) -> str:
    """A JSON object written with its keys in the given order, as DuckDB's json_object does."""
    sep = ", " if spaced else ","
    return "{" + sep.join(f"{json.dumps(k, ensure_ascii=False)}:{json.dumps(v, ensure_ascii=False)}"
                          for k, v in pairs) + "}"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(_key, _value), max_size=5), min_size=1, max_size=12), st.booleans())
def test_canonical_extensions_equal_rfc8785_of_each_value(objects, spaced):
    """Keys in any order (each key set reordered at once), repeated keys, spaces, floats, nested
    values, escapes and characters outside the BMP: the same text as canonical_json(json.loads())."""
    texts = [_as_written(pairs, spaced) for pairs in objects]
    texts += [texts[0], None, "", "[1]", "not json", '{"a":1,"a":2}', '{"b":"x","a":"y"}', '{"b":"x","a":"z"}']
    got = canonical_extensions(pa.array(texts, pa.string())).to_pylist()
    for text, value in zip(texts, got):
        if text in (None, ""):
            assert value == "{}"
        elif text in ("[1]", "not json"):
            assert value is None
        else:
            try:
                want = canonical_json(json.loads(text)).decode("utf-8")
            except ValueError:  # e.g. an integer outside the IEEE-754 safe range: no RFC 8785 text
                want = None     # (the row path then reports the row)
            assert value == want, text


def test_a_key_set_out_of_order_is_rewritten_for_all_its_rows():
    texts = [f'{{"sex":"男","birth_date":"1990-01-{d:02d}","address":"杭州市{d}号"}}' for d in range(1, 29)]
    got = canonical_extensions(pa.array(texts)).to_pylist()
    assert got[4] == '{"address":"杭州市5号","birth_date":"1990-01-05","sex":"男"}'
    assert got == [canonical_json(json.loads(t)).decode() for t in texts]


@pytest.mark.parametrize("text", ['{"a": 1}', '{"f":1.5}', '{"n":{"z":1,"y":[1,2]}}', '{"\U0001f600":1,"\uff01":2}',
                                  '{"q":"\\u00e9"}', '{"big":1234567890123456}', '{"z":-0}'])
def test_odd_extensions_take_the_one_by_one_path_and_still_match(text):
    assert canonical_extensions(pa.array([text])).to_pylist() == [canonical_json(json.loads(text)).decode()]


def test_an_extension_without_rfc8785_text_is_left_to_the_row_path():
    assert canonical_extensions(pa.array(['{"big":12345678901234567}', '{"n":NaN}'])).to_pylist() == [None, None]


def test_key_sets_outside_the_sample_are_still_canonicalised():
    """Thousands of rows of two key sets (one in RFC 8785 order, one not) — what the sample
    sees — with rare rows of other shapes between them (another key order, a key that sorts
    differently in UTF-16, a prefix of a sampled key set, floats, escapes, Chinese text,
    nesting, a repeated key, not JSON): every row's text is canonical_json(json.loads(row))."""
    from certificates import columns

    rng = random.Random(11)
    texts = []
    for i in range(4 * columns._SAMPLE + 37):
        if i % 2:
            texts.append(f'{{"address":"杭州市西湖区文三路{i}号","business_scope":"热食类食品制售"}}')
        else:
            texts.append(f'{{"parcel_no":"330106{i:09d}","area_m2":{80 + i % 90},"land_use":"住宅"}}')
    rare = ['{"business_scope":"冷食","address":"滨江区"}', '{"address":"滨江区"}', '{"z":1,"\uff01":2,"\U0001f600":3}',
            '{"area_m2":80.5,"land_use":"住宅","parcel_no":"1"}', '{"address":"\\"引号\\"\\n换行"}',
            '{"a":{"c":1,"b":[true,null]},"A":-0}', '{"land_use":"a","land_use":"b"}', '{"x":12345678901234567}',
            "not json", "[]", '{"address":"中文","business_scope":"x","extra":false}', '{}']
    for text in rare:
        texts.insert(rng.randrange(len(texts)), text)
    got = canonical_extensions(pa.array(texts, pa.string())).to_pylist()
    for text, value in zip(texts, got):
        try:
            value_in = json.loads(text)
            want = canonical_json(value_in).decode("utf-8") if isinstance(value_in, dict) else None
        except ValueError:  # not JSON, or no RFC 8785 text (an integer outside the safe range)
            want = None
        assert value == want, text
