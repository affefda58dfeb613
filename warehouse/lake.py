"""The lake: raw, checked and quarantine Parquet partitions, on local disk or S3-compatible storage.

Selected by ``ONEWINDOW_LAKE_URL``: unset means ``<data-dir>/lake`` (the embedded
default); a path means a local directory; ``s3://bucket/prefix`` means object storage,
with ``ONEWINDOW_S3_ENDPOINT`` (e.g. ``http://minio:9000``; unset = AWS),
``ONEWINDOW_S3_REGION`` (default ``us-east-1``) and the credentials in
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``.

A location is a string: a local path, or an ``s3://`` URI. Every write replaces one
whole object, as a re-run of a partition must: locally a temporary file renamed into
place; on S3 a file finished on local disk, uploaded to a hidden temporary key
(``.<name>.<uuid>.tmp``, as locally) and copied onto the final key in one server-side
CopyObject, so a reader sees the old object or the new one, never part of one. DuckDB reads S3 locations through its
``httpfs`` extension (:meth:`Lake.attach`), loaded from its PyPI package; pyarrow's S3
filesystem moves files.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from warehouse.datadir import Layout
from warehouse.exceptions import LakeConfigError, LakeIOError

LAKE_URL_ENV = "ONEWINDOW_LAKE_URL"
S3_ENDPOINT_ENV = "ONEWINDOW_S3_ENDPOINT"
S3_REGION_ENV = "ONEWINDOW_S3_REGION"
KEY_ID_ENV = "AWS_ACCESS_KEY_ID"
SECRET_ENV = "AWS_SECRET_ACCESS_KEY"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CHUNK = 8 << 20


def is_remote(location: str | os.PathLike[str]) -> bool:
    return str(location).startswith("s3://")


def as_location(value: str | os.PathLike[str]) -> str | Path:
    """A location read back from JSON: an S3 URI stays a string, anything else is a local Path."""
    return str(value) if is_remote(value) else Path(value)


@dataclass(frozen=True)
class S3Settings:
    """Where the bucket lives and how to sign requests to it."""

    endpoint: str | None  # scheme://host[:port]; None = AWS itself
    region: str
    key_id: str
    secret: str = field(repr=False)

    @property
    def host(self) -> str | None:
        return urlparse(self.endpoint).netloc if self.endpoint else None

    @property
    def use_ssl(self) -> bool:
        return not self.endpoint or urlparse(self.endpoint).scheme == "https"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "S3Settings":
        endpoint = env.get(S3_ENDPOINT_ENV, "").strip() or None
        if endpoint:
            parsed = urlparse(endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
                raise LakeConfigError(S3_ENDPOINT_ENV, endpoint, "must be http(s)://host[:port], nothing after it")
            endpoint = f"{parsed.scheme}://{parsed.netloc}"
        key_id, secret = env.get(KEY_ID_ENV, ""), env.get(SECRET_ENV, "")
        if not key_id or not secret:
            raise LakeConfigError(KEY_ID_ENV if not key_id else SECRET_ENV, "", "an s3:// lake needs both "
                                  f"{KEY_ID_ENV} and {SECRET_ENV} set")
        return cls(endpoint, env.get(S3_REGION_ENV, "").strip() or "us-east-1", key_id, secret)


@dataclass(frozen=True)
class Lake:
    """One lake root and the operations the pipeline needs on it."""

    url: str  # absolute local directory, or s3://bucket[/prefix] without a trailing slash
    s3: S3Settings | None = None

    @classmethod
    def from_env(cls, layout: Layout, environ: Mapping[str, str] | None = None) -> "Lake":
        env = os.environ if environ is None else environ
        raw = env.get(LAKE_URL_ENV, "").strip()
        if not raw:
            return cls(str(layout.lake))
        if raw.startswith("s3://"):
            bucket, _, prefix = raw[len("s3://"):].partition("/")
            if not _BUCKET.fullmatch(bucket):
                raise LakeConfigError(LAKE_URL_ENV, raw, f"bucket name {bucket!r} is not a valid S3 bucket name")
            prefix = prefix.strip("/")
            return cls(f"s3://{bucket}" + (f"/{prefix}" if prefix else ""), S3Settings.from_env(env))
        if "://" in raw:
            raise LakeConfigError(LAKE_URL_ENV, raw, "use a local directory or s3://bucket/prefix")
        return cls(str(Path(raw).expanduser().resolve()))

    @property
    def remote(self) -> bool:
        return self.s3 is not None

    @property
    def bucket(self) -> str:
        return self.url[len("s3://"):].partition("/")[0]

    # ------------------------------------------------------------------ locations
    def join(self, *parts: str) -> str:
        return "/".join((self.url, *parts)) if self.remote else str(Path(self.url, *parts))

    def raw(self, source_id: str, interval_key: str) -> str:
        return self.join("raw", f"source={source_id}", f"interval={interval_key}", "data.parquet")

    def quarantine(self, source_id: str, interval_key: str) -> str:
        return self.join("quarantine", f"source={source_id}", f"interval={interval_key}", "data.parquet")

    def checked(self, source_id: str, interval_key: str) -> str:
        """The folder of a checked batch's outputs (passed, quarantine, validation)."""
        return self.join("checked", f"source={source_id}", f"interval={interval_key}")

    # ------------------------------------------------------------------ pyarrow
    def filesystem(self, *, create_buckets: bool = False):
        """pyarrow filesystem of this lake; paths on it are :meth:`fs_path` of a location."""
        import pyarrow.fs as pafs

        if not self.remote:
            return pafs.LocalFileSystem()
        s3 = self.s3
        return pafs.S3FileSystem(access_key=s3.key_id, secret_key=s3.secret, region=s3.region,
                                 endpoint_override=s3.host, scheme="https" if s3.use_ssl else "http",
                                 allow_bucket_creation=create_buckets)

    def fs_path(self, location: str) -> str:
        return location[len("s3://"):] if is_remote(location) else location

    def files(self, *parts: str) -> list[str]:
        """Every object (file) under a folder of the lake, as locations, sorted."""
        import pyarrow.fs as pafs

        base = self.join(*parts)
        fs = self.filesystem()
        try:
            infos = fs.get_file_info(pafs.FileSelector(self.fs_path(base), recursive=True, allow_not_found=True))
        except OSError as exc:
            raise LakeIOError(base, "list", exc) from exc
        prefix = "s3://" if self.remote else ""
        return sorted(prefix + i.path for i in infos if i.type == pafs.FileType.File)

    # ------------------------------------------------------------------ writing
    def write_table(self, table, location: str) -> None:
        """Write ``table`` as the Parquet object at ``location``, replacing it whole."""
        import pyarrow.parquet as pq

        if not self.remote:
            dest = Path(location)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
            try:
                pq.write_table(table, tmp, compression="zstd")
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            return
        with tempfile.TemporaryDirectory(prefix="onewindow-lake-") as tmpdir:
            tmp = Path(tmpdir) / "data.parquet"
            pq.write_table(table, tmp, compression="zstd")
            self._upload(tmp, location)

    def put_file(self, local: Path, location: str) -> None:
        """Copy a finished local file to ``location``, replacing the object whole."""
        if self.remote:
            self._upload(local, location)
            return
        dest = Path(location)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def copy(self, source: str, location: str) -> None:
        """Copy one lake object to another location (server-side on S3: one CopyObject)."""
        if not self.remote:
            self.put_file(Path(source), location)
            return
        try:
            self.filesystem().copy_file(self.fs_path(source), self.fs_path(location))
        except OSError as exc:
            raise LakeIOError(location, f"copy {source} to", exc) from exc

    def _upload(self, local: Path, location: str) -> None:
        """Upload to a hidden temporary key, then one server-side copy onto ``location``.

        pyarrow completes an upload whenever its stream is closed, even by an exception
        (or the stream's destructor), so a write interrupted half-way would publish half a
        file; only the finished temporary object is ever copied into place.
        """
        folder, _, name = location.rpartition("/")
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        fs = self.filesystem()
        try:
            with open(local, "rb") as src, fs.open_output_stream(self.fs_path(tmp)) as out:
                shutil.copyfileobj(src, out, _CHUNK)
            fs.copy_file(self.fs_path(tmp), self.fs_path(location))
        except OSError as exc:
            raise LakeIOError(location, "write", exc) from exc
        finally:
            with contextlib.suppress(OSError):
                fs.delete_file(self.fs_path(tmp))

    # ------------------------------------------------------------------ local work on lake objects
    @contextlib.contextmanager
    def local_file(self, location: str) -> Iterator[Path]:
        """A local path holding the object at ``location`` (the file itself on a local lake)."""
        if not self.remote:
            yield Path(location)
            return
        with tempfile.TemporaryDirectory(prefix="onewindow-lake-") as tmpdir:
            tmp = Path(tmpdir) / location.rsplit("/", 1)[-1]
            try:
                with self.filesystem().open_input_stream(self.fs_path(location)) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
            except OSError as exc:
                raise LakeIOError(location, "read", exc) from exc
            yield tmp

    @contextlib.contextmanager
    def staging(self, folder: str) -> Iterator[Path]:
        """A local folder whose files become objects under ``folder`` when the block ends without error.

        On a local lake it is ``folder`` itself (the writer replaces its files atomically).
        """
        if not self.remote:
            Path(folder).mkdir(parents=True, exist_ok=True)
            yield Path(folder)
            return
        with tempfile.TemporaryDirectory(prefix="onewindow-lake-") as tmpdir:
            yield Path(tmpdir)
            for path in sorted(Path(tmpdir).iterdir()):
                if path.is_file():
                    self._upload(path, f"{folder}/{path.name}")

    # ------------------------------------------------------------------ DuckDB
    def attach(self, con) -> None:
        """Let a DuckDB connection read and write this lake's ``s3://`` locations (no-op on a local lake)."""
        if not self.remote:
            return
        from warehouse.duck import extension_path, literal

        s3 = self.s3
        con.execute(f"LOAD {literal(extension_path('httpfs'))}")
        options = [f"KEY_ID {literal(s3.key_id)}", f"SECRET {literal(s3.secret)}", f"REGION {literal(s3.region)}",
                   f"USE_SSL {'true' if s3.use_ssl else 'false'}", f"SCOPE {literal('s3://' + self.bucket)}"]
        if s3.host:
            options += [f"ENDPOINT {literal(s3.host)}", "URL_STYLE 'path'"]
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET onewindow_lake (TYPE s3, {', '.join(options)})")

    # ------------------------------------------------------------------ set-up
    def init(self) -> list[str]:
        """Create the lake (its bucket, on S3) if missing and prove a write, read and delete; returns the steps done."""
        if not self.remote:
            Path(self.url).mkdir(parents=True, exist_ok=True)
            done = [f"local directory {self.url}"]
        else:
            import pyarrow.fs as pafs

            fs = self.filesystem(create_buckets=True)
            try:
                existed = fs.get_file_info(self.bucket).type != pafs.FileType.NotFound
                if not existed:
                    fs.create_dir(self.bucket)
            except OSError as exc:
                raise LakeIOError(f"s3://{self.bucket}", "create bucket", exc) from exc
            done = [f"bucket {self.bucket} {'exists' if existed else 'created'}"]
        probe = self.join(".onewindow-probe", uuid.uuid4().hex)
        with tempfile.TemporaryDirectory(prefix="onewindow-lake-") as tmpdir:
            local = Path(tmpdir) / "probe"
            local.write_bytes(b"onewindow lake probe\n")
            self.put_file(local, probe)
        with self.local_file(probe) as back:
            if back.read_bytes() != b"onewindow lake probe\n":
                raise LakeIOError(probe, "read back", ValueError("probe object came back different"))
        try:
            self.filesystem().delete_file(self.fs_path(probe))
        except OSError as exc:
            raise LakeIOError(probe, "delete", exc) from exc
        return [*done, f"write, read and delete under {self.url}"]
