"""Real processes on loopback for the production-shape test: each in its own process group, each with a log.

:class:`Processes` starts commands in new sessions with stdout/stderr to a log file,
kills a whole process tree with SIGKILL (a worker's children included, as when its
machine dies), and renders every log's tail for a failure report.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.pgserver import free_port


class ShapeError(AssertionError):
    """The production shape did not come up or did not reach the awaited state in time."""


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        """This process and every descendant still running."""
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the process group and any descendant that left it, then reap."""
        procs = self.tree()
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        psutil.wait_procs(procs, timeout=10)

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Processes:
    log_dir: Path
    procs: dict[str, Proc] = field(default_factory=dict)
    # the state awaited last and the most recent observation of it, for the failure report
    waiting_for: str = ""

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        if name in self.procs and self.procs[name].alive():
            raise ShapeError(f"{name} is already running")
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as fh:
            popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc = Proc(name, argv, popen, log)
        return proc

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> str:
        """Run a command to completion (logged like the others); its output, or a ShapeError naming the log."""
        proc = self.start(name, argv, env)
        try:
            rc = proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ShapeError(f"`{' '.join(argv)}` did not finish within {timeout:.0f} s:\n{proc.tail()}") from None
        if rc != 0:
            raise ShapeError(f"`{' '.join(argv)}` exited {rc}:\n{proc.tail()}")
        return proc.log.read_text(errors="replace")

    def kill_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.kill()

    def report(self, lines: int = 60) -> str:
        parts = [f"waiting for: {self.waiting_for or '-'}"]
        for proc in self.procs.values():
            state = "running" if proc.alive() else f"exited {proc.popen.returncode}"
            parts.append(f"===== {proc.name} ({state}; {proc.log}) =====\n{proc.tail(lines)}")
        return "\n".join(parts)

    def check_alive(self, *names: str) -> None:
        dead = [n for n in names if not self.procs[n].alive()]
        if dead:
            raise ShapeError(f"{', '.join(dead)} died:\n" + "\n".join(self.procs[n].tail() for n in dead))


def wait_until(what: str, probe: Callable[[], object], *, timeout: float, every: float = 1.0,
               processes: Processes | None = None, alive: tuple[str, ...] = ()) -> object:
    """Poll ``probe`` until it returns something truthy; ShapeError with the last observation after ``timeout``."""
    if processes is not None:
        processes.waiting_for = what
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        if processes is not None and alive:
            processes.check_alive(*alive)
        try:
            last = probe()
        except ShapeError:
            raise
        except Exception as exc:  # the service is still starting, or answered an error: keep polling
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise ShapeError(f"timed out after {timeout:.0f} s waiting for {what}; last observation: {last!r}")
        time.sleep(every)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def ports(n: int) -> list[int]:
    found: list[int] = []
    while len(found) < n:
        p = free_port()
        if p not in found:
            found.append(p)
    return found


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
