"""Status lists (W3C Bitstring Status List style): encoding, signature, tamper, validity, build flow."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest

from certificates.statuslist import (LIST_SIZE, StatusList, StatusListError, StatusLists, encode_list,
                                     index_order, sign_status_list)
from certificates.signing import b64url
from tests.certificates.factories import make_cert_row

AT = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
CHECK_AT = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


def _signed(keyring, statuses, at=AT, list_id=None):
    issuer = keyring.issuer("scjg")
    return sign_status_list(list_id=list_id or f"{issuer.code}-0001", issuer_code=issuer.code, kid=issuer.kid,
                            private_key=issuer.private_key, statuses=statuses, at=at)


def test_encoding_is_the_w3c_bit_order_and_round_trips():
    encoded = encode_list({0: "02", 1: "07", 131_071: "03"})
    assert encoded.startswith("u")
    import base64

    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=="))
    assert len(bits) * 8 == LIST_SIZE * 4 and bits[0] == 0x27 and bits[-1] == 0x03 and not any(bits[1:-1])


def test_arrays_encode_exactly_like_the_mapping_and_are_checked_the_same():
    import numpy as np

    rng = np.random.default_rng(7)
    index = rng.choice(LIST_SIZE, size=5000, replace=False)
    codes = rng.choice([1, 2, 3, 4, 5, 7], size=5000)
    mapping = {int(i): f"{int(c):02d}" for i, c in zip(index, codes)}
    assert encode_list((index, codes)) == encode_list(mapping)
    assert encode_list((np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))) == encode_list({})
    with pytest.raises(ValueError, match="outside a list"):
        encode_list((np.array([LIST_SIZE]), np.array([1])))
    with pytest.raises(ValueError, match="outside a list"):
        encode_list({-1: "01"})
    with pytest.raises(ValueError, match="does not fit"):
        encode_list((np.array([3]), np.array([16])))
    with pytest.raises(ValueError, match="does not fit"):
        encode_list({3: "00"})
    with pytest.raises(ValueError, match="twice"):
        encode_list((np.array([3, 3]), np.array([1, 2])))


@pytest.mark.parametrize("seeds", [("seed-a", "seed-b"), "new"])
def test_index_order_is_a_seeded_permutation_that_scatters_neighbours(seeds):
    from certificates.statuslist import new_seed

    seed_a, seed_b = (new_seed(), new_seed()) if seeds == "new" else seeds
    a, b = index_order(seed_a), index_order(seed_b)
    assert sorted(a) == list(range(LIST_SIZE)) and a == index_order(seed_a) and a != b
    gaps = [abs(x - y) for x, y in zip(a[:1000], a[1:1001])]
    assert sum(g == 1 for g in gaps) < 5 and sorted(gaps)[500] > 1000


def test_index_order_of_a_seed_never_changes():
    """A list's fill counts into its order, so the order of a stored seed is fixed for good:
    known answers for an old (random.shuffle) seed and a v2 (SHAKE-256 key stream) seed."""
    from certificates.statuslist import new_seed

    assert index_order("seed-a")[:6] == [11621, 74789, 2915, 60858, 78042, 52899]
    assert index_order("v2-00112233445566778899aabbccddeeff")[:6] == [96942, 10885, 46678, 60795, 13749, 125098]
    assert new_seed().startswith("v2-") and len(new_seed()) == 35


def test_a_signed_list_answers_per_entry_inside_its_window(keyring, trust):
    token = _signed(keyring, {5: "01", 77: "02", 900: "03"})
    lists = StatusLists([StatusList.verify(token, trust)])
    issuer = keyring.issuer("scjg")
    pay = lambda i: {"licence_id": "x", "issuer": {"code": issuer.code},  # noqa: E731
                     "credential_status": {"list": f"{issuer.code}-0001", "index": i, "purpose": "message"}}
    assert [lists.status_of(pay(i), CHECK_AT) for i in (5, 77, 900, 6)] == ["01", "02", "03", None]
    from certificates import StatusUnavailable

    with pytest.raises(StatusUnavailable, match="validity window"):
        lists.status_of(pay(5), AT + dt.timedelta(days=3))
    with pytest.raises(StatusUnavailable, match="not cached"):
        lists.status_of({**pay(5), "credential_status": {"list": "other", "index": 5}}, CHECK_AT)


def test_flipping_any_byte_of_a_status_list_is_detected(keyring, trust):
    token = _signed(keyring, {5: "01", 77: "02"})
    assert StatusList.verify(token, trust).status(77) == "02"
    for pos in range(len(token)):
        ch = token[pos]
        bad = token[:pos] + ("A" if ch != "A" else "B") + token[pos + 1:]
        with pytest.raises(StatusListError):
            StatusList.verify(bad, trust)


def test_a_list_signed_by_an_unknown_key_is_refused(trust):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from certificates.trust import jwk_thumbprint

    key = Ed25519PrivateKey.generate()
    token = sign_status_list(list_id="rogue", issuer_code="113301000024962067", kid=jwk_thumbprint(key.public_key()),
                             private_key=key, statuses={1: "01"}, at=AT)
    with pytest.raises(StatusListError, match="does not know"):
        StatusList.verify(token, trust)
    assert b64url(b"x")  # the helper used to build lists is the same base64url


def test_the_build_publishes_lists_from_the_certificates_status_and_verify_reads_them(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from certificates import TrustStore, verify_licence
    from tests.pipeline_helpers import query
    from tests.warehouse.test_build import _library
    from warehouse.build import issue_pending
    from warehouse.load import open_library

    layout = _library(tmp_path, 12, statuses=("01", "02", "03", "04", "07", "01"))
    issue_pending(layout, at=AT)
    trust = TrustStore.from_dir(layout.trust)
    rows = query(layout.library, "SELECT l.token, c.status, l.status_index FROM licences l "
                                 "JOIN certificates c USING (cert_key) ORDER BY l.licence_id")
    expected = {"01": "valid", "02": "suspended", "03": "revoked", "04": "revoked", "07": "revoked"}
    lists = StatusLists.from_dir(layout.root / "status", trust)
    indices = [r[2] for r in rows]
    assert len(set(indices)) == 12 and max(indices) - min(indices) > 1000  # random, not consecutive
    for token, status, _ in rows:
        assert verify_licence(token, trust, at=CHECK_AT, status_source=lists).code == expected[status]
    # a revocation in department data flows into the next build's list; the licence is not reissued
    con = open_library(layout)
    valid_key = con.execute("SELECT min(cert_key) FROM certificates WHERE status = '01'").fetchone()[0]
    con.execute("UPDATE certificates SET status = '03' WHERE cert_key = ?", [valid_key])
    con.close()
    again = issue_pending(layout, at=AT + dt.timedelta(hours=1))
    assert again.issued == 0 and again.licences_total == 12
    token = query(layout.library, "SELECT token FROM licences WHERE cert_key = ?", [valid_key])[0][0]
    fresh = StatusLists.from_dir(layout.root / "status", trust)
    assert verify_licence(token, trust, at=CHECK_AT, status_source=fresh).code == "revoked"
    assert verify_licence(token, trust, at=CHECK_AT, status_source=lists).code == "valid"  # the old cache
    # an expired cached list: status unavailable, never "valid"
    late = AT + dt.timedelta(days=5)
    result = verify_licence(token, trust, at=late, status_source=fresh)
    assert result.code == "status_unavailable" and "validity window" in result.detail
    assert json.loads(json.dumps(result.payload))["credential_status"]["purpose"] == "message"


def test_the_service_publishes_lists_jwks_and_trust_bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from fastapi.testclient import TestClient

    from certificates import TrustStore
    from exchange.api.main import create_app
    from tests.warehouse.test_build import _library
    from warehouse.build import issue_pending

    layout = _library(tmp_path, 3)
    issue_pending(layout, at=AT)
    trust = TrustStore.from_dir(layout.trust)
    with TestClient(create_app(layout, watch_interval=None)) as client:
        jwks = client.get("/.well-known/jwks.json")
        assert jwks.status_code == 200 and {k["kid"] for k in jwks.json()["keys"]} == set(trust.issuers) | set(
            trust.services)
        pem = client.get("/.well-known/onewindow-trust.pem")
        assert pem.status_code == 200 and pem.text == (layout.trust / "bundle.pem").read_text()
        [path] = sorted((layout.root / "status").glob("*.jws"))
        got = client.get(f"/status/lists/{path.stem}")
        assert got.status_code == 200 and "max-age" in got.headers["cache-control"]
        assert StatusList.verify(got.text, trust).list_id == path.stem
        assert client.get("/status/lists/113301000024962067-9999").status_code == 404
        assert client.get("/status/lists/..%2Fkeys").status_code == 404


def test_printable_copy_has_a_qr_code_to_the_verify_page_and_refuses_forgeries(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    import base64
    import re

    from fastapi.testclient import TestClient

    from certificates.render import qr_svg
    from exchange.api.deps import get_now
    from exchange.api.main import create_app
    from tests.pipeline_helpers import query
    from tests.warehouse.test_build import _library
    from warehouse.build import issue_pending
    from warehouse.snapshot import publish

    layout = _library(tmp_path, 2)
    issue_pending(layout, at=AT)
    publish(layout, built_at=AT)
    [(licence_id, token)] = query(layout.library, "SELECT licence_id, token FROM licences ORDER BY 1 LIMIT 1")
    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: CHECK_AT
    with TestClient(app) as client:
        page = client.post("/licences/print", json={"token": token})
        assert page.status_code == 200 and "食品经营许可证" in page.text and "<svg" in page.text
        assert "http" not in page.text.split("<svg", 1)[1].split("</svg>")[0].replace(
            "http://www.w3.org/2000/svg", "")  # inline, no external reference
        verify_url = f"http://testserver/verify/{licence_id}"
        assert verify_url in page.text and qr_svg(verify_url) in page.text
        shown = client.get(f"/verify/{licence_id}")
        assert shown.status_code == 200 and "证照有效" in shown.text and "杭州味道" not in shown.text
        h, p, s = token.split(".")
        body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        body["holder"]["name"] = "张三"
        forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
        assert client.post("/licences/print", json={"token": f"{h}.{forged}.{s}"}).status_code == 422
        assert client.get("/verify/1.2.156.3005.2.nope").status_code == 404
    assert re.search(r"<svg[^>]*>", qr_svg("x"))


def test_a_build_for_a_past_date_publishes_lists_usable_after_the_real_publication(tmp_path, monkeypatch):
    """A backfill (or the demo's simulated days) publishes today: the list covers ``at`` up to
    ``published_at`` + validity, so licences verify now and still go stale two days later."""
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from certificates import TrustStore, verify_licence
    from tests.pipeline_helpers import query
    from tests.warehouse.test_build import _library
    from warehouse.build import issue_pending

    layout = _library(tmp_path, 3, statuses=("01", "03", "01"))
    published = AT + dt.timedelta(days=20)
    issue_pending(layout, at=AT, published_at=published)
    trust = TrustStore.from_dir(layout.trust)
    lists = StatusLists.from_dir(layout.root / "status", trust)
    rows = query(layout.library, "SELECT l.token, c.status FROM licences l JOIN certificates c USING (cert_key)")
    for token, status in rows:
        expected = "valid" if status == "01" else "revoked"
        assert verify_licence(token, trust, at=CHECK_AT, status_source=lists).code == expected
        assert verify_licence(token, trust, at=published + dt.timedelta(days=1), status_source=lists).code == expected
        late = verify_licence(token, trust, at=published + dt.timedelta(days=3), status_source=lists)
        assert late.code == "status_unavailable"
