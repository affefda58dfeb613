"""The usage log: hash chain, daily seals, offline verification, tampering, auditor-only identifiers."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from exchange.store import open_store
from exchange.usagelog import auditor
from exchange.usagelog.merkle import merkle_root
from exchange.usagelog.seal import HubSigner, export_dir, seal_due
from exchange.usagelog.verify import verify_exports, verify_store_chain
from quality.standards import make_ric, mask_identifier

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL

CST = dt.timezone(dt.timedelta(hours=8), "CST")
DAY1 = dt.datetime(2026, 11, 10, 9, 0, tzinfo=CST)
HOLDER = make_ric("330106", dt.date(1980, 5, 5), 17)


@pytest.fixture()
def keys(layout):
    auditor.create_keypair(layout.keys / "auditor.key.pem", layout.keys / "auditor.pub.pem", b"audit-pass")
    return auditor.IdentifierSealer(auditor.load_public(layout.keys / "auditor.pub.pem"))


@pytest.fixture()
def sealed(layout, keys):
    """Three days of 5 records each, sealed; returns (store, published trust store)."""
    from certificates import TrustStore, publish_trust
    from certificates.pki import Keyring

    store = open_store(layout)
    for day in range(3):
        for i in range(5):
            store.append_log({"action": "licence", "client_id": "c1", "department": "d1",
                              "decision": "granted" if i % 2 else "denied", "rule": "ok" if i % 2 else "not_granted",
                              "holder_masked": mask_identifier(HOLDER), "holder_sealed": keys.seal(HOLDER),
                              "purpose": {"item": "000120003000", "case": f"K-{day}-{i}", "clerk": "x"}},
                             at=DAY1 + dt.timedelta(days=day, minutes=i))
    report = seal_due(store, layout, None, at=DAY1 + dt.timedelta(days=3))
    assert report.sealed == ["2026-11-10", "2026-11-11", "2026-11-12"] and not report.failed
    publish_trust(Keyring.load_or_create(layout, at=DAY1), layout.trust)
    yield store, TrustStore.from_dir(layout.trust)
    store.close()


def _export(layout, day: str):
    [path] = export_dir(layout).glob(f"usage-{day}-*.parquet")
    return path


def _rewrite(path, rows):
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)


def test_chain_links_every_record(layout, keys):
    store = open_store(layout)
    recs = [store.append_log({"n": i}, at=DAY1) for i in range(4)]
    assert recs[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(recs, recs[1:]))
    assert [json.loads(r.record)["seq"] for r in recs] == [1, 2, 3, 4]
    assert verify_store_chain(store).intact


def test_intact_log_verifies_and_file_names_carry_previous_digest(layout, sealed):
    store, root = sealed
    report = verify_exports(export_dir(layout), root)
    assert report.intact and report.records == 15 and report.days == ["2026-11-10", "2026-11-11", "2026-11-12"]
    seals = store.seals()
    assert seals[0].file == f"usage-2026-11-10-{'0' * 16}.parquet"
    assert seals[1].file == f"usage-2026-11-11-{seals[0].digest[:16]}.parquet"
    assert seals[2].prev_digest == seals[1].digest
    rows = pq.read_table(export_dir(layout) / seals[1].file).to_pylist()
    assert merkle_root([r["hash"] for r in rows]) == seals[1].merkle_root
    assert verify_exports(export_dir(layout), root, date_from="2026-11-11", date_to="2026-11-11").days == ["2026-11-11"]


@pytest.mark.parametrize("tamper, seq, words", [
    ("edit", 7, "edited"), ("edit_column", 8, "column"), ("delete", 7, "missing"),
    ("reorder", 7, "expected seq 7"), ("truncate", 10, "truncated"), ("edit_relinked", 8, "link"),
])
def test_tampering_is_detected_and_names_the_first_broken_record(layout, sealed, tamper, seq, words):
    store, root = sealed
    path = _export(layout, "2026-11-11")  # seq 6..10
    rows = pq.read_table(path).to_pylist()
    if tamper == "edit":
        body = json.loads(rows[1]["record"])
        body["decision"] = "granted" if body["decision"] == "denied" else "denied"
        rows[1]["record"] = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    elif tamper == "edit_column":
        rows[2]["rule"] = "ok-forged"
    elif tamper == "delete":
        del rows[1]
    elif tamper == "reorder":
        rows[1], rows[2] = rows[2], rows[1]
    elif tamper == "truncate":
        rows = rows[:-1]
    elif tamper == "edit_relinked":  # edit and recompute its own hash: the next record no longer links
        from exchange.store.base import chain_hash

        body = json.loads(rows[1]["record"])
        body["client_id"] = "someone-else"
        rows[1]["record"] = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        rows[1]["client_id"] = "someone-else"
        rows[1]["hash"] = chain_hash(rows[1]["prev_hash"], rows[1]["record"])
    _rewrite(path, rows)
    report = verify_exports(export_dir(layout), root)
    assert not report.intact
    first = report.first_broken
    assert (first.day, first.seq) == ("2026-11-11", seq), str(first)
    assert words in first.reason, first.reason


def test_removed_or_forged_seal_is_detected(layout, sealed):
    store, root = sealed
    out = export_dir(layout)
    middle = out / store.seals()[1].file
    shutil.move(middle, layout.root / "moved.parquet")
    shutil.move(middle.with_name(middle.name.replace(".parquet", ".seal.jws")), layout.root / "moved.jws")
    first = verify_exports(out, root).first_broken
    assert first.day == "2026-11-12" and "previous seal" in first.reason
    shutil.move(layout.root / "moved.parquet", middle)
    jws_path = middle.with_name(middle.name.replace(".parquet", ".seal.jws"))
    jws = (layout.root / "moved.jws").read_text().strip()
    h, p, s = jws.split(".")
    jws_path.write_text(f"{h}.{p}.{('A' if s[0] != 'A' else 'B') + s[1:]}\n")
    assert "signature" in verify_exports(out, root).first_broken.reason


def test_failed_seal_is_recorded_and_retried(layout, keys):
    store = open_store(layout)
    store.append_log({"n": 1}, at=DAY1)
    export_dir(layout).parent.mkdir(parents=True, exist_ok=True)
    export_dir(layout).write_text("a file where the export folder should be")
    report = seal_due(store, layout, None, at=DAY1 + dt.timedelta(days=1))
    assert report.failed and report.failed[0][0] == "2026-11-10" and not report.sealed
    assert [f[0] for f in store.seal_failures()] == ["2026-11-10"]
    store.append_log({"n": 2}, at=DAY1 + dt.timedelta(days=1))  # appends keep working meanwhile
    export_dir(layout).unlink()
    report = seal_due(store, layout, None, at=DAY1 + dt.timedelta(days=2))
    assert report.sealed == ["2026-11-10", "2026-11-11"] and store.seal_failures() == []


def test_identifiers_masked_in_export_and_recoverable_only_with_auditor_key(layout, sealed, tmp_path):
    store, _ = sealed
    path = _export(layout, "2026-11-10")
    assert HOLDER.encode() not in path.read_bytes()
    row = pq.read_table(path).to_pylist()[0]
    assert row["holder_masked"] == mask_identifier(HOLDER)
    sealed_value = json.loads(row["record"])["holder_sealed"]
    key = auditor.load_private(layout.keys / "auditor.key.pem", b"audit-pass")
    assert auditor.open_identifier(sealed_value, key) == HOLDER
    auditor.create_keypair(tmp_path / "other.key", tmp_path / "other.pub", None)
    with pytest.raises(auditor.AuditorKeyError, match="does not open"):
        auditor.open_identifier(sealed_value, auditor.load_private(tmp_path / "other.key", None))


def test_verify_log_cli(layout, sealed, monkeypatch):
    from exchange.cli import app

    monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(layout.root))
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify-log", "--store"])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output and "records: 15" in ok.output
    path = _export(layout, "2026-11-12")
    rows = pq.read_table(path).to_pylist()
    _rewrite(path, rows[:2] + rows[3:])
    bad = runner.invoke(app, ["audit", "verify-log"])
    assert bad.exit_code == 1 and "seq=13" in bad.output, bad.output
    # Limited to days before the tampering: intact.
    assert runner.invoke(app, ["audit", "verify-log", "--to", "2026-11-11"]).exit_code == 0


def test_hub_signer_uses_the_hub_service_key_not_the_root(layout):
    from cryptography import x509

    from certificates import Keyring, TrustStore
    from certificates.trust import HUB_SERVICE_EKU, LICENCE_SIGNING_EKU, jwk_thumbprint

    signer = HubSigner(layout, at=DAY1)
    root = x509.load_pem_x509_certificate((layout.keys / "root.cert.pem").read_bytes())
    assert signer.kid != jwk_thumbprint(root.public_key())
    service = Keyring.load_or_create(layout, at=DAY1).service
    assert signer.kid == service.kid and signer.kid.startswith("hub-service-")
    eku = service.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [HUB_SERVICE_EKU] and LICENCE_SIGNING_EKU not in eku
    # HubSigner published the trust material with the service certificate in it
    trust = TrustStore.from_dir(layout.trust)
    assert set(trust.services) == {signer.kid} and signer.kid not in trust.issuers


def _resign_seals(out, key, kid):
    """Re-sign every seal in ``out`` with ``key`` (and rename so the digest chain still holds)."""
    import base64
    import hashlib

    from certificates import canonical_json
    from certificates.signing import b64url

    prev = "0" * 64
    for seal_path in sorted(out.glob("usage-*.seal.jws")):
        payload = json.loads(base64.urlsafe_b64decode(seal_path.read_text().split(".")[1] + "=="))
        day, old_parquet = payload["day"], out / payload["file"]
        name = f"usage-{day}-{prev[:16]}"
        payload.update(prev_digest=prev, file=f"{name}.parquet")
        head = b64url(canonical_json({"alg": "Ed25519", "kid": kid, "typ": "vnd.onewindow.usage-seal+jws", "ver": 1}))
        signing_input = f"{head}.{b64url(canonical_json(payload))}"
        jws = f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"
        seal_path.unlink()
        old_parquet.rename(out / f"{name}.parquet")
        (out / f"{name}.seal.jws").write_text(jws + "\n")
        prev = hashlib.sha256(jws.encode("ascii")).hexdigest()


def test_seals_verify_under_the_published_service_key_old_root_seals_too_unknown_signers_fail(layout, sealed, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from certificates.pki import _load_key, resolve_passphrase
    from certificates.trust import jwk_thumbprint

    store, trust = sealed
    kids = {json.loads(__import__("base64").urlsafe_b64decode(s.jws.split(".")[0] + "=="))["kid"]
            for s in store.seals()}
    assert kids == set(trust.services)  # the service key signed the seals
    # the root key alone no longer verifies them
    assert "signature" in verify_exports(export_dir(layout), trust.root.public_key()).first_broken.reason
    # seals made before the service key existed (signed by the root) still verify
    old = tmp_path / "old"
    shutil.copytree(export_dir(layout), old)
    root_key = _load_key(layout.keys / "root.key.pem", resolve_passphrase())
    _resign_seals(old, root_key, jwk_thumbprint(root_key.public_key()))
    assert verify_exports(old, trust).intact
    # a seal by any other key: unknown signer, even when it names the service kid
    rogue = Ed25519PrivateKey.generate()
    for kid, words in ((jwk_thumbprint(rogue.public_key()), "unknown signer"),
                       (next(iter(trust.services)), "does not verify")):
        bad = tmp_path / f"bad-{len(words)}"
        shutil.copytree(export_dir(layout), bad)
        _resign_seals(bad, rogue, kid)
        first = verify_exports(bad, trust).first_broken
        assert first is not None and first.day == "2026-11-10" and words in first.reason, first


def test_verify_log_cli_needs_the_published_trust_material(layout, sealed, monkeypatch, tmp_path):
    from exchange.cli import app

    monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(layout.root))
    out = CliRunner().invoke(app, ["audit", "verify-log", "--trust-dir", tmp_path])
    assert out.exit_code == 2 and "trust" in out.output
    shutil.copy(layout.trust / "root.pem", tmp_path / "root.pem")
    shutil.copy(layout.trust / "root.pem", tmp_path / "bundle.pem")  # a bundle without the service cert
    out = CliRunner().invoke(app, ["audit", "verify-log", "--trust-dir", tmp_path])
    assert out.exit_code == 1 and "unknown signer" in out.output, out.output


def test_status_route_reports_pending_and_failed_seals(layout, keys):
    from fastapi.testclient import TestClient

    from exchange.api.deps import get_now
    from exchange.api.main import create_app

    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: DAY1 + dt.timedelta(days=1)
    with TestClient(app) as http:
        store = app.state.service_store
        store.append_log({"n": 1}, at=DAY1)
        export_dir(layout).write_text("not a folder")
        seal_due(store, layout, None, at=DAY1 + dt.timedelta(days=1))
        body = http.get("/api/v1/usage-log/status").json()
        assert body["records"] == 1 and body["unsealed_days"] == ["2026-11-10"]
        assert body["failed_attempts"][0]["day"] == "2026-11-10" and body["last_sealed_day"] is None
        export_dir(layout).unlink()
        seal_due(store, layout, None, at=DAY1 + dt.timedelta(days=1))
        body = http.get("/api/v1/usage-log/status").json()
        assert body["last_sealed_day"] == "2026-11-10" and body["failed_attempts"] == [] and body["unsealed_days"] == []


def test_tampering_in_the_live_store_is_detected(layout, keys, monkeypatch):
    from typer.testing import CliRunner

    from exchange.cli import app

    store = open_store(layout)
    for i in range(5):
        store.append_log({"n": i, "decision": "denied"}, at=DAY1)
    assert verify_store_chain(store).intact
    db = open_store(layout)._db  # a connection of its own to the same store (autocommit), either backend
    db.execute("UPDATE usage_log SET record = replace(record, 'denied', 'granted') WHERE seq = 3")
    report = verify_store_chain(store)
    assert report.first_broken.seq == 3 and "edited" in report.first_broken.reason
    db.execute("DELETE FROM usage_log WHERE seq = 2")
    assert verify_store_chain(store).first_broken.seq == 2
    db.close()
    from certificates import publish_trust
    from certificates.pki import Keyring

    publish_trust(Keyring.load_or_create(layout, at=DAY1), layout.trust)
    monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(layout.root))
    out = CliRunner().invoke(app, ["audit", "verify-log", "--store"])
    assert out.exit_code == 1 and "seq=2" in out.output, out.output
