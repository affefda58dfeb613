"""Use-copy stamping splices the licence token into the canonical payload: same bytes, same token."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from certificates import canonical_json, issue_licence, verify_licence
from certificates.usecopy import USE_COPY_TYPE, _payload_bytes, make_use_copy
from tests.certificates.factories import T0, make_cert_row

AT = T0 + dt.timedelta(days=1)
REQUESTER = {"client_id": "sys-11330100002496126K", "department": "11330100002496126K"}
PURPOSES = [
    {"item": "000120003000", "case": "K-1", "clerk": "clerk-42"},
    {"item": "事项\"引号\"", "case": "案\\件,\"licence_id\":", "clerk": "办事员 😀 \u0001"},
    {"item": "", "case": "licence", "clerk": "</script>"},
]


def _decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize("purpose", PURPOSES)
def test_stamped_token_is_the_whole_payload_signed(keyring, trust, purpose):
    row = make_cert_row()
    lic = issue_licence(row, keyring.issuer(row["issuer_code"]), at=T0)
    copy = make_use_copy(keyring.service, licence_id=lic.licence_id, licence_token=lic.token, purpose=purpose,
                         requester=REQUESTER, at=AT, ttl=dt.timedelta(hours=72), log_seq=9)
    header, payload_segment, _ = copy["token"].split(".")
    payload_bytes = _decode(payload_segment)
    payload = json.loads(payload_bytes)
    assert payload["licence"] == lic.token and payload["purpose"] == purpose
    assert canonical_json(payload) == payload_bytes  # RFC 8785, byte for byte
    # the same compact JWS the hub service key makes over the whole payload (Ed25519 is deterministic)
    assert keyring.service.sign(payload, typ=USE_COPY_TYPE) == copy["token"]
    assert json.loads(_decode(header))["typ"] == USE_COPY_TYPE
    result = verify_licence(copy["token"], trust, at=AT + dt.timedelta(hours=1))
    assert result.ok, result.detail
    assert result.use_copy["purpose"] == purpose and result.use_copy["log_seq"] == 9


@pytest.mark.parametrize("token", ["a.b.c", "", "x\"y", "x\\y", "tab\there", "中文.token", "del\x7f"])
def test_payload_bytes_equal_canonical_json_for_any_token(token):
    payload = {"ver": 1, "licence_id": "L-1", "licence": token, "purpose": PURPOSES[1],
               "requester": REQUESTER, "issued_at": "2026-11-02T08:00:00+08:00",
               "expires_at": "2026-11-05T08:00:00+08:00", "log_seq": 3, "stamp": "仅供…"}
    assert _payload_bytes(payload) == canonical_json(payload)


@pytest.mark.parametrize("at, ttl", [
    (dt.datetime(2026, 11, 20, 10, 0, 59, 999_999), dt.timedelta(hours=72)),  # cached per whole second
    (dt.datetime(2026, 12, 31, 23, 59, 59, 500_000, tzinfo=dt.timezone.utc), dt.timedelta(minutes=1)),
    (dt.datetime(2026, 11, 20, 10, 0, 0, 250_000), dt.timedelta(seconds=30, microseconds=900_000)),  # not cached
])
def test_window_strings_equal_the_exact_computation(at, ttl):
    from certificates._time import CST, aware
    from certificates.usecopy import _window

    issued = aware(at).astimezone(CST)
    expires = issued + ttl
    assert _window(at, ttl) == (issued.isoformat(timespec="seconds"), expires.isoformat(timespec="seconds"),
                                expires.strftime("%Y年%m月%d日%H时%M分"))
