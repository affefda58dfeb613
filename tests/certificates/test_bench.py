"""The benchmark helpers run and report plausible numbers."""

from __future__ import annotations

import shutil

import pytest

from certificates.bench import bench_sign, openssl_ed25519_sign_rate


def test_bench_sign_runs():
    assert bench_sign(200) > 100


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_rate_parses():
    assert openssl_ed25519_sign_rate(seconds=1) > 100


def test_missing_openssl_is_a_clear_error(monkeypatch):
    from certificates.exceptions import OpenSSLUnavailable

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(OpenSSLUnavailable, match="install OpenSSL"):
        openssl_ed25519_sign_rate()
