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
    con = connect(layout.library)
    try:
        for new in (variant, wrong):
            con.execute("""INSERT INTO licences (licence_id, base_id, cert_key, version, token, issued_at,
                           supersedes, issuer_code, licence_type_code, holder_code)
                           SELECT ?, base_id, cert_key, version, token, issued_at, supersedes, issuer_code,
                                  licence_type_code, holder_code FROM licences WHERE licence_id = ?""", [new, lid])
    finally:
        con.close()
    _, result = check_issued(layout, at=AT + dt.timedelta(hours=1), run_id="again")
    assert (result.rows, result.quarantined, result.flagged) == (licences + 2, 1, 1)
    assert result.per_rule["licence_id_variant"] == 1 and result.per_rule["licence_id_check_char"] == 1
