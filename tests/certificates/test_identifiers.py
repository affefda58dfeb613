"""GB/T 36904 identifiers: known answers, the known variant, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certificates.exceptions import IdentifierError
from certificates.identifiers import (ALPHABET, ROOT, VARIANT_FLAG, VARIANT_FLAG_ZH, check_char,
                                      check_identifier, make_identifier, next_version,
                                      parse_identifier, variant_check_char)

EXAMPLE_1 = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"
EXAMPLE_2 = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S"
TYPE, ISSUER, SERIAL = "11100000000013338W011", "11430000006122244L", "20230000403"


@pytest.mark.parametrize("ident", [EXAMPLE_1, EXAMPLE_2])
def test_standard_examples_pass(ident):
    result = check_identifier(ident)
    assert result.status == "valid" and result.ok
    assert str(result.identifier) == ident


def test_known_answers():
    assert check_char(TYPE, ISSUER, SERIAL, 1) == "U"
    assert check_char(TYPE, ISSUER, SERIAL, 2) == "S"
    assert make_identifier(TYPE, ISSUER, SERIAL, 1) == EXAMPLE_1


def test_agrees_with_python_stdnum_mod_37_36():
    from stdnum.iso7064 import mod_37_36

    body = TYPE + ISSUER + SERIAL + "001"
    assert mod_37_36.calc_check_digit(body, ALPHABET) == "U"
    assert mod_37_36.is_valid(body + "U", ALPHABET)


def test_parse_and_base_id():
    ident = parse_identifier(EXAMPLE_2)
    assert (ident.type_code, ident.issuer_code, ident.serial, ident.version, ident.check) == \
        (TYPE, ISSUER, SERIAL, 2, "S")
    assert ident.base_id == f"{ROOT}.{TYPE}.{ISSUER}.{SERIAL}"


def test_next_version_bumps_and_keeps_base():
    assert next_version(EXAMPLE_1) == EXAMPLE_2
    assert parse_identifier(next_version(EXAMPLE_2)).version == 3


def test_variant_is_flagged_not_rejected():
    variant = EXAMPLE_1[:-1] + variant_check_char(TYPE, ISSUER, SERIAL, 1)
    result = check_identifier(variant)
    assert result.status == "known_variant" and result.ok
    assert result.reason == VARIANT_FLAG and result.reason_zh == VARIANT_FLAG_ZH
    assert result.expected_check == "U"


def test_wrong_check_is_invalid_with_reason():
    wrong = next(c for c in ALPHABET if c not in ("U", variant_check_char(TYPE, ISSUER, SERIAL, 1)))
    result = check_identifier(EXAMPLE_1[:-1] + wrong)
    assert result.status == "invalid" and not result.ok
    assert "U" in result.reason and "U" in result.reason_zh


@pytest.mark.parametrize("bad", [
    "", "1.2.156.3005.2", EXAMPLE_1.replace("1.2.156.3005.2", "1.2.156.3005.3"),
    EXAMPLE_1 + ".X", EXAMPLE_1.replace(".001.", ".1.", 1), EXAMPLE_1[:-1] + "u",
    EXAMPLE_1.replace(SERIAL, "2023-0403"), EXAMPLE_1.replace(ISSUER, ISSUER[:-1]),
    EXAMPLE_1.replace(ISSUER, ISSUER.lower()), EXAMPLE_1.replace(ISSUER, " " + ISSUER[1:]),
])
def test_malformed_is_invalid_not_a_crash(bad):
    assert check_identifier(bad).status == "invalid"


@pytest.mark.parametrize("args", [
    (TYPE, ISSUER, SERIAL, 0), (TYPE, ISSUER, SERIAL, 1000), (TYPE, ISSUER, "", 1),
    (TYPE[:-1], ISSUER, SERIAL, 1), (TYPE, "1143000000612224IL", SERIAL, 1), (TYPE, ISSUER.lower(), SERIAL, 1),
])
def test_make_rejects_bad_parts(args):
    with pytest.raises(IdentifierError) as info:
        make_identifier(*args)
    assert info.value.reason


def test_last_version_cannot_be_bumped():
    with pytest.raises(IdentifierError):
        next_version(make_identifier(TYPE, ISSUER, SERIAL, 999))


serials = st.text(alphabet=ALPHABET, min_size=1, max_size=24)
versions = st.integers(min_value=1, max_value=999)


@given(serial=serials, version=versions)
def test_round_trip(serial, version):
    ident = make_identifier(TYPE, ISSUER, serial, version)
    parsed = parse_identifier(ident)
    assert (parsed.serial, parsed.version) == (serial, version)
    assert str(parsed) == ident
    assert check_identifier(ident).status == "valid"


@settings(max_examples=300)
@given(serial=serials, version=versions, data=st.data())
def test_any_single_character_change_is_detected(serial, version, data):
    """Changing one character of the checked part (or the check) never yields 'valid'."""
    ident = make_identifier(TYPE, ISSUER, serial, version)
    # positions of checked characters: everything after the root except the dots
    positions = [i for i in range(len(ROOT) + 1, len(ident)) if ident[i] != "."]
    pos = data.draw(st.sampled_from(positions))
    new = data.draw(st.sampled_from([c for c in ALPHABET if c != ident[pos]]))
    changed = ident[:pos] + new + ident[pos + 1:]
    result = check_identifier(changed)
    assert result.status != "valid"
    if result.status == "known_variant":  # detected and flagged, never silently accepted
        assert result.reason == VARIANT_FLAG


def _outcome(parse, s):
    try:
        return parse(s)
    except IdentifierError as exc:
        return ("error", exc.reason)


@settings(max_examples=500)
@given(serial=serials, version=st.integers(min_value=0, max_value=999), data=st.data())
def test_one_match_parse_agrees_with_the_step_by_step_parse(serial, version, data):
    """parse_identifier's single-regex path returns exactly what the explaining parse does,
    for identifiers and for any one-character edit of them (any character, dots included)."""
    from certificates.identifiers import _parse_explained

    ident = f"{ROOT}.{TYPE}.{ISSUER}.{serial}.{version:03d}.{check_char(TYPE, ISSUER, SERIAL, 1)}"
    pos = data.draw(st.integers(0, len(ident)))
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    char = data.draw(st.characters(codec="utf-8") | st.sampled_from(list(ALPHABET + ".\n")))
    if edit == "replace":
        ident = ident[:pos] + char + ident[pos + 1:]
    elif edit == "insert":
        ident = ident[:pos] + char + ident[pos:]
    else:
        ident = ident[:pos] + ident[pos + 1:]
    assert _outcome(parse_identifier, ident) == _outcome(_parse_explained, ident)


@settings(max_examples=500)
@given(serial=serials, version=st.integers(min_value=0, max_value=999), data=st.data())
def test_identifier_status_agrees_with_check_identifier(serial, version, data):
    """Verification's shortcut reports check_identifier's status and issuer, or None (then
    verification asks check_identifier) — for good, variant, wrong and misshapen identifiers."""
    from certificates.identifiers import identifier_status

    check = data.draw(st.sampled_from(ALPHABET))
    ident = f"{ROOT}.{TYPE}.{ISSUER}.{serial}.{version:03d}.{check}"
    if data.draw(st.booleans()):
        pos = data.draw(st.integers(0, len(ident) - 1))
        ident = ident[:pos] + data.draw(st.characters(codec="utf-8")) + ident[pos + 1:]
    full, quick = check_identifier(ident), identifier_status(ident)
    if quick is None:
        assert full.identifier is None  # misshapen: check_identifier explains
    else:
        assert quick == (full.status, full.identifier.issuer_code)
