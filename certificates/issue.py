"""Issuing many licences at once: library rows → batch (Merkle) or single (JWS) licences,
written as Parquet files of compact licence rows.

The unit of work is a :class:`Job`: a run of rows (already in signing order: grouped by
issuer key) cut into batches of one key each. :func:`run_job` encodes the payloads
column-wise, signs (one signature per batch, or one per licence), and writes the job's
rows to one Parquet file (``ISSUED_SCHEMA``) in the job's directory, durably, under a
temporary name renamed into place; it returns only what the caller registers (file,
row count, the signed batch roots). Jobs run in this process or, for large builds, in a
process pool (:class:`JobRunner`): a job crosses the pool's pipe as one Arrow table of
its own rows, and nothing but the small :class:`JobResult` comes back. Signing keys
reach the workers as raw bytes through the pool's initializer and never touch disk
unencrypted.

A stored row keeps the token as its three segments: ``token_header``, ``token_payload``
(BASE64URL of the RFC 8785 payload) and ``token_tail`` (the signature in single mode,
the proof in batch mode), so ``token = token_header || '.' || token_payload || '.' ||
token_tail`` exactly. The per-batch header compresses to nothing in Parquet, the proofs
of neighbouring leaves share their upper audit path (which zstd finds), and the payload
is the only per-licence text left.
"""

from __future__ import annotations

import binascii
import datetime as dt
import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certificates._time import CST, aware
from certificates.arrow_text import b64url_array, b64url_bytes, fingerprints, fixed_width, single, utf8_values
from certificates.batch import MAX_BATCH, seal_batch
from certificates.encoder import PayloadEncoder
from certificates.signing import encoded_header

_TO_URL = bytes.maketrans(b"+/", b"-_")

#: Columns of a library ``certificates`` row that a payload reads.
ROW_COLUMNS = ("cert_key", "licence_type_code", "licence_type_name", "cert_number", "holder_code",
               "holder_code_type", "holder_name", "issuer_name", "issuer_code", "issue_date",
               "valid_from", "valid_until", "status", "extension")
#: What a job's table holds: the row columns, the version to issue, the identifier it
#: supersedes, its status list entry and its signing key.
JOB_COLUMNS = (*ROW_COLUMNS, "version", "prev_licence_id", "status_list", "status_index", "kid")
MODES = ("batch", "single")
DEFAULT_BATCH_SIZE = 4096
#: Rows per job (whole batches): enough to amortise a job, small enough to spread over the pool.
JOB_ROWS = 16_384
#: Below this many rows a pool costs more than it saves.
PARALLEL_MIN_ROWS = 50_000

ISSUED_SCHEMA = pa.schema([
    ("licence_id", pa.string()), ("base_id", pa.string()), ("cert_key", pa.string()),
    ("version", pa.int32()), ("issued_at", pa.timestamp("us")), ("supersedes", pa.string()),
    ("issuer_code", pa.string()), ("licence_type_code", pa.string()), ("holder_code", pa.string()),
    ("mode", pa.string()), ("batch_id", pa.string()), ("status_list", pa.string()),
    ("status_index", pa.int32()), ("token_header", pa.string()), ("token_payload", pa.string()),
    ("token_tail", pa.string())])
#: Parquet dictionary encoding only where values repeat (the rest are unique per licence).
_DICTIONARY = ["issuer_code", "licence_type_code", "mode", "batch_id", "status_list", "token_header"]


@dataclass(frozen=True)
class Job:
    """Rows (``JOB_COLUMNS``, in signing order) of one or more batches; ``spans`` are the
    batches as ``(batch_id, start, stop)`` row ranges of one ``kid`` each. ``rows`` may be a
    slice of a bigger table: a job pickles as an Arrow IPC stream, which holds only its rows."""

    job_id: str
    rows: pa.Table
    spans: tuple[tuple[str, int, int], ...]
    out_dir: str

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.rows.schema) as writer:
            writer.write_table(self.rows)
        return _job_from_ipc, (self.job_id, sink.getvalue(), self.spans, self.out_dir)


def _job_from_ipc(job_id: str, rows: pa.Buffer, spans: tuple, out_dir: str) -> Job:
    return Job(job_id, pa.ipc.open_stream(rows).read_all(), spans, out_dir)


@dataclass(frozen=True)
class JobResult:
    job_id: str
    file: str                 # the Parquet file's name in the job's directory
    rows: int
    bytes: int
    batches: list[dict[str, Any]] = field(default_factory=list)  # batch mode: one row per signed batch
    fingerprints: Any = None  # of the licence ids (arrow_text.fingerprints), for the uniqueness check


_KEYS: dict[str, Ed25519PrivateKey] = {}


def _init_worker(raw_keys: dict[str, bytes]) -> None:
    _keep_freed_memory()
    _KEYS.clear()
    _KEYS.update({kid: Ed25519PrivateKey.from_private_bytes(raw) for kid, raw in raw_keys.items()})


def _keep_freed_memory() -> None:
    """Let glibc keep freed blocks of up to 32 MiB for reuse instead of unmapping them: a job's
    buffers are a few MiB to tens of MiB, and memory fresh from the kernel costs a page fault
    per 4 KiB on first touch (on the 2-core benchmark VM a fresh 200 MB buffer took 0.6 s to
    fill, a reused one 0.03 s). A worker process only; a no-op where glibc is not the C library."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return
    if mallopt is not None:
        mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks below this come from the reusable heap
        mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD: keep up to 1 GiB of freed heap


def run_job(job: Job, mode: str, at: dt.datetime, keys: dict[str, Ed25519PrivateKey] | None = None) -> JobResult:
    """Encode, sign and write one job's rows (in whatever process this runs)."""
    keys = keys or _KEYS
    t = job.rows
    cols = {c: t.column(c) for c in ROW_COLUMNS}
    ids, bases, payload = PayloadEncoder(at=at).encode_table(
        cols, t.column("version"), t.column("prev_licence_id"), t.column("status_list"), t.column("status_index"))
    payload_b64 = b64url_array(payload)
    kids = t.column("kid")
    headers, tails, batches = [], [], []
    for batch_id, start, stop in job.spans:
        kid = kids[start].as_py()
        part = payload_b64.slice(start, stop - start)
        if mode == "batch":
            seal = seal_batch(part, private_key=keys[kid], kid=kid, batch_id=batch_id)
            headers.append(pa.repeat(pa.scalar(seal.header), stop - start))
            tails.append(seal.proofs)
            batches.append({"batch_id": batch_id, "issuer_code": t.column("issuer_code")[start].as_py(),
                            "kid": kid, "size": stop - start, "root": _b64(seal.root), "root_jws": seal.root_jws})
        else:
            header = encoded_header(kid)
            headers.append(pa.repeat(pa.scalar(header), stop - start))
            tails.append(sign_each(part, header, keys[kid]))
    n = t.num_rows
    issued_at = aware(at).astimezone(CST).replace(tzinfo=None)  # naive China Standard Time, as stored elsewhere
    table = pa.table({
        "licence_id": ids, "base_id": bases, "cert_key": t.column("cert_key"), "version": t.column("version"),
        "issued_at": pa.repeat(pa.scalar(issued_at, pa.timestamp("us")), n),
        "supersedes": t.column("prev_licence_id"), "issuer_code": t.column("issuer_code"),
        "licence_type_code": t.column("licence_type_code"), "holder_code": t.column("holder_code"),
        "mode": pa.repeat(pa.scalar(mode), n),
        "batch_id": pa.chunked_array([pa.repeat(pa.scalar(b if mode == "batch" else None, pa.string()), z - a)
                                      for b, a, z in job.spans], pa.string()),
        "status_list": t.column("status_list"), "status_index": t.column("status_index"),
        "token_header": pa.chunked_array(headers, pa.string()), "token_payload": payload_b64,
        "token_tail": pa.chunked_array(tails, pa.string())})
    table = pa.table([table.column(f.name).cast(f.type) for f in ISSUED_SCHEMA], schema=ISSUED_SCHEMA)
    path = write_parquet(table, Path(job.out_dir) / f"{job.job_id}.parquet")
    return JobResult(job.job_id, path.name, n, path.stat().st_size, batches, fingerprints(ids))


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


def sign_each(payload_b64: pa.Array, header: str, key: Ed25519PrivateKey) -> pa.Array:
    """BASE64URL Ed25519 signature over ``header.payload`` of every licence (single mode):
    the signing inputs are cut from one buffer, signed with libsodium (:func:`ed25519_signer`),
    the 64-byte signatures base64-encoded together (padded to 66 bytes each: 88 characters,
    of which the first 86 are the segment)."""
    data, off = utf8_values(payload_b64)
    head = (header + ".").encode("ascii")
    sign = ed25519_signer(key)
    signatures = b"".join([sign(head + data[a:b]) for a, b in zip(off[:-1].tolist(), off[1:].tolist())])
    n = len(payload_b64)
    padded = np.zeros((n, 66), dtype=np.uint8)
    padded[:, :64] = np.frombuffer(signatures, dtype=np.uint8).reshape(n, 64)
    text = b64url_bytes(padded)
    return fixed_width(np.frombuffer(text, dtype=np.uint8).reshape(n, 88)[:, :86])


def ed25519_signer(key: Ed25519PrivateKey) -> Callable[[bytes], bytes]:
    """``sign(message) -> 64-byte signature`` under ``key``, by libsodium (PyNaCl): Ed25519 is
    deterministic (RFC 8032), so these are the very bytes ``key.sign`` gives (a test checks),
    at about 1.5x its rate on this project's machines for 1 KB JWS signing inputs. The secret
    key lives only in this process's memory, as ``key`` does."""
    from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    secret = crypto_sign_seed_keypair(seed)[1]

    def sign(message: bytes) -> bytes:
        return crypto_sign(message, secret)[:64]

    return sign


def write_parquet(table: pa.Table, path: Path) -> Path:
    """Write ``table`` to ``path`` under a temporary name in the same directory, then rename it
    (a file of that name is always whole). Not yet durable: :func:`sync_files` before the
    files are registered (the caller does it, off the workers' path)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", compression_level=1,
                       use_dictionary=[c for c in _DICTIONARY if c in table.column_names],
                       write_statistics=["licence_id", "cert_key", "issuer_code", "batch_id", "status_list"])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sync_files(paths: Sequence[Path]) -> None:
    """fsync each file and the directories holding them (their renames), so that what is
    registered next survives a crash."""
    for path in [*paths, *{p.parent for p in paths}]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def job_spans(kids: np.ndarray, batch_size: int, job_rows: int = JOB_ROWS) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """Signing order and jobs for rows whose signing keys are ``kids`` (codes that sort like
    the key ids): ``(order, jobs)``, ``order`` the row positions grouped by key (stable),
    each job a list of ``(start, stop)`` batch ranges in that order, whole batches of one key
    each, at most ``batch_size`` rows a batch and about ``job_rows`` rows a job."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
    order = np.argsort(kids, kind="stable")
    bounds = np.flatnonzero(np.diff(kids[order])) + 1
    groups = zip([0, *bounds.tolist()], [*bounds.tolist(), len(kids)])
    spans = [(a, min(a + batch_size, z)) for g0, z in groups for a in range(g0, z, batch_size)]
    per_job = max(1, job_rows // batch_size)
    return order, [spans[i:i + per_job] for i in range(0, len(spans), per_job)]


def make_jobs(table: pa.Table, kids: Any, *, prefix: str, batch_size: int, out_dir: Path,
              job_rows: int = JOB_ROWS) -> list[Job]:
    """Split rows (``JOB_COLUMNS`` but ``kid``; ``kids`` each row's signing key, a sequence or
    Arrow array) into jobs: grouped by signing key (sorted, then in input order), batches of
    at most ``batch_size`` rows, about ``job_rows`` rows a job (slices of one ``take``)."""
    import pyarrow.compute as pc

    kids = single(kids) if isinstance(kids, (pa.Array, pa.ChunkedArray)) else pa.array(kids, pa.string())
    encoded = pc.dictionary_encode(kids)
    names = encoded.dictionary.to_pylist()
    rank = np.argsort(np.argsort(np.array(names, dtype=object), kind="stable"))  # code -> sorted position
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)] if names else np.zeros(0, dtype=np.int64)
    names = sorted(names)
    order, jobs_spans = job_spans(codes, batch_size, job_rows)
    ordered = table.append_column("kid", kids).take(pa.array(order)).combine_chunks()
    jobs, batch_no = [], 0
    for j, spans in enumerate(jobs_spans):
        lo, hi = spans[0][0], spans[-1][1]
        rows = ordered.slice(lo, hi - lo)
        named = []
        for a, z in spans:
            named.append((f"{prefix}-{names[codes[order[a]]][:8]}-{batch_no:05d}", a - lo, z - lo))
            batch_no += 1
        jobs.append(Job(f"{prefix}-{j:03d}-{uuid.uuid4().hex[:8]}", rows, tuple(named), str(out_dir)))
    return jobs


def _run(args: tuple[Job, str, dt.datetime]) -> JobResult:
    return run_job(*args)


class JobRunner:
    """Runs jobs for a whole build: in this process, or in one process pool started once
    (when ``workers`` > 1 and ``rows``, the build's total, is at least ``PARALLEL_MIN_ROWS``)
    and kept for every chunk, so the caller can register one chunk while the workers sign
    the next (:meth:`submit` returns at once). ``keys`` must hold every ``kid`` the jobs name."""

    def __init__(self, keys: dict[str, Ed25519PrivateKey], *, mode: str, at: dt.datetime,
                 workers: int | None = None, rows: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.keys, self.mode, self.at = keys, mode, at
        self.workers = pool_size(rows, workers)
        self.pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None
        if self.workers > 1:
            raw = {kid: k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption()) for kid, k in keys.items()}
            # forkserver: the caller may hold DuckDB threads, which fork() must not copy
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["certificates.issue"])
            # an executor, not a Pool: a worker that dies raises BrokenProcessPool instead of respawning forever
            self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(raw,))
            # Start the workers now, from a thread: the forkserver imports pyarrow, numpy and the
            # rest (most of a second) while the caller prepares its first jobs. Each submit starts
            # one more worker until all are up.
            self._warm: list[Any] = []
            self._starting = threading.Thread(
                target=lambda: self._warm.extend(self.pool.submit(os.getpid) for _ in range(self.workers)),  # type: ignore[union-attr]
                name="issue-pool-start", daemon=True)
            self._starting.start()

    def submit(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Results in job order. With a pool every job is queued now; in-process, the jobs
        run as the iterator is consumed."""
        if self.pool is None:
            return (run_job(job, self.mode, self.at, self.keys) for job in jobs)
        self._started()
        return self.pool.map(_run, [(job, self.mode, self.at) for job in jobs])

    def _started(self) -> None:
        """Wait for the thread starting the workers (a worker that failed to start breaks the
        pool: the jobs then raise BrokenProcessPool)."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    def close(self) -> None:
        if self.pool is not None:
            if self._starting is not None:
                self._starting.join()
                self._starting = None
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> "JobRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pool_size(rows: int, workers: int | None = None) -> int:
    """How many processes issue ``rows`` licences (1: in this process)."""
    w = workers if workers is not None else min(os.cpu_count() or 1, 8)
    return w if w > 1 and rows >= PARALLEL_MIN_ROWS else 1
