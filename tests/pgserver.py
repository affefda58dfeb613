"""A real, throw-away PostgreSQL server on loopback for tests and benchmarks.

Started from the Debian ``postgresql`` binaries (``make system-deps`` installs
them). As root, the cluster runs as the ``postgres`` system user because
``initdb`` refuses root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server did not start."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise PostgresUnavailable("no PostgreSQL server binaries under /usr/lib/postgresql; run `make system-deps`")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    root: Path
    port: int
    bindir: Path
    as_user: str | None

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def create_database(self, name: str) -> str:
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.dsn(name)

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "stop", "-m", "fast", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer:
    bindir = _bindir()
    as_user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="onewindow-pg-"))
    os.chmod(root, 0o755)
    if as_user:
        shutil.chown(root, user=as_user)
    server = PostgresServer(root=root, port=free_port(), bindir=bindir, as_user=as_user)
    data = root / "data"
    server._run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--locale=C.UTF-8")
    opts = f"-p {server.port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off -c max_connections=200"
    res = server._run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                      "-o", opts, "-w", "-t", "60", "start", check=False)
    if res.returncode != 0:
        log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
        raise PostgresUnavailable(f"PostgreSQL did not start: {res.stderr}\n{log}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return server
        time.sleep(0.2)
    raise PostgresUnavailable(f"PostgreSQL on port {server.port} did not accept connections")
