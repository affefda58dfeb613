"""The scale benchmark end to end at tiny sizes: real pipeline, real server, real wrk, real memory."""

from __future__ import annotations

import json
import math

import pytest

from exchange.scale_bench import PIPELINE, ScaleBenchError, parse_sizes


def test_sizes_parse_and_bad_sizes_say_what_is_wrong():
    assert parse_sizes(None) == (1_000_000, 3_000_000, 10_000_000)
    assert parse_sizes("1m, 3m,10m") == (1_000_000, 3_000_000, 10_000_000)
    assert parse_sizes("300,600,2k") == (300, 600, 2_000)
    with pytest.raises(ScaleBenchError, match="'ten' is not a size"):
        parse_sizes("1m,ten")
    with pytest.raises(ScaleBenchError, match="ascending"):
        parse_sizes("3m,1m")
    with pytest.raises(ScaleBenchError, match="'50' is not a size of at least 100"):
        parse_sizes("50")


def test_a_size_that_cannot_fit_in_memory_is_refused_with_the_prediction():
    from exchange.scale_bench import memory_refusal

    prev = {"persons": 3_000_000, "label": "3m", "peak_rss_mb": {"ingest": 10_984.9, "lookup": 9_000.0}}
    no = memory_refusal(prev, 10_000_000, available_mb=20_000)
    assert no["label"] == "10m" and no["predicted_peak_mb"] == round(10_984.9 / 3 * 10, 1)
    assert "exceeds the 20,000 MB available" in no["reason"] and "ONEWINDOW_BENCH_SCALE_FORCE" in no["reason"]
    assert memory_refusal(prev, 5_000_000, available_mb=20_000) is None


def _real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@pytest.mark.slow
@pytest.mark.service
def test_scale_bench_runs_end_to_end_at_tiny_sizes(tmp_path, monkeypatch, capsys):
    from rich.console import Console

    from exchange.bench import run_benchmarks

    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    monkeypatch.setenv("ONEWINDOW_BENCH_SCALE_SIZES", "300,600")
    monkeypatch.setenv("ONEWINDOW_BENCH_SCALE_SECONDS", "1")
    monkeypatch.setenv("ONEWINDOW_BENCH_SCALE_LOCK", str(tmp_path / "heavy.lock"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("ONEWINDOW_DUCKDB_MEMORY_LIMIT", raising=False)  # the bench sets its own bound
    monkeypatch.delenv("ONEWINDOW_DUCKDB_TEMP_DIR", raising=False)
    run_benchmarks(persons=300, only=["scale"], as_json=True, console=Console(stderr=True))
    result = json.loads(capsys.readouterr().out)
    scale = result["scale"]
    assert scale["sizes"] == [300, 600] and scale["skipped"] == []
    assert list(scale["per_size"]) == ["300", "600"]
    for label, n in (("300", 300), ("600", 600)):
        r = scale["per_size"][label]
        assert r["persons"] == n
        assert r["subjects"] == n and r["certificates"] > n and r["licences"] == r["certificates"]
        assert r["source_rows"]["gongan_population"] == n
        for phase in (*PIPELINE, "simulate", "pipeline"):
            assert _real(r["seconds"][phase]) and r["seconds"][phase] > 0, (label, phase, r["seconds"])
            assert _real(r["us_per_person"][phase]) and r["us_per_person"][phase] > 0
        assert math.isclose(r["seconds"]["pipeline"], sum(r["seconds"][p] for p in PIPELINE), abs_tol=0.05)
        # memory was sampled in every phase and is at least a Python process with DuckDB loaded
        for phase in (*PIPELINE, "simulate", "lookup"):
            assert _real(r["peak_rss_mb"][phase]) and r["peak_rss_mb"][phase] > 50, (phase, r["peak_rss_mb"])
        for phase, mb in r["largest_process_mb"].items():
            assert _real(mb) and 20 < mb <= r["peak_rss_mb"][phase] + 0.1, (phase, r["largest_process_mb"])
        assert r["ru_maxrss_mb"]["main"] > 50
        # each size's DuckDB ran under a bound of a third of the machine (the child's environment)
        import psutil

        from exchange.scale_bench import duckdb_memory_limit_gb

        assert r["duckdb_memory_limit"] == f"{duckdb_memory_limit_gb(psutil.virtual_memory().total)}GB"
        assert r["disk_mb"] > 0 and 0 < r["snapshot_mb"] <= r["disk_mb"]
        assert 0 < r["licence_files_mb"] < r["disk_mb"] and r["disk_mb_by_dir"]["departments"] > 0
        assert sum(r["disk_mb_by_dir"].values()) <= r["disk_mb"] + 0.5
        lk = r["lookup"]
        assert 20 < lk["server_rss_mb"] <= r["peak_rss_mb"]["lookup"] + 0.1
        assert 0 < lk["server_anon_mb"] <= lk["server_rss_mb"] + 0.1  # heap alone, without mapped file pages
        assert lk["requests"] > 0 and lk["rps"] > 0 and lk["holders_rotated"] > 0
        assert 0 < lk["p50_ms"] <= lk["p99_ms"] and lk["anchor_p99_ms"] > 0
        assert _real(lk["p99_ratio"]) and lk["p99_ratio"] > 0
    g = scale["growth_step"][0]
    assert (g["from"], g["to"], g["size_ratio"]) == ("300", "600", 2.0)
    small, big = scale["per_size"]["300"], scale["per_size"]["600"]
    expected = round(big["us_per_person"]["issuance"] / small["us_per_person"]["issuance"], 4)
    assert math.isclose(g["time_per_person"]["issuance"], expected, rel_tol=1e-3)
    assert all(_real(v) and v > 0 for v in g["time_per_person"].values())
    assert all(_real(v) and v > 0 for v in g["peak_rss_per_person"].values())
    assert _real(g["lookup_p99"]) and _real(g["disk_per_person"])
    assert scale["growth_from_first"][0] == g  # two sizes: the step is the growth from the first
    # the main table carries the per-size figures with the first size as anchor
    f = result["figures"]
    assert f["scale_issuance_us_per_person_300"]["ratio"] == 1.0
    assert f["scale_issuance_us_per_person_600"]["anchor"] == "scale_issuance_us_per_person_300"
    assert f["scale_lookup_p99_ms_600"]["anchor"] == "bare_fastapi_get_p99_ms"
    # each size's data directory is removed once measured
    assert not list(tmp_path.glob("onewindow-bench-*/scale-*/"))


def test_scale_curve_renders_from_a_section():
    """The console curve: one bar per phase and size, the growth line per step."""
    import io

    from rich.console import Console

    from exchange.scale_bench import growth, render

    def rec(n, us, p99):
        return {"persons": n, "label": str(n), "certificates": 2 * n,
                "seconds": {"ingest": us * n / 1e6, "issuance": us * n / 1e6, "library_build": us * n / 1e6},
                "us_per_person": {"simulate": us, "ingest": us, "issuance": us, "library_build": us,
                                  "pipeline": 3 * us},
                "peak_rss_mb": {"ingest": n / 1000, "issuance": n / 1000, "library_build": 1.0, "lookup": 2.0},
                "disk_mb": n / 1e4, "lookup": {"p99_ms": p99, "p99_ratio": 2.0}}
    a, b = rec(1000, 10.0, 4.0), rec(2000, 20.0, 8.0)
    section = {"per_size": {"1000": a, "2000": b}, "growth_step": [growth(a, b)]}
    out = io.StringIO()
    render(section, Console(file=out, width=120))
    text = out.getvalue()
    assert text.count("issuance ") >= 2 and "1000→2000 (x2 persons)" in text
    assert "issuance x2.0" in text and "lookup p99 x2.0" in text


def test_a_size_whose_lookup_fails_keeps_its_pipeline_figures(tmp_path, monkeypatch):
    """A hub that cannot start on a size's snapshot (say, out of memory) leaves that size's
    pipeline record standing, with the reason in place of the lookup figures; the curve and
    the growth ratios still render, and the main table simply has no lookup figure for it."""
    import io

    from rich.console import Console

    import exchange.scale_bench as sb
    from exchange.serve_bench import BenchError

    seen = {}

    def no_server(layout, snapshot, *, seconds, certificates=0):
        seen["certificates"] = certificates
        raise BenchError("exchange.api.main:create_app exited with -9 at start: Killed")

    monkeypatch.setenv("ONEWINDOW_ENV", "development")
    monkeypatch.setattr(sb, "measure_lookup", no_server)
    monkeypatch.delenv("ONEWINDOW_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("ONEWINDOW_DUCKDB_TEMP_DIR", raising=False)
    r = sb.measure_size(300, tmp_path / "scale-300", seconds=1)
    assert seen["certificates"] == r["certificates"] > 300
    assert r["lookup"]["p99_ms"] is None and "exited with -9" in r["lookup"]["error"]
    assert r["seconds"]["issuance"] > 0 and r["licences_issued"] == r["certificates"]
    ok = dict(r, persons=150, label="150", lookup={"p99_ms": 3.0, "p99_ratio": 1.5, "anchor_p99_ms": 2.0})
    g = sb.growth(ok, r)
    assert g["lookup_p99"] is None and g["time_per_person"]["issuance"] > 0
    out = io.StringIO()
    sb.render({"per_size": {"150": ok, "300": r}, "growth_step": [g]}, Console(file=out, width=160))
    assert "failed" in out.getvalue() and "exited with -9" in out.getvalue()
