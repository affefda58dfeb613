"""A benchmark keyring per test module (a real hub keyring under a temporary directory)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def keyring(tmp_path_factory):
    from certificates.bench import bench_keyring

    return bench_keyring(tmp_path_factory.mktemp("keys"))
