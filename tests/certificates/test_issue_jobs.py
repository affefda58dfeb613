"""The issuance job's fast paths against their reference definitions: libsodium signatures
are cryptography's, and every licence a job stores is byte for byte the token the one-licence
path (build_payload, RFC 8785, sign_licence / sign_batch) gives for its row, and verifies."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings, strategies as st

from certificates.issue import ed25519_signer, make_jobs, run_job

AT = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
CHECK_AT = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)
_KEY = Ed25519PrivateKey.generate()
_SIGN = ed25519_signer(_KEY)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048))
def test_libsodium_signatures_are_cryptography_s(message):
    assert _SIGN(message) == _KEY.sign(message)


def _job_rows(n: int) -> dict[str, list]:
    """Bench library rows plus rows the column path leaves to the row path (escapes, spaces,
    floats and nesting in the extension, Chinese text everywhere)."""
    from certificates.bench import library_rows

    cols = library_rows(n)
    odd = {3: {"holder_name": '杭州"引号"\\餐饮'}, 5: {"extension": '{"b": 1.5, "a": {"y": [1, "二"]}}'},
           7: {"cert_number": "JY 1330106"}, 9: {"extension": '{"z":"\\u00e9","address":"滨江区\\n"}'},
           11: {"valid_from": None}, 13: {"extension": None}, 15: {"status": "02"}}
    for i, change in odd.items():
        for column, value in change.items():
            cols[column][i] = value
    cols["version"] = [1] * n
    cols["prev_licence_id"] = [None] * n
    cols["status_list"] = [f"{code}-0001" for code in cols["issuer_code"]]
    cols["status_index"] = list(range(n))
    return cols


@pytest.mark.parametrize("mode", ["single", "batch"])
def test_a_job_stores_exactly_the_reference_tokens(tmp_path, keyring, trust, mode):
    from certificates.batch import sign_batch
    from certificates.issue import ROW_COLUMNS
    from certificates.model import build_payload
    from certificates.signing import canonical_json, sign_licence
    from certificates.verify import verify_licence

    n = 40
    cols = _job_rows(n)
    issuers = {code: keyring.issuer(code) for code in set(cols["issuer_code"])}
    kids = [issuers[code].kid for code in cols["issuer_code"]]
    keys = {i.kid: i.private_key for i in issuers.values()}
    jobs = make_jobs(pa.table(cols), kids, prefix="t", batch_size=16, out_dir=tmp_path)
    stored: dict[str, str] = {}
    for job in jobs:
        result = run_job(job, mode, AT, keys)
        table = pq.read_table(tmp_path / result.file)
        for cert_key, header, payload, tail in zip(*(table.column(c).to_pylist() for c in (
                "cert_key", "token_header", "token_payload", "token_tail"))):
            stored[cert_key] = f"{header}.{payload}.{tail}"
        if mode == "batch":  # the reference batch: the same payloads in the job's order, one batch each
            rows = job.rows.to_pylist()
            for batch_id, start, stop in job.spans:
                part = rows[start:stop]
                payloads = [canonical_json(_payload(build_payload, r, ROW_COLUMNS)) for r in part]
                ref = sign_batch(payloads, private_key=keys[part[0]["kid"]], kid=part[0]["kid"], batch_id=batch_id)
                assert [stored[r["cert_key"]] for r in part] == ref.tokens
    assert len(stored) == n
    for k in range(n):
        row = {c: cols[c][k] for c in (*ROW_COLUMNS, "status_list", "status_index")}
        token = stored[row["cert_key"]]
        if mode == "single":
            assert token == sign_licence(_payload(build_payload, row, ROW_COLUMNS), issuers[row["issuer_code"]])
        outcome = verify_licence(token, trust, at=CHECK_AT)  # signature and proof good; 02 is 暂扣 in the payload
        assert outcome.code == ("suspended" if row["status"] == "02" else "valid"), (k, outcome.code)


def _payload(build_payload, row, columns):
    return build_payload({c: row[c] for c in columns}, version=1, at=AT,
                         credential_status=(row["status_list"], row["status_index"]))
