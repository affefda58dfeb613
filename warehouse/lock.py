"""One writer per DuckDB file: an advisory lock beside the library."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def writer_lock(db_path: Path) -> Iterator[None]:
    """Block until this process is the only writer of ``db_path``."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(db_path) + ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
