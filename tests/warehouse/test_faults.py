"""Fault points: the pause holds the first process that reaches it, with its pid on file, and lets later ones pass."""

from __future__ import annotations

import os
import subprocess
import sys
import time

HIT = "from warehouse.faults import checkpoint; checkpoint('merge_mid_transaction'); print('passed')"


def test_pause_holds_only_the_first_process(tmp_path):
    marker = tmp_path / "paused"
    env = {**os.environ, "ONEWINDOW_FAULT_PAUSE": "merge_mid_transaction", "ONEWINDOW_FAULT_PAUSE_FILE": str(marker),
           "ONEWINDOW_FAULT_PAUSE_S": "60"}
    first = subprocess.Popen([sys.executable, "-c", HIT], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text().strip() == str(first.pid)
        assert first.poll() is None  # held at the point
        second = subprocess.run([sys.executable, "-c", HIT], env=env, capture_output=True, text=True, timeout=60)
        assert second.stdout.strip() == "passed"
        other_point = subprocess.run([sys.executable, "-c", HIT.replace("merge_mid_transaction", "after_extract")],
                                     env=env, capture_output=True, text=True, timeout=60)
        assert other_point.stdout.strip() == "passed"
    finally:
        first.kill()
        first.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paused"]  # no temporary files left
