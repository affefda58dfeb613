"""The scale benchmark: the whole pipeline at several population sizes, as a curve.

For each size in ``ONEWINDOW_BENCH_SCALE_SIZES`` (default ``1m,3m,10m``) a child process
(``python -m exchange.scale_bench``) simulates that many persons (defect rate 0), then runs
the real pipeline steps on them and times each phase:

``simulate``
    the simulated department systems are written (not part of the hub's cost; reported so the
    bench's own wall time is explained);
``ingest``
    extract → validate (great-expectations suite in DuckDB) → load, for the population register
    and the marriage drops (every person's ID card and 户口簿, plus the marriage certificates);
``issuance``
    ``warehouse.build.issue_pending``: a licence signed and stored per certificate, status lists;
``library_build``
    the rest of the ``onewindow_library_build`` DAG: the issued-licence quality suite and the
    published read-only snapshot (``publish_step``);
``lookup``
    the snapshot served by the hub (uvicorn, one worker) and driven by ``wrk`` (32 connections)
    for ``ONEWINDOW_BENCH_SCALE_SECONDS`` (10) over up to 20,000 holders' licences, with the bare
    FastAPI anchor measured right before it (``exchange.serve_bench``).

Peak memory is measured, not estimated: a sampler thread in the child sums the resident set
of the child and all its descendants (issuance workers, the hub server) every 50 ms with
psutil, per phase (``peak_rss_mb``), and the largest single process in it
(``largest_process_mb``: in the lookup phase, the hub server); the kernel's own high-water
mark of the child (``ru_maxrss``) is reported beside it. Disk is the size of the data directory
after publishing.

The parent takes ``ONEWINDOW_BENCH_SCALE_LOCK`` (a lock file, e.g. /tmp/onewindow-heavy.lock)
around each size only, so other benchmarks can run between sizes; a size's data directory is
removed once it is measured. A size whose peak memory, predicted linearly from the previous
size's measured peak, exceeds the memory available is not run but listed under ``skipped``
with the prediction (``ONEWINDOW_BENCH_SCALE_FORCE=1`` runs it anyway). Growth ratios (time per person, peak memory per person, p99 at
one size over the previous and over the first size) come from one run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SIZES_ENV = "ONEWINDOW_BENCH_SCALE_SIZES"
SECONDS_ENV = "ONEWINDOW_BENCH_SCALE_SECONDS"
LOCK_ENV = "ONEWINDOW_BENCH_SCALE_LOCK"
FORCE_ENV = "ONEWINDOW_BENCH_SCALE_FORCE"  # run a size even when its predicted peak memory exceeds what is free
DEFAULT_SIZES = (1_000_000, 3_000_000, 10_000_000)
PHASES = ("simulate", "ingest", "issuance", "library_build")
PIPELINE = ("ingest", "issuance", "library_build")  # the hub's own cost
SOURCES = ("gongan_population", "minzheng_marriages")
SEED = 11


class ScaleBenchError(RuntimeError):
    """The scale benchmark could not run (bad sizes, a size's child process failed)."""


def parse_sizes(text: str | None) -> tuple[int, ...]:
    """``"1m,3m,10m"`` / ``"1000000, 3000000"`` / ``"300,600"`` → sizes, ascending, each at least 100."""
    if not text or not text.strip():
        return DEFAULT_SIZES
    sizes = []
    for part in text.split(","):
        raw = part.strip().lower().replace("_", "")
        mult = {"k": 1_000, "m": 1_000_000}.get(raw[-1:], 1)
        digits = raw[:-1] if mult > 1 else raw
        if not digits.isdigit() or int(digits) * mult < 100:
            raise ScaleBenchError(f"{SIZES_ENV}: {part.strip()!r} is not a size of at least 100 persons "
                                  f"(write e.g. 1m,3m,10m or 1000000,3000000)")
        sizes.append(int(digits) * mult)
    if sorted(set(sizes)) != sizes:
        raise ScaleBenchError(f"{SIZES_ENV}: sizes must be distinct and ascending, got {text!r}")
    return tuple(sizes)


def label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    return f"{n // 1_000}k" if n % 1_000 == 0 else str(n)


# ----------------------------------------------------------------------------- memory
class TreeSampler:
    """Peak resident set (MB) of this process and every descendant, per named phase."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._me = psutil.Process()
        self._interval = interval
        self._phase: str | None = None
        self.peaks: dict[str, float] = {}
        self.largest: dict[str, float] = {}  # the largest single process (e.g. the hub server) per phase
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _tree_rss(self) -> tuple[int, int]:
        """(sum, largest) resident set in bytes over this process and its descendants."""
        import psutil

        total = largest = 0
        try:
            procs = [self._me, *self._me.children(recursive=True)]
        except psutil.Error:
            return 0, 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                rss = p.memory_info().rss
                total += rss
                largest = max(largest, rss)
        return total, largest

    def _sample(self) -> None:
        phase = self._phase
        if phase is not None:
            total, largest = self._tree_rss()
            self.peaks[phase] = max(self.peaks.get(phase, 0.0), total / 2**20)
            self.largest[phase] = max(self.largest.get(phase, 0.0), largest / 2**20)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._phase = name
        self._sample()
        try:
            yield
        finally:
            self._sample()
            self._phase = None

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _proc_tree_rss(pid: int) -> int:
    import psutil

    root = psutil.Process(pid)
    total = 0
    for p in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _proc_tree_anon(pid: int) -> int:
    """Anonymous (heap) bytes of ``pid`` and its descendants: the resident set without the pages of
    mapped files (the hub maps its index files; those pages are page cache the kernel can drop)."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    for p in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.Error, OSError, ValueError, StopIteration):
            with open(f"/proc/{p.pid}/smaps_rollup", encoding="ascii") as fh:
                line = next(ln for ln in fh if ln.startswith("Anonymous:"))
            total += int(line.split()[1]) * 1024
    return total


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- one size (child)
def measure_size(persons: int, root: Path, *, seconds: float, log: Any = None) -> dict:
    """Run every phase at ``persons`` in data directory ``root``; return the size's record."""
    from exchange.departments import BASE_DATE
    from exchange.pipeline import _check_issued_licences, extract_step, load_step, publish_step, validate_step
    from exchange.serve_bench import _environ
    from exchange.sources.interval import Interval
    from warehouse.build import issue_pending
    from warehouse.licence_store import files_dir
    from warehouse.datadir import ENV_VAR, Layout
    from warehouse.duck import MEMORY_LIMIT_ENV

    layout = Layout(root).ensure()
    interval = Interval.for_day(BASE_DATE)
    at_iso = interval.end.isoformat()
    secs: dict[str, float] = {}
    detail: dict[str, float] = {}
    rows: dict[str, int] = {}

    def say(msg: str) -> None:
        if log:
            log(f"scale {label(persons)}: {msg}")

    with TreeSampler() as mem, _environ(**{ENV_VAR: str(layout.root)}):
        say("simulating the departments …")
        with mem.phase("simulate"):
            t0 = time.perf_counter()
            _simulate_apart(layout.root, persons)
            secs["simulate"] = time.perf_counter() - t0
        say("ingesting …")
        with mem.phase("ingest"):
            t0 = time.perf_counter()
            for source_id in SOURCES:
                t = time.perf_counter()
                extracted = extract_step(source_id, interval.key)
                detail[f"{source_id}.extract"] = time.perf_counter() - t
                t = time.perf_counter()
                checked = validate_step(extracted, run_id=f"scale_{source_id}")
                detail[f"{source_id}.validate"] = time.perf_counter() - t
                t = time.perf_counter()
                loaded = load_step(checked, run_id=f"scale_{source_id}", finished_at=at_iso)
                detail[f"{source_id}.load"] = time.perf_counter() - t
                rows[source_id] = extracted["rows"]
                if checked["quarantined"]:
                    raise ScaleBenchError(f"{source_id}: {checked['quarantined']} rows quarantined at defect rate 0")
                del loaded
            secs["ingest"] = time.perf_counter() - t0
        say("issuing licences …")
        with mem.phase("issuance"):
            t0 = time.perf_counter()
            built = issue_pending(layout, at=dt.datetime.fromisoformat(at_iso),
                                  published_at=dt.datetime.now(dt.timezone.utc))
            secs["issuance"] = time.perf_counter() - t0
        say("checking issued licences and publishing the snapshot …")
        with mem.phase("library_build"):
            t0 = time.perf_counter()
            t = time.perf_counter()
            _check_issued_licences(at_iso)
            detail["check_issued"] = time.perf_counter() - t
            t = time.perf_counter()
            published = publish_step(at_iso)
            detail["publish"] = time.perf_counter() - t
            secs["library_build"] = time.perf_counter() - t0
        disk = _dir_bytes(layout.root)
        disk_parts = {d.name: round(_dir_bytes(d) / 2**20, 1) for d in sorted(layout.root.iterdir()) if d.is_dir()}
        licence_files = _dir_bytes(files_dir(layout))
        snapshot_bytes = Path(published["path"]).stat().st_size
        say(f"lookup under wrk for {seconds:.0f} s …")
        with mem.phase("lookup"):
            try:
                lookup = measure_lookup(layout, Path(published["path"]), seconds=seconds,
                                        certificates=published["counts"]["certificates"])
            except Exception as exc:  # the pipeline's figures stand; the record says why lookup has none
                say(f"lookup failed: {exc}")
                lookup = {"error": f"{type(exc).__name__}: {str(exc)[-1500:]}", "p99_ms": None, "rps": None,
                          "p99_ratio": None, "anchor": "bare_fastapi_get_p99_ms", "anchor_p99_ms": None}
    counts = published["counts"]
    # the kernel's high-water mark of this process; a child's ru_maxrss starts from its parent's
    # at fork (and survives exec), so the servers' and workers' own peaks are the sampled ones
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "persons": persons, "label": label(persons),
        "certificates": counts["certificates"], "licences": counts["licences"], "subjects": counts["subjects"],
        "source_rows": rows, "licences_issued": built.issued,
        "seconds": {k: round(v, 2) for k, v in secs.items()} | {
            "pipeline": round(sum(secs[p] for p in PIPELINE), 2)},
        "seconds_detail": {k: round(v, 2) for k, v in detail.items()},
        "us_per_person": {k: round(v / persons * 1e6, 2) for k, v in secs.items()} | {
            "pipeline": round(sum(secs[p] for p in PIPELINE) / persons * 1e6, 2)},
        "us_per_certificate": {p: round(secs[p] / counts["certificates"] * 1e6, 2) for p in PIPELINE},
        "peak_rss_mb": {k: round(v, 1) for k, v in mem.peaks.items()},
        "duckdb_memory_limit": os.environ.get(MEMORY_LIMIT_ENV),
        "largest_process_mb": {k: round(v, 1) for k, v in mem.largest.items()},
        "ru_maxrss_mb": {"main": round(self_rss, 1)},
        "disk_mb": round(disk / 2**20, 1), "disk_mb_by_dir": disk_parts,
        "licence_files_mb": round(licence_files / 2**20, 1), "snapshot_mb": round(snapshot_bytes / 2**20, 1),
        "lookup": lookup,
    }


def _simulate(root: str, persons: int) -> None:
    from exchange.departments import simulate
    from warehouse.datadir import Layout

    simulate(Layout(Path(root)), persons=persons, seed=SEED, day=0, defect_rate=0.0)


def _simulate_apart(root: Path, persons: int) -> None:
    """The simulated departments, written by a process of their own: their generators' memory
    (10 GB at 10M persons) is freed when it exits instead of staying in the heap of the process
    that then runs the hub's steps (the departments are other systems, not the hub)."""
    import multiprocessing

    proc = multiprocessing.get_context("spawn").Process(target=_simulate, args=(str(root), persons),
                                                        name="simulated-departments")
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise ScaleBenchError(f"simulating {persons:,} persons failed (exit {proc.exitcode}); see the output above")


def duckdb_memory_limit_gb(total_bytes: int) -> int:
    """The DuckDB memory bound for a size's child: a third of the machine (at least 1 GB), so
    DuckDB's operators spill instead of taking 80% of it beside the process's own data."""
    return max(1, total_bytes // 3 // 2**30)


START_SECONDS_PER_MILLION = 45.0  # the hub's start timeout per million certificates (measured: ~30 s)


def measure_lookup(layout, snapshot: Path, *, seconds: float, certificates: int = 0) -> dict:
    """p99 of the hub's licence lookup on this snapshot, with the bare FastAPI anchor just before it.

    The hub loads the snapshot's index at start, in time growing with its ``certificates``:
    it is given 300 s + ``START_SECONDS_PER_MILLION`` per million of them to answer."""
    from exchange.serve_bench import ENV_VAR, LUA, Server, prepare_workload, run_wrk

    work = layout.root / "scale-lookup"
    work.mkdir(exist_ok=True)
    load = prepare_workload(layout, snapshot, work)
    script = work / "rotate.lua"
    script.write_text(LUA, encoding="utf-8")
    bare_lines = work / "bare_get.tsv"
    bare_lines.write_text("GET\t/bare\t-\t\n", encoding="utf-8")
    env = {ENV_VAR: str(layout.root), "ONEWINDOW_ENV": os.environ.get("ONEWINDOW_ENV", "development")}
    run = dict(api_key=load.api_key, item=load.items[0], script=script)
    with Server("exchange.serve_bench:bare_app", env=env, probe="/worker", log_path=work / "bare.log") as bare:
        run_wrk(bare.url + "/bare", bare_lines, seconds=1, **run)
        anchor = run_wrk(bare.url + "/bare", bare_lines, seconds=seconds, **run)
    t0 = time.perf_counter()
    hub = Server("exchange.api.main:create_app", env=env, probe="/healthz", log_path=work / "hub.log")
    hub.start(timeout=300 + START_SECONDS_PER_MILLION * certificates / 1e6)
    try:
        ready = time.perf_counter() - t0
        run_wrk(hub.url, load.lookup_lines, seconds=2, **run)  # warm-up
        got = run_wrk(hub.url, load.lookup_lines, seconds=seconds, **run)
        server_mb = _proc_tree_rss(hub.proc.pid) / 2**20  # the hub server (and its workers) after the run
        server_anon_mb = _proc_tree_anon(hub.proc.pid) / 2**20
    finally:
        hub.stop()
    if got.non_2xx or got.socket_errors or not got.requests:
        raise ScaleBenchError(f"lookup: {got.non_2xx} non-2xx answers and {got.socket_errors} socket errors in "
                              f"{got.requests} requests; see {work / 'hub.log'}")
    return {"p99_ms": round(got.p99_ms, 2), "p50_ms": round(got.p50_ms, 2), "rps": round(got.rps, 1),
            "requests": got.requests, "holders_rotated": load.distinct_holders,
            "server_start_s": round(ready, 2), "server_rss_mb": round(server_mb, 1),
            "server_anon_mb": round(server_anon_mb, 1),
            "anchor": "bare_fastapi_get_p99_ms", "anchor_p99_ms": round(anchor.p99_ms, 2),
            "anchor_rps": round(anchor.rps, 1),
            "p99_ratio": round(got.p99_ms / anchor.p99_ms, 4) if anchor.p99_ms else None}


# ----------------------------------------------------------------------------- the run (parent)
@contextlib.contextmanager
def _held(lock_path: str | None) -> Iterator[float]:
    """Hold ``lock_path`` (flock) for the block; yields the seconds spent waiting for it."""
    if not lock_path:
        yield 0.0
        return
    t0 = time.perf_counter()
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield time.perf_counter() - t0
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_size(persons: int, workdir: Path, *, seconds: float, log: Any = None) -> dict:
    """One size in a child process of its own (clean ``ru_maxrss``), under the optional lock."""
    root = workdir / f"scale-{persons}"
    out = workdir / f"scale-{persons}.json"
    shutil.rmtree(root, ignore_errors=True)
    cmd = [sys.executable, "-m", "exchange.scale_bench", str(persons), str(root), str(out), str(seconds)]
    import psutil

    from warehouse.duck import MEMORY_LIMIT_ENV, TEMP_DIR_ENV

    env = os.environ.copy()
    env.setdefault(MEMORY_LIMIT_ENV, f"{duckdb_memory_limit_gb(psutil.virtual_memory().total)}GB")
    spill = workdir / f"scale-{persons}.duckdb-spill"  # beside the data directory: not counted as its disk
    env.setdefault(TEMP_DIR_ENV, str(spill))
    with _held(os.environ.get(LOCK_ENV)) as waited:
        if log:
            log(f"scale {label(persons)}: started (waited {waited:.0f} s for the lock)")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=2, stderr=2)  # keep stdout for --json
        wall = time.perf_counter() - t0
    try:
        if proc.returncode != 0 or not out.is_file():
            raise ScaleBenchError(f"scale bench at {persons:,} persons failed (exit {proc.returncode}); "
                                  f"its output is above, its data directory is {root}")
        record = json.loads(out.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(spill, ignore_errors=True)
        if proc.returncode == 0:
            shutil.rmtree(root, ignore_errors=True)
    record["child_wall_s"] = round(wall, 1)
    return record


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(b / a, 4) if a and b is not None else None


def growth(base: dict, top: dict) -> dict:
    """How each figure per person (or absolute, for p99) grew from ``base`` to ``top``; 1.0 = linear."""
    return {
        "from": base["label"], "to": top["label"], "size_ratio": round(top["persons"] / base["persons"], 4),
        "time_per_person": {k: _ratio(base["us_per_person"][k], top["us_per_person"][k])
                            for k in (*PHASES, "pipeline")},
        "peak_rss_per_person": {k: _ratio(base["peak_rss_mb"][k] / base["persons"],
                                          top["peak_rss_mb"][k] / top["persons"])
                                for k in base["peak_rss_mb"] if k in top["peak_rss_mb"]},
        "peak_rss": {k: _ratio(base["peak_rss_mb"][k], top["peak_rss_mb"][k])
                     for k in base["peak_rss_mb"] if k in top["peak_rss_mb"]},
        "disk_per_person": _ratio(base["disk_mb"] / base["persons"], top["disk_mb"] / top["persons"]),
        "lookup_p99": _ratio(base["lookup"].get("p99_ms"), top["lookup"].get("p99_ms")),
        "lookup_p99_ratio_to_anchor": _ratio(base["lookup"].get("p99_ratio"), top["lookup"].get("p99_ratio")),
    }


def _available_mb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**20


def memory_refusal(prev: dict, persons: int, available_mb: float) -> dict | None:
    """Why ``persons`` should not run, if the previous size's measured peak per person, scaled
    linearly, exceeds the memory available now (it would swap or be OOM-killed on a shared machine)."""
    peak = max(prev["peak_rss_mb"].values())
    need = peak / prev["persons"] * persons
    if need <= available_mb:
        return None
    return {"persons": persons, "label": label(persons), "predicted_peak_mb": round(need, 1),
            "available_mb": round(available_mb, 1), "from": prev["label"],
            "reason": (f"predicted peak {need:,.0f} MB ({prev['label']}'s measured {peak:,.0f} MB scaled "
                       f"linearly) exceeds the {available_mb:,.0f} MB available; set {FORCE_ENV}=1 to run it anyway")}


def bench_scale(workdir: Path, log: Any = None, sizes: tuple[int, ...] | None = None,
                seconds: float | None = None) -> tuple[dict, dict[str, dict]]:
    """Every size, then growth ratios. Returns (the ``scale`` JSON section, figures for the main table)."""
    sizes = sizes or parse_sizes(os.environ.get(SIZES_ENV))
    seconds = seconds if seconds is not None else float(os.environ.get(SECONDS_ENV, 10))
    records: list[dict] = []
    skipped: list[dict] = []
    for n in sizes:
        if records and not os.environ.get(FORCE_ENV):
            too_big = memory_refusal(records[-1], n, _available_mb())
            if too_big:
                skipped.append(too_big)
                if log:
                    log(f"scale {label(n)}: skipped: {too_big['reason']}")
                continue
        records.append(run_size(n, workdir, seconds=seconds, log=log))
        # each size's record as soon as it is measured, so a run stopped before its last size keeps the rest
        print("SCALE_RECORD " + json.dumps(records[-1], ensure_ascii=False), file=sys.stderr, flush=True)
    section = {
        "sizes": [r["persons"] for r in records],
        "per_size": {r["label"]: r for r in records},
        "growth_step": [growth(a, b) for a, b in zip(records, records[1:])],
        "growth_from_first": [growth(records[0], r) for r in records[1:]],
        "skipped": skipped, "lookup_seconds": seconds, "cpus": os.cpu_count(),
    }
    from exchange.bench import _figure

    first = records[0]
    figures: dict[str, dict] = {}
    for r in records:
        for k in PIPELINE:
            figures[f"scale_{k}_us_per_person_{r['label']}"] = _figure(
                r["us_per_person"][k], "us/person", f"scale_{k}_us_per_person_{first['label']}",
                first["us_per_person"][k])
        if r["lookup"].get("p99_ms") is not None:
            figures[f"scale_lookup_p99_ms_{r['label']}"] = _figure(
                r["lookup"]["p99_ms"], "ms", "bare_fastapi_get_p99_ms", r["lookup"]["anchor_p99_ms"])
    return section, figures


def _hub_peak(r: dict) -> float:
    """Peak RSS over the hub's own phases (the simulated departments are the bench's, not the hub's)."""
    return max(r["peak_rss_mb"].get(k, 0.0) for k in (*PIPELINE, "lookup"))


def render(section: dict, console: Any) -> None:
    """The curve: a table per size and bars of µs per person per phase (equal bars = linear cost)."""
    from rich.table import Table

    records = list(section["per_size"].values())
    table = Table(title="Scale (one run; us/person flat across sizes = linear cost)")
    for col in ("persons", "certificates", "ingest s", "issuance s", "library build s", "pipeline us/person",
                "peak RSS MB (hub phases)", "disk MB", "lookup p99 ms", "p99 / bare"):
        table.add_column(col, justify="right")
    for r in records:
        table.add_row(f"{r['persons']:,}", f"{r['certificates']:,}", f"{r['seconds']['ingest']:,.1f}",
                      f"{r['seconds']['issuance']:,.1f}", f"{r['seconds']['library_build']:,.1f}",
                      f"{r['us_per_person']['pipeline']:,.1f}", f"{_hub_peak(r):,.0f}",
                      f"{r['disk_mb']:,.0f}",
                      f"{r['lookup']['p99_ms']:.2f}" if r["lookup"].get("p99_ms") is not None else "failed",
                      f"{r['lookup']['p99_ratio']:.2f}" if r["lookup"].get("p99_ratio") else "-")
    console.print(table)
    top = max(r["us_per_person"][k] for r in records for k in PIPELINE) or 1.0
    lines = ["us per person by phase (each # = {:.1f} us)".format(top / 40)]
    for k in PIPELINE:
        for r in records:
            v = r["us_per_person"][k]
            lines.append(f"{k:>13} {r['label']:>5} |{'#' * max(1, round(v / top * 40)):<40}| {v:,.1f}")
    top_mb = max(_hub_peak(r) / r["persons"] * 1e6 for r in records) or 1.0
    lines.append("peak RSS per million persons (MB), max over the hub's phases")
    for r in records:
        v = _hub_peak(r) / r["persons"] * 1e6
        lines.append(f"{'peak RSS':>13} {r['label']:>5} |{'#' * max(1, round(v / top_mb * 40)):<40}| {v:,.0f}")
    top_p99 = max((r["lookup"].get("p99_ms") or 0.0) for r in records) or 1.0
    lines.append("lookup p99 (ms)")
    for r in records:
        v = r["lookup"].get("p99_ms")
        if v is None:
            lines.append(f"{'lookup p99':>13} {r['label']:>5} | failed: {r['lookup'].get('error', '?')[:120]}")
            continue
        lines.append(f"{'lookup p99':>13} {r['label']:>5} |{'#' * max(1, round(v / top_p99 * 40)):<40}| {v:.2f}")
    console.print("\n".join(lines), markup=False, highlight=False)
    for sk in section.get("skipped", []):
        console.print(f"{sk['label']}: not run: {sk['reason']}", markup=False, highlight=False)
    for g in section["growth_step"]:
        tp = g["time_per_person"]
        console.print(f"{g['from']}→{g['to']} (x{g['size_ratio']:g} persons): time per person ingest "
                      f"x{tp['ingest']}, issuance x{tp['issuance']}, library build x{tp['library_build']}, "
                      f"pipeline x{tp['pipeline']}; lookup p99 x{g['lookup_p99']}", markup=False, highlight=False)


def main(argv: list[str]) -> int:
    persons, root, out, seconds = int(argv[0]), Path(argv[1]), Path(argv[2]), float(argv[3])

    def log(msg: str) -> None:
        print(f"[{dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)

    record = measure_size(persons, root, seconds=seconds, log=log)
    out.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
