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


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_bench_issue_stores_verifiable_licences(tmp_path, mode):
    import datetime as dt

    from certificates.bench import bench_issue, bench_keyring, bench_verify, library_rows, sha256_rate
    from certificates.verify import verify_licence

    keyring = bench_keyring(tmp_path)
    rate, tokens = bench_issue(300, keyring=keyring, mode=mode, workdir=tmp_path)
    assert rate > 0 and len(tokens) == 300 and len(set(tokens)) == 300
    trust = keyring.trust()
    at = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)
    assert {verify_licence(t, trust, at=at).code for t in tokens} == {"valid"}
    assert bench_verify(tokens[:50], trust) > 0 and sha256_rate(300) > 0
    assert len(set(library_rows(300)["cert_key"])) == 300
    # it ran the build's own code: status list entries and (batch mode) the batch roots are stored too
    from warehouse.duck import connect

    con = connect(tmp_path / f"bench-{mode}.duckdb", read_only=True)
    assert con.execute("SELECT count(*) FROM licences WHERE status_list IS NULL OR mode <> ?",
                       [mode]).fetchone()[0] == 0
    batches = con.execute("SELECT count(*), coalesce(sum(size), 0) FROM licence_batches").fetchone()
    con.close()
    assert batches == ((2, 300) if mode == "batch" else (0, 0))  # two issuers: scjg and zrzy


def test_issue_workers_reports_the_pool_size():
    from certificates.bench import issue_workers

    assert issue_workers(1000, 2) == 1 and issue_workers(1_000_000, 2) == 2 and issue_workers(1_000_000, 1) == 1


def test_bench_verify_refuses_a_bad_token(tmp_path):
    from certificates.bench import bench_issue, bench_keyring, bench_verify

    keyring = bench_keyring(tmp_path)
    _, tokens = bench_issue(5, keyring=keyring, mode="single", workdir=tmp_path)
    with pytest.raises(RuntimeError):
        bench_verify([tokens[0][:-3] + "AAA"], keyring.trust())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_rates_parse_sign_and_verify():
    from certificates.bench import openssl_ed25519_rates

    sign, verify = openssl_ed25519_rates(seconds=1)
    assert sign > 100 and verify > 100


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_bench_licences_reports_verify_figures_with_their_anchor(tmp_path):
    from exchange.bench import bench_licences

    figures = bench_licences(tmp_path, licences=300)
    for name in ("verify_per_s", "verify_batch_per_s"):
        figure = figures[name]
        assert figure["anchor"] == "openssl_ed25519_verify_per_s" and figure["processes"] == 1
        assert figure["value"] > 0 and figure["ratio"] == round(figure["value"] / figure["anchor_value"], 4)
    assert figures["verify_batch_per_s"]["batches"] == 2  # 300 rows of two issuers: one batch each
    single = figures["issue_single_per_s"]  # 300 rows: issued in this process, anchor without -multi
    assert single["processes"] == 1 and single["anchor"] == "openssl_ed25519_sign_per_s"
    assert single["comparison"] == "1 issuing process vs openssl speed ed25519, best of 3 runs"
    assert single["anchor_runs"] == 3 and figures["verify_per_s"]["anchor_runs"] == 1
