"""The serving benchmark: the hub on loopback under ``wrk`` vs a bare FastAPI JSON endpoint.

:func:`bench_serve` builds a library through the real pipeline steps (simulated
departments → extract → validate → load → issue licences → publish a snapshot), registers
a department client with grants and accepted applications for many holders, then serves
the snapshot with uvicorn in a process of its own and drives it with Debian's ``wrk``
(32 connections, Lua scripts that rotate over many holders and licences, so this is not a
one-key cache test). The anchor is a bare FastAPI app (:func:`bare_app`) served by the same
uvicorn command line (same worker count, loop and HTTP implementation) in the same run.
Both servers run side by side and are driven in turn, one at a time: each figure's time is
split into ``rounds`` (3) alternating anchor and hub runs, the order reversed every other
round (ABBA), so that a slow or fast spell of the shared machine falls on both sides
rather than on whichever ran then. Requests/s is all requests over all rounds' time; a p99
is the median of the rounds' p99s; each figure also lists its rounds.

Figures: ``lookup_rps`` / ``lookup_p99_ms`` (``GET /api/v1/licences/{id}`` with key,
purpose and holder authorisation, answered with a use-copy), ``once_only_rps`` /
``once_only_p99_ms`` (``POST /api/v1/once-only`` for a 5-item bundle) and
``sustained_errors``: a sustained lookup run's non-2xx answers + socket errors + lost
usage-log records. Every answered request has its usage-log record committed before
the answer is sent, so ``written >= answered``; the excess is at most the requests in
flight when wrk stopped (≤ connections). The chain of the records written in the run is
re-verified as well.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warehouse.datadir import ENV_VAR, Layout

CONNECTIONS = 32
WRK_THREADS = 2
ROUNDS = 3  # anchor/hub alternations per figure (ONEWINDOW_BENCH_SERVE_ROUNDS)
WORKERS = 1  # uvicorn worker processes of both servers (ONEWINDOW_BENCH_SERVE_WORKERS)
UVICORN_FLAGS = ("--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log")
DEPARTMENT = ("11330100002496476R", "杭州市民政局")
CLIENT = "bench-client"
ROTATE = 20_000  # distinct holders / licences the scripts rotate over (fewer for a small library)


class BenchError(RuntimeError):
    """The serving benchmark could not run (no wrk, the server did not start, wrk failed)."""


# ----------------------------------------------------------------------------- the anchor
def bare_app() -> Any:
    """The anchor: a bare FastAPI app with one JSON endpoint (GET and POST), nothing else."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/bare")
    async def bare_get() -> dict:
        return {"status": "ok"}

    @app.post("/bare")
    async def bare_post(body: dict) -> dict:
        return {"status": "ok", "fields": len(body)}

    @app.get("/worker")  # after /bare: the benchmark's readiness probe, like the hub's /healthz
    async def worker() -> dict:
        return {"worker": os.getpid()}

    return app


# ----------------------------------------------------------------------------- library
@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_library(layout: Layout, persons: int, log: Any = None) -> dict:
    """Simulate the departments and run the pipeline steps once: a real, published snapshot.

    Sources: the population register (persons, ID cards, 户口) and the marriage drops;
    the enterprise API and the property spreadsheets are left out to keep the build short.
    """
    from exchange.departments import BASE_DATE, simulate
    from exchange.pipeline import build_step, extract_step, load_step, publish_step, validate_step
    from exchange.sources.interval import Interval

    layout.ensure()
    with _environ(**{ENV_VAR: str(layout.root)}):
        if log:
            log.log(f"serve: simulating {persons:,} persons …")
        simulate(layout, persons=persons, seed=7, day=0, defect_rate=0.0)
        interval = Interval.for_day(BASE_DATE)
        for source_id in ("gongan_population", "minzheng_marriages"):
            if log:
                log.log(f"serve: ingesting {source_id} …")
            extracted = extract_step(source_id, interval.key)
            checked = validate_step(extracted, run_id=f"bench_{source_id}")
            load_step(checked, run_id=f"bench_{source_id}", finished_at=interval.end.isoformat())
        if log:
            log.log("serve: issuing licences and publishing the snapshot …")
        build_step(interval.end.isoformat())
        return publish_step(interval.end.isoformat())


@dataclass(frozen=True)
class Workload:
    api_key: str
    lookup_lines: Path  # "METHOD\tpath\tcase\tbody"
    once_only_lines: Path
    items: list[str]
    distinct_holders: int


def prepare_workload(layout: Layout, snapshot_path: Path, workdir: Path, *,
                     rotate: int = ROTATE, at: dt.datetime | None = None) -> Workload:
    """A client with grants for every licence type, an accepted application per holder, request lines."""
    import duckdb

    from exchange.onceonly.catalogue import load_catalogue
    from exchange.store import open_store

    at = at or dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    con = duckdb.connect(str(snapshot_path), read_only=True)
    try:
        # Holders with a licence, spread over the whole library (hash order, not insertion order).
        rows = con.execute("""
            SELECT holder_code, any_value(licence_id) AS licence_id
            FROM licences GROUP BY holder_code ORDER BY hash(holder_code) LIMIT ?""", [rotate]).fetchall()
        types = [r[0] for r in con.execute("SELECT DISTINCT licence_type_code FROM certificates").fetchall()]
        persons = [r[0] for r in con.execute(
            "SELECT subject_code FROM subjects WHERE code_type = '111' AND subject_code IN "
            "(SELECT holder_code FROM licences) ORDER BY hash(subject_code) LIMIT ?", [rotate]).fetchall()]
    finally:
        con.close()
    if not rows or not persons:
        raise BenchError(f"snapshot {snapshot_path} holds no licences to look up")
    catalogue = load_catalogue()
    codes = [it.code for it in catalogue.items]
    impl = [it.impl_code for it in catalogue.items if it.impl_code]
    items = (codes + impl)[:5]  # a 5-item bundle; the catalogue may ship fewer distinct items
    store = open_store(layout)
    try:
        store.add_department(*DEPARTMENT)
        if store.client(CLIENT) is None:
            store.add_client(CLIENT, DEPARTMENT[0], "benchmark client")
        for t in types:
            store.grant(DEPARTMENT[0], t, by="bench", at=at)
        key = store.issue_key(CLIENT, at=at)
        cases: dict[str, str] = {}
        for i, holder in enumerate(sorted({h for h, _ in rows} | set(persons))):
            case = f"BENCH-{i:07d}"
            store.accept_application(case, items[0], holder, "clerk-bench", CLIENT, at=at)
            cases[holder] = case
    finally:
        store.close()
    lookup = workdir / "lookup.tsv"
    lookup.write_text("".join(f"GET\t/api/v1/licences/{lid}\t{cases[h]}\t\n" for h, lid in rows),
                      encoding="utf-8")
    once = workdir / "once_only.tsv"
    once.write_text("".join(
        "POST\t/api/v1/once-only\t{}\t{}\n".format(cases[p], json.dumps(
            {"applicant": {"code": p, "code_type": "111"}, "items": items}, separators=(",", ":")))
        for p in persons), encoding="utf-8")
    return Workload(key, lookup, once, items, len(cases))


# ----------------------------------------------------------------------------- wrk
LUA = r"""
local lines, reqs, n, i = {}, {}, 0, 0
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
function init(args)
  local path, key, item = args[1], args[2], args[3]
  for line in io.lines(path) do
    local method, p, case, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {["X-Purpose-Item"] = item, ["X-Case-Number"] = case, ["X-Clerk-Id"] = "clerk-bench"}
    if key ~= "-" then headers["X-API-Key"] = key end
    if body ~= "" then headers["Content-Type"] = "application/json" else body = nil end
    n = n + 1
    reqs[n] = wrk.format(method, p, headers, body)
  end
  i = ((tid or 1) - 1) * math.floor(n / 7)
end
function request()
  i = i % n + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    socket_errors: int
    non_2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def combine(results: list[WrkResult]) -> WrkResult:
    """Rounds of one figure as one result: counts and time summed, latencies the rounds' medians."""
    if not results:
        raise ValueError("no wrk results to combine")

    def median(values: list[float]) -> float:
        v = sorted(values)
        mid = len(v) // 2
        return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2

    return WrkResult(requests=sum(r.requests for r in results), seconds=sum(r.seconds for r in results),
                     socket_errors=sum(r.socket_errors for r in results),
                     non_2xx=sum(r.non_2xx for r in results),
                     p50_ms=median([r.p50_ms for r in results]), p99_ms=median([r.p99_ms for r in results]))


def wrk_binary() -> str:
    for candidate in (os.environ.get("ONEWINDOW_WRK"), "/usr/bin/wrk"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise BenchError("wrk is not installed (Debian package wrk: make system-deps)")


def run_wrk(url: str, lines: Path, *, api_key: str, item: str, seconds: float, script: Path,
            connections: int = CONNECTIONS, threads: int = WRK_THREADS) -> WrkResult:
    """One wrk run over the request lines in ``lines``; raises :class:`BenchError` if wrk fails."""
    cmd = [wrk_binary(), "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(script), url, "--", str(lines), api_key or "-", item]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")]
    if proc.returncode != 0 or not marker:
        raise BenchError(f"wrk failed (exit {proc.returncode}) against {url}: "
                         f"{proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    d = json.loads(marker[-1][len("WRK_JSON "):])
    return WrkResult(requests=d["requests"], seconds=d["duration_us"] / 1e6,
                     socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
                     non_2xx=d["status"], p50_ms=d["p50_us"] / 1000, p99_ms=d["p99_us"] / 1000)


# ----------------------------------------------------------------------------- servers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m uvicorn --factory <factory>`` in a process of its own, on a free loopback port."""

    def __init__(self, factory: str, *, env: dict[str, str], probe: str, log_path: Path,
                 workers: int = WORKERS) -> None:
        self.factory, self.env, self.probe, self.log_path = factory, env, probe, log_path
        self.workers = workers
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 600) -> "Server":
        self.port = _free_port()
        cmd = [sys.executable, "-m", "uvicorn", "--factory", self.factory, "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.workers), *UVICORN_FLAGS]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        ready: set[int] = set()  # workers (process ids) that answered the probe
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.factory} exited with {self.proc.returncode} at start: "
                                 f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + self.probe, timeout=2) as r:
                    if r.status == 200:
                        ready.add(json.loads(r.read())["worker"])
                        if len(ready) >= self.workers:
                            return self
                        time.sleep(0.05)  # the next connection may reach a worker still starting
                        continue
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise BenchError(f"{self.factory}: {len(ready)} of {self.workers} workers answered {self.probe} "
                         f"within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()
        self.proc = None

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ----------------------------------------------------------------------------- usage log
def log_state(layout: Layout) -> tuple[int, int]:
    """(record count, highest seq) of the usage log in the service store (either backend)."""
    from exchange.store import open_store

    store = open_store(layout)
    try:
        return store.log_extent()
    finally:
        store.close()


def verify_chain(layout: Layout, after_seq: int, *, window: int = 20_000) -> int:
    """Re-check every record after ``after_seq``: hash, link to its predecessor, contiguous seq.

    Returns the number of broken records (0 when the chain holds). Reads ``window`` seqs at a time.
    """
    from exchange.store import open_store
    from exchange.store.base import chain_hash

    store = open_store(layout)
    try:
        prev = store.log_records(first_seq=after_seq, last_seq=after_seq) if after_seq else []
        prev_hash, expected, broken = (prev[0].hash if prev else None), after_seq + 1, 0
        top = store.log_extent()[1]
        for first in range(after_seq + 1, top + 1, window):
            for r in store.log_records(first_seq=first, last_seq=first + window - 1):
                ok = (r.seq == expected and chain_hash(r.prev_hash, r.record) == r.hash
                      and (prev_hash is None or r.prev_hash == prev_hash))
                broken += not ok
                prev_hash, expected = r.hash, r.seq + 1
    finally:
        store.close()
    return broken


# ----------------------------------------------------------------------------- the benchmark
def _figure(value: float, unit: str, anchor: str, anchor_value: float) -> dict:
    return {"value": round(value, 2), "unit": unit, "anchor": anchor, "anchor_value": round(anchor_value, 2),
            "ratio": round(value / anchor_value, 4) if anchor_value else None}


LIBRARY_MARK = "bench-library.json"


def library(root: Path, persons: int, log: Any = None, *, reuse: bool = False) -> tuple[Layout, dict]:
    """The benchmark's library under ``root``: built now, or with ``reuse`` the one a previous run
    built there (``root / LIBRARY_MARK``, written only once its snapshot is published)."""
    layout = Layout(root).ensure()
    mark = root / LIBRARY_MARK
    if reuse and mark.is_file():
        published = json.loads(mark.read_text(encoding="utf-8"))
        if published.get("persons") == persons and Path(published["path"]).is_file():
            if log:
                log.log(f"serve: reusing the {persons:,}-person library in {root}")
            return layout, published
    mark.unlink(missing_ok=True)
    published = {**build_library(layout, persons, log), "persons": persons}
    mark.write_text(json.dumps(published), encoding="utf-8")
    return layout, published


def bench_serve(workdir: Path, persons: int, log: Any = None, *, seconds: float = 15,
                sustained_seconds: float = 60, rotate: int = ROTATE, reuse: bool = False,
                workers: int = WORKERS, rounds: int = ROUNDS) -> dict[str, dict]:
    """Build a library of ``persons`` (or reuse the one built in ``workdir`` before), serve it,
    measure; returns the figures (see the module doc). ``seconds`` is each figure's measured
    time, split over ``rounds`` alternating anchor/hub runs (at least 1 s each)."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    root = workdir / f"serve-{persons}"
    layout, published = library(root, persons, log, reuse=reuse)
    work = root / "bench"
    work.mkdir(exist_ok=True)
    load = prepare_workload(layout, Path(published["path"]), work, rotate=rotate)
    script = work / "rotate.lua"
    script.write_text(LUA, encoding="utf-8")
    bare_lines = work / "bare_get.tsv"
    bare_lines.write_text("GET\t/bare\t-\t\n", encoding="utf-8")
    bare_post = work / "bare_post.tsv"
    sample_body = load.once_only_lines.read_text(encoding="utf-8").split("\n", 1)[0].split("\t", 3)[3]
    bare_post.write_text(f"POST\t/bare\t-\t{sample_body}\n", encoding="utf-8")
    env = {ENV_VAR: str(layout.root), "ONEWINDOW_ENV": os.environ.get("ONEWINDOW_ENV", "development")}
    item = load.items[0]
    run = dict(api_key=load.api_key, item=item, script=script)

    if log:
        log.log(f"serve: anchor (bare FastAPI on uvicorn, {workers} worker(s)) and the hub "
                f"({load.distinct_holders:,} holders rotated), {rounds} alternating rounds …")
    with Server("exchange.serve_bench:bare_app", env=env, probe="/worker", log_path=work / "bare.log",
                workers=workers) as bare, \
            Server("exchange.api.main:create_app", env=env, probe="/healthz", log_path=work / "hub.log",
                   workers=workers) as hub:
        run_wrk(bare.url + "/bare", bare_lines, seconds=2, **run)  # warm-up
        run_wrk(hub.url, load.lookup_lines, seconds=2, **run)  # warm-up: code paths, caches
        part = seconds / rounds
        pairs = {"lookup": ((bare.url + "/bare", bare_lines), (hub.url, load.lookup_lines)),
                 "once_only": ((bare.url + "/bare", bare_post), (hub.url, load.once_only_lines))}
        measured: dict[str, tuple[list[WrkResult], list[WrkResult]]] = {k: ([], []) for k in pairs}
        for r in range(rounds):
            for name, sides in pairs.items():
                order = (0, 1) if r % 2 == 0 else (1, 0)  # ABBA: anchor first, then hub first
                for side in order:
                    url, lines = sides[side]
                    measured[name][side].append(run_wrk(url, lines, seconds=part, **run))
        bare_get, lookup = (combine(x) for x in measured["lookup"])
        bare_json, once = (combine(x) for x in measured["once_only"])
        time.sleep(1.0)  # requests abandoned by wrk at its stop finish
        before_count, before_seq = log_state(layout)
        if log:
            log.log(f"serve: sustained lookup run, {sustained_seconds:.0f} s …")
        sustained = run_wrk(hub.url, load.lookup_lines, seconds=sustained_seconds, **run)
    after_count, _ = log_state(layout)  # the server has stopped: everything it wrote is committed
    written = after_count - before_count
    lost = max(0, sustained.requests - written)
    in_flight = written - sustained.requests
    broken = verify_chain(layout, before_seq)
    if in_flight > CONNECTIONS:
        raise BenchError(f"usage log has {written} records for {sustained.requests} answered requests: "
                         f"{in_flight} more than answered, more than the {CONNECTIONS} that can be in flight")
    errors = sustained.non_2xx + sustained.socket_errors + lost + broken
    for name, r in (("lookup", lookup), ("once_only", once)):
        if r.non_2xx or r.socket_errors:
            raise BenchError(f"{name}: {r.non_2xx} non-2xx answers and {r.socket_errors} socket errors "
                             f"in {r.requests} requests; see {work / 'hub.log'}")
    figures = {
        "lookup_rps": _figure(lookup.rps, "requests/s", "bare_fastapi_get_rps", bare_get.rps),
        "lookup_p99_ms": _figure(lookup.p99_ms, "ms", "bare_fastapi_get_p99_ms", bare_get.p99_ms),
        "once_only_rps": _figure(once.rps, "requests/s", "bare_fastapi_post_json_rps", bare_json.rps),
        "once_only_p99_ms": _figure(once.p99_ms, "ms", "bare_fastapi_post_json_p99_ms", bare_json.p99_ms),
        "sustained_errors": _figure(errors, "errors", "sustained_requests", sustained.requests),
    }
    figures["sustained_errors"].update(
        seconds=round(sustained.seconds, 1), non_2xx=sustained.non_2xx, socket_errors=sustained.socket_errors,
        log_records_written=written, lost_log_records=lost, in_flight_at_stop=in_flight,
        broken_chain_records=broken, rps=round(sustained.rps, 1))
    figures["lookup_rps"].update(persons=persons, holders_rotated=load.distinct_holders,
                                 connections=CONNECTIONS, uvicorn_workers=workers)
    figures["once_only_rps"].update(items=load.items)
    for name in ("lookup", "once_only"):
        anchors, hubs = measured[name]
        figures[f"{name}_rps"]["rounds"] = [
            {"value": round(h.rps, 2), "anchor_value": round(a.rps, 2),
             "ratio": round(h.rps / a.rps, 4) if a.rps else None} for a, h in zip(anchors, hubs)]
        figures[f"{name}_p99_ms"]["rounds"] = [
            {"value": h.p99_ms, "anchor_value": a.p99_ms,
             "ratio": round(h.p99_ms / a.p99_ms, 4) if a.p99_ms else None} for a, h in zip(anchors, hubs)]
        figures[f"{name}_rps"]["rounds_total_seconds"] = round(sum(h.seconds for h in hubs), 1)
    return figures
