"""A real S3-compatible server on loopback for tests: moto in server mode (``moto[server]``, in the lock file).

It speaks the S3 REST protocol over HTTP, so DuckDB's httpfs and pyarrow's S3
filesystem talk to it exactly as to MinIO or AWS; objects live in its memory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.pgserver import free_port

KEY_ID = "onewindow-test"
SECRET = "onewindow-test-secret"  # moto accepts any credentials; these only have to be consistent


class S3Unavailable(RuntimeError):
    """The moto server did not start."""


@dataclass
class S3Server:
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lake_env(self, url: str) -> dict[str, str]:
        """The environment that points the hub's lake at ``url`` (``s3://bucket/prefix``) on this server."""
        return {"ONEWINDOW_LAKE_URL": url, "ONEWINDOW_S3_ENDPOINT": self.endpoint, "ONEWINDOW_S3_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def start_s3(log_dir: Path | None = None) -> S3Server:
    port = free_port()
    log = Path(log_dir or tempfile.mkdtemp(prefix="onewindow-s3-")) / "moto.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(port, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise S3Unavailable(f"moto server exited with {proc.returncode}: {log.read_text(errors='replace')}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.2)
    server.stop()
    raise S3Unavailable(f"moto server on port {port} did not accept connections within 60 s: {log.read_text()}")
