"""The production-shape tests print every process's log tail when a test fails."""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        shape = getattr(item.module, "_SHAPE", None)
        if shape is not None:
            report.sections.append(("production shape: process logs", shape.report()))
