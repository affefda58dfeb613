"""Named fault points for crash-safety tests.

``ONEWINDOW_FAULT=<point>`` makes the process die with SIGKILL-like abruptness
(``os._exit``) when it reaches that point, so tests can prove that a run killed
mid-way and re-run leaves the library exactly as one clean run would.

``ONEWINDOW_FAULT_PAUSE=<point>`` with ``ONEWINDOW_FAULT_PAUSE_FILE=<path>`` holds the
first process that reaches the point there: it creates ``<path>`` (exclusively) with
its pid and sleeps, so a test can kill it — or the machine it runs on — from outside at
a known moment. Every later process passes (the file exists). After
``ONEWINDOW_FAULT_PAUSE_S`` seconds (default 600) the held process carries on.
"""

from __future__ import annotations

import os
import time

ENV = "ONEWINDOW_FAULT"
PAUSE_ENV = "ONEWINDOW_FAULT_PAUSE"
PAUSE_FILE_ENV = "ONEWINDOW_FAULT_PAUSE_FILE"
PAUSE_SECONDS_ENV = "ONEWINDOW_FAULT_PAUSE_S"


def checkpoint(point: str) -> None:
    if os.environ.get(ENV) == point:
        os._exit(137)
    if os.environ.get(PAUSE_ENV) == point and os.environ.get(PAUSE_FILE_ENV):
        _pause_once(os.environ[PAUSE_FILE_ENV], float(os.environ.get(PAUSE_SECONDS_ENV, "600")))


def _pause_once(marker: str, seconds: float) -> None:
    tmp = f"{marker}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    try:
        os.link(tmp, marker)  # atomic and exclusive: the marker appears with the pid in it
    except FileExistsError:
        return
    finally:
        os.unlink(tmp)
    time.sleep(seconds)
