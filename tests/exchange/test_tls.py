"""Mutual TLS: client certificates under the hub root authenticate a client on a real HTTPS server."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from exchange.api.core.config import ConfigError
from exchange.api.core.tls import ENV_CERT, ENV_CLIENT_CA, ENV_KEY, TLSSettings
from exchange.api.deps import get_now
from exchange.api.main import create_app
from tests.exchange.factories import (make_certificate, make_client, make_licence, make_person,
                                      make_snapshot, purpose_headers)
from tests.exchange.test_api import NOW, RESTAURANT
from tests.pipeline_helpers import data_dir

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL

GONGAN = "11330100002496126K"


@pytest.fixture()
def hub(layout):
    """A hub root in ``layout.keys`` (trust published), one person with an ID card licence on file."""
    from certificates import Keyring, publish_trust

    keyring = Keyring.load_or_create(layout.ensure(), at=dt.datetime(2026, 1, 1))
    publish_trust(keyring, layout.trust)
    person = make_person(name="赵敏")
    cert = make_certificate("id_card", person, valid_until=dt.date(2040, 3, 1))
    lic = make_licence(cert, keyring)
    make_snapshot(layout, subjects=[person], certificates=[cert], licences=[lic], snapshot_id="snap-tls")
    return {"person": person, "lic": lic}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _foreign_client_cert(out: Path, client_id: str) -> tuple[Path, Path]:
    """A clientAuth certificate naming ``client_id`` but signed by a CA that is not the hub root."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")])
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_id)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:onewindow:client:{client_id}")]), critical=False)
            .sign(ca_key, __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()))
    out.mkdir(parents=True, exist_ok=True)
    (out / "foreign.key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (out / "foreign.cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out / "foreign.cert.pem", out / "foreign.key.pem"


def test_certificates_name_the_client_and_settings_need_cert_and_key(layout, hub, tmp_path):
    from certificates.tls import client_id_of, issue_client_certificate, issue_server_certificate

    issued = issue_client_certificate(layout, "sys-gongan", GONGAN, "杭州市公安局", tmp_path / "c",
                                      at=dt.datetime(2026, 11, 1))
    cert = issued.certificate
    assert client_id_of(cert) == "sys-gongan"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "sys-gongan"
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    root = x509.load_pem_x509_certificate((layout.keys / "root.cert.pem").read_bytes())
    cert.verify_directly_issued_by(root)
    assert issued.key_path.stat().st_mode & 0o077 == 0, "the client key is private"
    server = issue_server_certificate(layout, ["127.0.0.1", "hub.example"], tmp_path / "s",
                                      at=dt.datetime(2026, 11, 1)).certificate
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    with pytest.raises(ValueError):
        issue_client_certificate(layout, "a/b", GONGAN, "x", tmp_path / "c", at=dt.datetime(2026, 11, 1))

    assert TLSSettings.from_env(layout, {}) is None
    with pytest.raises(ConfigError, match=ENV_KEY):
        TLSSettings.from_env(layout, {ENV_CERT: str(issued.cert_path)})
    with pytest.raises(ConfigError, match=ENV_CLIENT_CA):
        TLSSettings.from_env(layout, {ENV_CERT: str(issued.cert_path), ENV_KEY: str(issued.key_path),
                                      ENV_CLIENT_CA: str(tmp_path / "missing.pem")})
    tls = TLSSettings.from_env(layout, {ENV_CERT: str(issued.cert_path), ENV_KEY: str(issued.key_path)})
    assert tls.client_ca == layout.trust / "root.pem"
    assert tls.uvicorn_kwargs()["ssl_cert_reqs"] == ssl.CERT_OPTIONAL


@pytest.mark.service
def test_mutual_tls_on_a_real_https_server(layout, hub, tmp_path, monkeypatch):
    import uvicorn

    from certificates.tls import issue_server_certificate
    from exchange.cli import app as cli

    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: NOW
    store = app.state.service_store
    gongan_key = make_client(store, department=GONGAN, department_name="杭州市公安局", client_id="sys-gongan",
                             types=["id_card"], roles=())
    other_key = make_client(store, department=GONGAN, department_name="杭州市公安局", client_id="sys-other",
                            types=["id_card"], roles=())
    holder = hub["person"]["subject_code"]
    store.accept_application("HZ-TLS-1", RESTAURANT, holder, "clerk-1", "counter", at=NOW)

    # The admin command issues the client certificates (and registers them in the service store).
    runner = CliRunner()
    with data_dir(layout):
        for client_id in ("sys-gongan", "sys-other"):
            result = runner.invoke(cli, ["admin", "issue-client-cert", client_id, "--out", str(tmp_path / client_id)])
            assert result.exit_code == 0, result.output
        assert runner.invoke(cli, ["admin", "issue-client-cert", "nobody", "--out", str(tmp_path)]).exit_code == 1
    server_cert = issue_server_certificate(layout, ["127.0.0.1"], tmp_path / "server", at=NOW)
    tls = TLSSettings(server_cert.cert_path, server_cert.key_path, layout.trust / "root.pem")

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           **tls.uvicorn_kwargs()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def http(cert: tuple[Path, Path] | None = None) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "sys-gongan" / "hub-root.pem"))
        if cert:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        return httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=5)

    gongan = (tmp_path / "sys-gongan" / "sys-gongan.cert.pem", tmp_path / "sys-gongan" / "sys-gongan.key.pem")
    other = (tmp_path / "sys-other" / "sys-other.cert.pem", tmp_path / "sys-other" / "sys-other.key.pem")
    url = f"/api/v1/licences/{hub['lic']['licence_id']}"
    headers = {k: v for k, v in purpose_headers("", case="HZ-TLS-1").items() if k != "X-API-Key"}

    def last_log() -> dict:
        return json.loads(store.log_records()[-1].record)

    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"

        with http(gongan) as c:  # a valid client certificate, no API key
            resp = c.get(url, headers=headers)
            assert resp.status_code == 200, resp.text
            assert resp.json()["licence_id"] == hub["lic"]["licence_id"]
            assert (last_log()["client_id"], last_log()["decision"]) == ("sys-gongan", "granted")
            # the certificate and the client's own API key together: fine
            assert c.get(url, headers={**headers, "X-API-Key": gongan_key}).status_code == 200
            # the certificate with another client's API key: refused
            resp = c.get(url, headers={**headers, "X-API-Key": other_key})
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthenticated"

        with http() as c:  # no certificate, no key → 401; the API key alone still works over HTTPS
            resp = c.get(url, headers=headers)
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthenticated"
            assert "客户端证书" in resp.json()["error"]["message"]
            assert (last_log()["decision"], last_log()["rule"]) == ("denied", "unauthenticated")
            assert c.get(url, headers={**headers, "X-API-Key": gongan_key}).status_code == 200

        foreign = _foreign_client_cert(tmp_path / "foreign", "sys-gongan")
        try:
            with http(foreign) as c:
                status = c.get(url, headers=headers).status_code
        except httpx.TransportError:
            status = "handshake refused"
        assert status in ("handshake refused", 401)

        store.set_disabled("sys-gongan", True)  # a disabled client's certificate no longer works
        with http(gongan) as c:
            assert c.get(url, headers=headers).status_code == 401
        store.set_disabled("sys-gongan", False)
        with http(gongan) as c:
            assert c.get(url, headers=headers).status_code == 200

        with data_dir(layout):  # revoking the client's certificates: the TLS handshake works, the service says 401
            result = runner.invoke(cli, ["admin", "revoke-client-certs", "sys-gongan"])
            assert result.exit_code == 0 and "revoked 1" in result.output, result.output
        with http(gongan) as c:
            assert c.get(url, headers=headers).status_code == 401
        with http(other) as c:  # sys-other's certificate is untouched
            assert c.get(url, headers=headers).status_code == 200
            assert last_log()["client_id"] == "sys-other"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
