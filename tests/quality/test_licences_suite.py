"""The issued-licences suite runs after the build: every licence the hub signed passes; a variant is flagged."""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.departments import BASE_DATE, simulate
from tests.pipeline_helpers import data_dir, query, run_steps

AT = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.timezone.utc)


@pytest.mark.slow
def test_build_checks_every_issued_licence_and_records_it(layout):
    from exchange.pipeline import build_step
    from quality.licences import SOURCE_ID, check_issued, interval_key

    simulate(layout, persons=300, seed=5, day=0)
    run_steps(layout, "gongan_population", BASE_DATE)
    with data_dir(layout):
        build_step(AT.isoformat())
    (licences,) = query(layout.library, "SELECT count(*) FROM licences")[0]
    assert licences > 0
    runs = query(layout.library, """SELECT rows, passed, quarantined, flagged, status, interval, finished_at
                                    FROM quality_runs WHERE source_id = ?""", [SOURCE_ID])
    assert runs == [(licences, licences, 0, 0, "checked", interval_key(AT), dt.datetime(2026, 11, 2, 9, 0))]
    docs = layout.reports / "data_docs" / SOURCE_ID / interval_key(AT)
    assert (docs / "index.html").exists() and len(list(docs.glob("*.html"))) == 2

    # a licence published with the known off-by-one check character is flagged, not rejected;
    # one with any other wrong check character is an error
    from warehouse.duck import connect

    (lid,) = query(layout.library, "SELECT licence_id FROM licences ORDER BY licence_id LIMIT 1")[0]
    from certificates.identifiers import ALPHABET

    variant = lid[:-1] + ALPHABET[(ALPHABET.index(lid[-1]) - 1) % 36]
    wrong = lid[:-1] + ALPHABET[(ALPHABET.index(lid[-1]) + 5) % 36]
    # issued licences are immutable files; odd records go into licence_store, the table the
    # `licences` view also reads (where licences migrated from the former table live)
    def store_copy(con, source_id, new_id, issuer_code=None):
        con.execute("""INSERT INTO licence_store (licence_id, base_id, cert_key, version, issued_at, supersedes,
                       issuer_code, licence_type_code, holder_code, mode, batch_id, status_list, status_index,
                       token_header, token_payload, token_tail)
                       SELECT ?, base_id, cert_key, version, issued_at, supersedes, coalesce(?, issuer_code),
                              licence_type_code, holder_code, mode, batch_id, status_list, status_index,
                              split_part(token, '.', 1), split_part(token, '.', 2), split_part(token, '.', 3)
                       FROM licences WHERE licence_id = ?""", [new_id, issuer_code, source_id])

    con = connect(layout.library)
    try:
        for new in (variant, wrong):
            store_copy(con, lid, new)
    finally:
        con.close()
    _, result = check_issued(layout, at=AT + dt.timedelta(hours=1), run_id="again")
    assert (result.rows, result.quarantined, result.flagged) == (licences + 2, 1, 1)
    assert result.per_rule["licence_id_variant"] == 1 and result.per_rule["licence_id_check_char"] == 1

    # the quarantined licence is in the library's quarantine table with its reasons and row,
    # like a source's rows; the flagged variant is not
    import json

    def quarantined():
        return query(layout.library, """SELECT dataset, interval, record_key, reasons, "row", resolved_interval
                                        FROM quarantine WHERE source_id = ?""", [SOURCE_ID])

    later = interval_key(AT + dt.timedelta(hours=1))
    ((dataset, interval, key, reasons, row, resolved),) = quarantined()
    assert (dataset, interval, key, resolved) == ("licences", later, wrong, None)
    reasons = json.loads(reasons)
    assert [r["code"] for r in reasons] == ["licence_id_check_char"]
    assert reasons[0]["severity"] == "error" and reasons[0]["value"] == wrong and "MOD 37,36" in reasons[0]["message"]
    assert json.loads(row)["licence_id"] == wrong

    # checking the same build again replaces its entries instead of adding to them
    check_issued(layout, at=AT + dt.timedelta(hours=1), run_id="again2")
    assert [r[2] for r in quarantined()] == [wrong]

    # a licence record that disagrees with its identifier is quarantined; once corrected, the
    # next build's check resolves that entry (a removed licence's entry stays unresolved)
    def build_check(hours, statement, params):
        con = connect(layout.library)
        try:
            con.execute(statement, params)
        finally:
            con.close()
        check_issued(layout, at=AT + dt.timedelta(hours=hours), run_id=f"build{hours}")
        return interval_key(AT + dt.timedelta(hours=hours))

    from certificates.identifiers import make_identifier, parse_identifier

    (issuer,) = query(layout.library, "SELECT issuer_code FROM licences WHERE licence_id = ?", [lid])[0]
    parts = parse_identifier(lid)
    other = make_identifier(parts.type_code, parts.issuer_code, parts.serial[:-1] + "9" if parts.serial[-1] != "9"
                            else parts.serial[:-1] + "8", parts.version)  # a well-formed identifier of its own
    con = connect(layout.library)
    try:
        con.execute("DELETE FROM licence_store WHERE licence_id = ?", [wrong])
        store_copy(con, lid, other)
    finally:
        con.close()
    second = build_check(2, "UPDATE licence_store SET issuer_code = ? WHERE licence_id = ?", ["X" * len(issuer), other])
    entries = {(r[1], r[2]): (json.loads(r[3]), r[5]) for r in quarantined()}
    assert set(entries) == {(later, wrong), (second, other)}
    assert [r["code"] for r in entries[(second, other)][0]] == ["licence_id_parts"]
    third = build_check(3, "UPDATE licence_store SET issuer_code = ? WHERE licence_id = ?", [issuer, other])
    assert {(r[1], r[2]): r[5] for r in quarantined()} == {(later, wrong): None, (second, other): third}
