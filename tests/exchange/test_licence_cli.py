"""``onewindow licence verify FILE``: offline, with the trust bundle and cached status lists; one exit code per outcome."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tests.certificates.factories import make_cert_row
from tests.pipeline_helpers import query
from warehouse.datadir import Layout
from warehouse.schema import CERT_COLUMNS

AT = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
CHECK = "2026-11-03T12:00:00+08:00"
ROWS = {  # cert number -> overrides
    "ok": {}, "suspended": {"status": "02"}, "revoked": {"status": "07"},
    "expired": {"valid_until": dt.date(2026, 11, 1)},
    "notyet": {"valid_from": dt.date(2026, 12, 1)},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("ONEWINDOW_ENV", "development")
    root = tmp_path_factory.mktemp("cli")
    mp.setenv("ONEWINDOW_DATA_DIR", str(root))
    from warehouse.build import issue_pending
    from warehouse.load import open_library

    layout = Layout(root).ensure()
    rows = []
    for i, (name, over) in enumerate(ROWS.items()):
        fields = {"cert_number": f"JY13301060000{i:03d}", "issue_date": dt.date(2026, 3, 1),
                  "valid_from": dt.date(2026, 3, 1), "valid_until": dt.date(2031, 2, 28), **over}
        r = make_cert_row(**fields)
        r.update(source_updated_at=dt.datetime(2026, 11, 1), content_hash=name, row_hash=name)
        rows.append({c: r.get(c) for c in CERT_COLUMNS})
    con = open_library(layout)
    con.register("new_certs", pa.Table.from_pylist(rows))
    con.execute(f"INSERT INTO certificates SELECT {', '.join(CERT_COLUMNS)} FROM new_certs")
    con.close()
    issue_pending(layout, at=AT)
    tokens = {}
    for i, name in enumerate(ROWS):
        [(token,)] = query(layout.library, "SELECT token FROM licences WHERE cert_key LIKE ?",
                           [f"%:JY13301060000{i:03d}:%"])
        path = root / f"{name}.jws"
        path.write_text(token + "\n")
        tokens[name] = path
    yield layout, tokens
    mp.undo()


def run(*args):
    from exchange.cli import app

    return CliRunner().invoke(app, ["licence", "verify", *map(str, args)])


@pytest.mark.parametrize("name,code,outcome", [
    ("ok", 0, "valid"), ("suspended", 16, "suspended"), ("revoked", 15, "revoked"),
    ("expired", 17, "expired"), ("notyet", 18, "not_yet_valid")])
def test_each_outcome_from_the_licence_and_the_cached_status_list(world, name, code, outcome):
    _, tokens = world
    result = run(tokens[name], "--at", CHECK)
    assert result.exit_code == code, result.output
    assert outcome in result.output


def test_the_status_comes_from_the_cached_list_not_the_signed_payload(world, tmp_path):
    layout, tokens = world
    from warehouse.load import open_library
    from warehouse.build import publish_status_lists
    from certificates import Keyring

    # revoke "ok" in the library; the rebuilt list says so, the licence still says 01
    status_dir = tmp_path / "status"
    import shutil

    shutil.copytree(layout.root / "status", status_dir)
    con = open_library(layout)
    try:
        con.execute("UPDATE certificates SET status = '03' WHERE cert_key LIKE '%:JY13301060000000:%'")
        keyring = Keyring.load_or_create(layout, at=AT)
        publish_status_lists(con, keyring, Layout(tmp_path), at=AT)
        con.execute("UPDATE certificates SET status = '01' WHERE cert_key LIKE '%:JY13301060000000:%'")
    finally:
        con.close()
    assert run(tokens["ok"], "--at", CHECK, "--status-dir", tmp_path / "status").exit_code == 15
    assert run(tokens["ok"], "--at", CHECK, "--status-dir", tmp_path / "empty").exit_code == 0


def test_tampered_malformed_and_unknown_issuer(world, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from certificates.batch import sign_batch
    from certificates.encoder import PayloadEncoder
    from certificates.trust import jwk_thumbprint

    _, tokens = world
    token = tokens["ok"].read_text().strip()
    h, p, s = token.split(".")
    bad = tmp_path / "bad.jws"
    bad.write_text(f"{h}.{p}.{s[:-4]}{'AAAA' if s[-4:] != 'AAAA' else 'BBBB'}")
    assert run(bad, "--at", CHECK).exit_code == 11
    bad.write_text("not a licence")
    assert run(bad, "--at", CHECK).exit_code == 20
    key = Ed25519PrivateKey.generate()
    rogue = sign_batch([PayloadEncoder(at=AT).encode(make_cert_row(issue_date=dt.date(2026, 3, 1)))[2]],
                       private_key=key, kid=jwk_thumbprint(key.public_key()), batch_id="rogue")
    bad.write_text(rogue.tokens[0])
    assert run(bad, "--at", CHECK).exit_code == 12


def test_issuer_certificate_outside_its_validity(world):
    _, tokens = world
    assert run(tokens["ok"], "--at", "2029-01-01T00:00:00+08:00").exit_code == 13  # issuer certs last 2 years
    assert run(tokens["ok"], "--at", "2026-10-01T00:00:00+08:00").exit_code == 14


def test_status_unavailable_when_the_cached_list_expired_or_was_tampered(world, tmp_path):
    import shutil

    layout, tokens = world
    result = run(tokens["ok"], "--at", "2026-11-09T12:00:00+08:00")
    assert result.exit_code == 19 and "status_unavailable" in result.output
    status_dir = tmp_path / "status"
    shutil.copytree(layout.root / "status", status_dir)
    [path] = list(status_dir.glob("*.jws"))
    text = path.read_text().strip()
    i = len(text) // 2
    path.write_text(text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:])
    assert run(tokens["ok"], "--at", CHECK, "--status-dir", status_dir).exit_code == 19


def test_no_trust_bundle_is_its_own_exit_code(world, tmp_path):
    _, tokens = world
    assert run(tokens["ok"], "--at", CHECK, "--trust-dir", tmp_path).exit_code == 2


def test_every_outcome_has_a_distinct_exit_code():
    from certificates import Outcome
    from exchange.commands.licence import EXIT_CODES, exit_code

    assert {exit_code(o) for o in Outcome} == set(EXIT_CODES.values())
    assert len(set(EXIT_CODES.values())) == len(Outcome) and exit_code(Outcome.VALID) == 0


def _use_copy(layout, token_path, *, at, signer=None):
    from certificates.pki import hub_service_key
    from certificates.usecopy import make_use_copy
    from tests.pipeline_helpers import query

    token = token_path.read_text().strip()
    [(licence_id,)] = query(layout.library, "SELECT licence_id FROM licences WHERE token = ?", [token])
    return make_use_copy(signer or hub_service_key(layout, at=AT), licence_id=licence_id, licence_token=token,
                         purpose={"item": "000120003000", "case": "K-1", "clerk": "c-1"},
                         requester={"client_id": "sys-1", "department": "11330100002496126K"},
                         at=at, ttl=dt.timedelta(hours=72), log_seq=1)["token"]


def test_use_copies_verify_offline_with_their_own_exit_codes(world, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from certificates.pki import HubServiceKey, hub_service_key
    from certificates.trust import service_kid

    layout, tokens = world
    issued = dt.datetime.fromisoformat(CHECK) - dt.timedelta(hours=1)
    path = tmp_path / "copy.jws"
    path.write_text(_use_copy(layout, tokens["ok"], at=issued))
    result = run(path, "--at", CHECK)
    assert result.exit_code == 0 and "valid" in result.output, result.output
    assert "加注件" in result.output and "K-1" in result.output
    result = run(path, "--at", (issued + dt.timedelta(hours=72)).isoformat())
    assert result.exit_code == 21 and "use_copy_expired" in result.output, result.output
    copy, _, licence = path.read_text().partition("~")  # presented: the copy, "~", its licence
    h, p, s = copy.split(".")
    path.write_text(f"{h}.{p}.{s[:-4]}{'AAAA' if s[-4:] != 'AAAA' else 'BBBB'}~{licence}")
    assert run(path, "--at", CHECK).exit_code == 11
    path.write_text(_use_copy(layout, tokens["revoked"], at=issued))  # the wrapped licence decides
    assert run(path, "--at", CHECK).exit_code == 15
    rogue = Ed25519PrivateKey.generate()
    hub = hub_service_key(layout, at=AT)
    path.write_text(_use_copy(layout, tokens["ok"], at=issued, signer=HubServiceKey(
        rogue, hub.certificate, hub.root, service_kid(rogue.public_key()))))
    assert run(path, "--at", CHECK).exit_code == 12


def test_a_status_list_signed_by_a_key_outside_the_trust_bundle_is_status_unavailable(world, tmp_path):
    """Also the hub service key: it is trusted for use-copies and seals, never for licence status."""
    from certificates.pki import hub_service_key
    from certificates.statuslist import StatusList, sign_status_list, write_list

    layout, tokens = world
    [real] = list((layout.root / "status").glob("*.jws"))
    from certificates import TrustStore

    genuine = StatusList.verify(real.read_text(), TrustStore.from_dir(layout.trust))
    import base64
    import json

    body = tokens["revoked"].read_text().strip().split(".")[1]
    ref = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["credential_status"]
    assert genuine.status(ref["index"]) == "07"
    hub = hub_service_key(layout, at=AT)
    forged = sign_status_list(list_id=genuine.list_id, issuer_code=genuine.issuer_code, kid=hub.kid,
                              private_key=hub.private_key, statuses={ref["index"]: "01"}, at=AT)
    write_list(tmp_path / "status", genuine.list_id, forged)
    result = run(tokens["revoked"], "--at", CHECK, "--status-dir", tmp_path / "status")
    assert result.exit_code == 19 and "状态列表" in result.output, result.output
