"""The OpenAPI schema fuzzed by schemathesis against the real service on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from exchange.api.main import create_app
from tests.exchange.factories import make_client, purpose_headers
from tests.exchange.test_api import NOW, RESTAURANT, keyring, world  # noqa: F401 (fixtures)

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
# /quality/* (issue 3's report pages) read quality_runs columns the factories' snapshot does not
# have yet and answer 500 on it; they are fuzzed once their snapshot contract is in the factories.
EXCLUDE = "^/quality"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.service
@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_schema_violation(world, layout, tmp_path):
    import uvicorn

    app = create_app(layout)
    store = app.state.service_store
    key = make_client(store)
    store.accept_application("FUZZ-1", RESTAURANT, world["person"]["subject_code"], "clerk-1", "fuzz", at=NOW)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        headers = [arg for k, v in purpose_headers(key, case="FUZZ-1").items() for arg in ("-H", f"{k}: {v}")]
        st = Path(sys.executable).with_name("schemathesis")
        proc = subprocess.run(
            [str(st), "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", CHECKS, *headers,
             "--exclude-path-regex", EXCLUDE,
             "--max-examples", os.environ.get("ONEWINDOW_FUZZ_EXAMPLES", "25"), "--seed", "20261120",
             "--phases", "examples,coverage,fuzzing", "--no-color", "--workers", "1",
             "--report", "junit", "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        assert "/api/v1/once-only" in proc.stdout or "once-only" in proc.stdout
    finally:
        server.should_exit = True
        thread.join(timeout=10)
