"""Key rotation: old licences verify until the old certificate expires; expiry warnings ahead of time."""

from __future__ import annotations

import datetime as dt
import logging

from certificates.batch import sign_batch
from certificates.encoder import PayloadEncoder
from tests.certificates.factories import T0, make_cert_row, make_layout


def test_rotation_keeps_old_licences_verifying_until_the_old_certificate_expires(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from certificates import Keyring, TrustStore, issue_licence, publish_trust, verify_licence
    from certificates.pki import rotate_issuer

    layout = make_layout(tmp_path)
    old_ring = Keyring.load_or_create(layout, at=T0)
    old = old_ring.issuer("scjg")
    row = make_cert_row(valid_until="2099-12-31")
    old_single = issue_licence(row, old, at=T0).token
    old_batch = sign_batch([PayloadEncoder(at=T0).encode(row)[2]], private_key=old.private_key, kid=old.kid,
                           batch_id="old").tokens[0]

    rotated_at = T0 + dt.timedelta(days=30)
    new = rotate_issuer(layout, "scjg", at=rotated_at)
    ring = Keyring.load_or_create(layout, at=rotated_at)
    assert ring.issuer("scjg").kid == new.kid != old.kid and len(ring.retired) == 1
    assert ring.issuer("gongan").kid == old_ring.issuer("gongan").kid  # other departments untouched
    publish_trust(ring, layout.trust)
    trust = TrustStore.from_dir(layout.trust)
    assert {old.kid, new.kid} <= set(trust.issuers) and not trust.rejected
    new_token = issue_licence(row, ring.issuer("scjg"), at=rotated_at).token

    soon = rotated_at + dt.timedelta(days=1)
    assert [verify_licence(t, trust, at=soon).code for t in (old_single, old_batch, new_token)] == ["valid"] * 3
    after_old_expiry = old.certificate.not_valid_after_utc + dt.timedelta(days=1)
    assert [verify_licence(t, trust, at=after_old_expiry).code for t in (old_single, old_batch, new_token)] == \
        ["issuer_cert_expired", "issuer_cert_expired", "valid"]
    # the old private key is gone: only its certificate remains
    assert (layout.keys / "issuers" / "scjg.key.pem").read_bytes() != b"" and \
        not list((layout.keys / "issuers" / "retired").glob("*.key.pem"))


def test_expiry_warning_names_each_certificate_due_within_the_configured_days(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    from certificates import Keyring
    from certificates.pki import rotate_issuer, warn_expiring

    layout = make_layout(tmp_path)
    ring = Keyring.load_or_create(layout, at=T0)
    assert warn_expiring(ring, T0, days=60) == []
    rotate_issuer(layout, "scjg", at=T0 + dt.timedelta(days=30))
    ring = Keyring.load_or_create(layout, at=T0)
    late = T0 + dt.timedelta(days=700)
    with caplog.at_level(logging.WARNING, logger="certificates.pki"):
        messages = warn_expiring(ring, late, days=40)
    due = {i.code for i in ring.issuers.values() if i.department.key != "scjg"}
    # ... and the hub service certificate (use-copies, usage-log seals), made at T0 too
    assert len(messages) == len(due) + 1 and all(any(code in m for m in messages) for code in due)
    assert sum("服务签章证书" in m and "rotate_service" in m for m in messages) == 1
    assert not any(ring.issuer("scjg").code in m for m in messages)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == len(due) + 1
    monkeypatch.setenv("ONEWINDOW_CERT_WARN_DAYS", "90")
    assert len(warn_expiring(ring, late)) == len(ring.issuers) + 1
