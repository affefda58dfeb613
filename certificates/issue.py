"""Issuing many licences at once: library rows → batch (Merkle) or single (JWS) tokens.

The unit of work is a :class:`Job`: rows of one issuer, at most one batch. Jobs run
in this process or, when there are enough rows, in a process pool (``workers``);
signing keys reach the workers as raw bytes through the pool's initializer, over the
pool's own pipe, and never touch disk unencrypted.
"""

from __future__ import annotations

import binascii
import datetime as dt
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certificates.batch import MAX_BATCH, PayloadEncoder, sign_batch
from certificates.signing import b64url, encoded_header

_TO_URL = bytes.maketrans(b"+/", b"-_")

#: Columns of a library ``certificates`` row that a payload reads.
ROW_COLUMNS = ("cert_key", "licence_type_code", "licence_type_name", "cert_number", "holder_code",
               "holder_code_type", "holder_name", "issuer_name", "issuer_code", "issue_date",
               "valid_from", "valid_until", "status", "extension")
MODES = ("batch", "single")
DEFAULT_BATCH_SIZE = 4096
#: Below this many rows a pool costs more than it saves.
PARALLEL_MIN_ROWS = 50_000


@dataclass(frozen=True)
class Job:
    """Rows (as column lists, ``ROW_COLUMNS`` order) of one issuer, signed as one batch."""

    batch_id: str
    kid: str
    columns: tuple[list[Any], ...]
    versions: list[int]
    supersedes: list[str | None]
    status_refs: list[tuple[str, int] | None] | None = None  # status list entry per row


@dataclass(frozen=True)
class JobResult:
    batch_id: str
    licence_ids: list[str]
    base_ids: list[str]
    tokens: list[str]
    root: str | None      # base64url Merkle root (batch mode)
    root_jws: str | None  # the signed root statement (batch mode)


_KEYS: dict[str, Ed25519PrivateKey] = {}


def _init_worker(raw_keys: dict[str, bytes]) -> None:
    _KEYS.clear()
    _KEYS.update({kid: Ed25519PrivateKey.from_private_bytes(raw) for kid, raw in raw_keys.items()})


def run_job(job: Job, mode: str, at: dt.datetime, keys: dict[str, Ed25519PrivateKey] | None = None) -> JobResult:
    """Encode and sign one job's rows (in whatever process this runs)."""
    key = (keys or _KEYS)[job.kid]
    enc = PayloadEncoder(at=at)
    # Arrow columns (from make_jobs_from_table) become lists here, in the worker
    columns = {c: v.to_pylist() if hasattr(v, "to_pylist") else v for c, v in zip(ROW_COLUMNS, job.columns)}
    ids, bases, payloads = enc.encode_many(columns, job.versions, job.supersedes, job.status_refs)
    if mode == "batch":
        signed = sign_batch(payloads, private_key=key, kid=job.kid, batch_id=job.batch_id)
        return JobResult(job.batch_id, ids, bases, signed.tokens, b64url(signed.root), signed.root_jws)
    header_dot = (encoded_header(job.kid) + ".").encode("ascii")
    sign, b2a, url = key.sign, binascii.b2a_base64, _TO_URL
    tokens = []
    for data in payloads:  # the signing.sign_licence token, in bytes until the end
        signing_input = header_dot + b2a(data, newline=False).translate(url).rstrip(b"=")
        signature = b2a(sign(signing_input), newline=False).translate(url).rstrip(b"=")
        tokens.append((signing_input + b"." + signature).decode("ascii"))
    return JobResult(job.batch_id, ids, bases, tokens, None, None)


def _packed(result: JobResult) -> JobResult:
    """The result with ``licence_ids``, ``base_ids`` and ``tokens`` as pyarrow string arrays:
    they cross the pool's pipe as three buffers instead of thousands of str objects, and
    the build stores them without converting back."""
    import pyarrow as pa

    return JobResult(result.batch_id, pa.array(result.licence_ids, pa.string()),  # type: ignore[arg-type]
                     pa.array(result.base_ids, pa.string()), pa.array(result.tokens, pa.string()),
                     result.root, result.root_jws)


def _run(args: tuple[Job, str, dt.datetime]) -> JobResult:
    return _packed(run_job(*args))


def _rows_by_kid(kids: Sequence[str]) -> dict[str, list[int]]:
    by_kid: dict[str, list[int]] = {}
    for i, kid in enumerate(kids):
        by_kid.setdefault(kid, []).append(i)
    return by_kid


def _job_parts(kids: Sequence[str], batch_size: int) -> Iterator[tuple[str, list[int]]]:
    """(kid, row positions) per job: grouped by signing key (sorted), at most ``batch_size`` rows."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
    by_kid = _rows_by_kid(kids)
    for kid in sorted(by_kid):
        idx = by_kid[kid]
        for start in range(0, len(idx), batch_size):
            yield kid, idx[start:start + batch_size]


def job_order(kids: Sequence[str]) -> list[int]:
    """Row positions in the order :func:`make_jobs` puts the rows into jobs (by ``kid``, then input order)."""
    by_kid = _rows_by_kid(kids)
    return [i for kid in sorted(by_kid) for i in by_kid[kid]]


def make_jobs(columns: dict[str, Sequence[Any]], versions: Sequence[int], supersedes: Sequence[str | None],
              kids: Sequence[str], *, prefix: str, batch_size: int,
              status_refs: Sequence[tuple[str, int] | None] | None = None) -> list[Job]:
    """Split rows into jobs: grouped by signing key, at most ``batch_size`` rows each."""
    jobs = []
    for kid, part in _job_parts(kids, batch_size):
        cols = tuple([columns[c][i] for i in part] for c in ROW_COLUMNS)
        jobs.append(Job(f"{prefix}-{kid[:8]}-{len(jobs):05d}", kid, cols,
                        [versions[i] for i in part], [supersedes[i] for i in part],
                        None if status_refs is None else [status_refs[i] for i in part]))
    return jobs


class JobRunner:
    """Runs jobs for a whole build: in this process, or in one process pool started once
    (when ``workers`` > 1 and ``rows``, the build's total, is at least ``PARALLEL_MIN_ROWS``)
    and kept for every chunk, so a 1M-row build pays the pool's start-up once and the
    caller can store one chunk while the workers sign the next (:meth:`submit` returns at
    once). ``keys`` must hold every ``kid`` the jobs will name."""

    def __init__(self, keys: dict[str, Ed25519PrivateKey], *, mode: str, at: dt.datetime,
                 workers: int | None = None, rows: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.keys, self.mode, self.at = keys, mode, at
        workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1 and rows >= PARALLEL_MIN_ROWS:
            raw = {kid: k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption()) for kid, k in keys.items()}
            # forkserver: the caller may hold DuckDB threads, which fork() must not copy
            ctx = multiprocessing.get_context("forkserver")
            # the column-wise encoder's libraries too: imported once in the server, not in every worker
            ctx.set_forkserver_preload(["certificates.issue", "numpy", "pyarrow", "pyarrow.compute"])
            # an executor, not a Pool: a worker that dies raises BrokenProcessPool instead of respawning forever
            self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(raw,))

    def submit(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Results in job order, ``licence_ids``, ``base_ids`` and ``tokens`` as pyarrow
        string arrays. With a pool every job is queued now; in-process, the jobs run as the
        iterator is consumed."""
        if self.pool is None or len(jobs) < 2:
            return (_packed(run_job(job, self.mode, self.at, self.keys)) for job in jobs)
        return self.pool.map(_run, [(job, self.mode, self.at) for job in jobs])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> "JobRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_jobs_from_table(table: Any, versions: Sequence[int], supersedes: Sequence[str | None],
                         kids: Sequence[str], *, prefix: str, batch_size: int,
                         status_refs: Sequence[tuple[str, int] | None] | None = None) -> list[Job]:
    """:func:`make_jobs` for rows held in a pyarrow table (``ROW_COLUMNS`` at least): the same
    jobs, in the same order, but each job's columns are Arrow arrays of its own rows, so they
    cross the pool's pipe as buffers and become Python lists in the worker, not here."""
    import pyarrow as pa

    rows = table.select(list(ROW_COLUMNS))
    jobs = []
    for kid, part in _job_parts(kids, batch_size):
        # take, not slice: a slice would pickle its parent's whole buffers
        taken = rows.take(pa.array(part, pa.int64())).combine_chunks()
        cols = tuple(taken.column(c).chunk(0) if taken.column(c).num_chunks == 1
                     else pa.concat_arrays(taken.column(c).chunks) for c in ROW_COLUMNS)
        jobs.append(Job(f"{prefix}-{kid[:8]}-{len(jobs):05d}", kid, cols,  # type: ignore[arg-type]
                        [versions[i] for i in part], [supersedes[i] for i in part],
                        None if status_refs is None else [status_refs[i] for i in part]))
    return jobs


def run_jobs(jobs: Sequence[Job], keys: dict[str, Ed25519PrivateKey], *, mode: str, at: dt.datetime,
             workers: int | None = None) -> Iterator[JobResult]:
    """Results in job order; a process pool when ``workers`` > 1 and the jobs are big enough."""
    rows = sum(len(j.versions) for j in jobs)
    with JobRunner(keys, mode=mode, at=at, workers=workers if len(jobs) >= 2 else 1, rows=rows) as runner:
        for r in runner.submit(jobs):
            yield JobResult(r.batch_id, r.licence_ids.to_pylist(), r.base_ids.to_pylist(),  # type: ignore[attr-defined]
                            r.tokens.to_pylist(), r.root, r.root_jws)  # type: ignore[attr-defined]
