"""Use-copy stamping: the canonical payload (the licence named by digest), the hub service key's JWS."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from certificates import canonical_json, issue_licence, verify_licence
from certificates.usecopy import USE_COPY_TYPE, licence_digest, make_use_copy
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
    compact, sep, licence = copy["token"].partition("~")
    assert sep and licence == lic.token  # presented with its licence
    header, payload_segment, _ = compact.split(".")
    payload_bytes = _decode(payload_segment)
    payload = json.loads(payload_bytes)
    assert payload["licence_sha256"] == licence_digest(lic.token) and payload["purpose"] == purpose
    assert canonical_json(payload) == payload_bytes  # RFC 8785, byte for byte
    # the same compact JWS the hub service key makes over the whole payload (Ed25519 is deterministic)
    assert keyring.service.sign(payload, typ=USE_COPY_TYPE) == compact
    assert json.loads(_decode(header))["typ"] == USE_COPY_TYPE
    result = verify_licence(copy["token"], trust, at=AT + dt.timedelta(hours=1))
    assert result.ok, result.detail
    assert result.use_copy["purpose"] == purpose and result.use_copy["log_seq"] == 9


@pytest.mark.parametrize("token", ["a.b.c", "", "x\"y", "tab\there", "中文.token"])
def test_licence_digest_is_sha256_of_the_token_base64url(token):
    import hashlib

    expected = base64.urlsafe_b64encode(hashlib.sha256(token.encode("utf-8")).digest()).rstrip(b"=").decode()
    assert licence_digest(token) == expected and len(expected) == 43


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
