"""Keyrings are built once per module: Ed25519 keys are cheap, PBKDF2 key files are not free."""

from __future__ import annotations

import pytest

from tests.certificates.factories import T0, make_layout


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """(layout, keyring, trust store loaded from the published directory)."""
    from certificates import Keyring, TrustStore, publish_trust

    layout = make_layout(tmp_path_factory.mktemp("var"))
    keyring = Keyring.load_or_create(layout, at=T0)
    publish_trust(keyring, layout.trust)
    return layout, keyring, TrustStore.from_dir(layout.trust)


@pytest.fixture(scope="module")
def keyring(hub):
    return hub[1]


@pytest.fixture(scope="module")
def trust(hub):
    return hub[2]
