"""Named fault points for crash-safety tests.

``ONEWINDOW_FAULT=<point>`` makes the process die with SIGKILL-like abruptness
(``os._exit``) when it reaches that point, so tests can prove that a run killed
mid-way and re-run leaves the library exactly as one clean run would.
"""

from __future__ import annotations

import os

ENV = "ONEWINDOW_FAULT"


def checkpoint(point: str) -> None:
    if os.environ.get(ENV) == point:
        os._exit(137)
