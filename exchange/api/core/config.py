"""The service's one settings object, read from the environment.

``ONEWINDOW_DATA_DIR`` (data directory, default ``./var``), ``ONEWINDOW_HOST``
(default ``127.0.0.1``), ``ONEWINDOW_PORT`` (default ``8000``), ``ONEWINDOW_ENV``
(``development`` / ``test`` / ``production``; absent means ``production``, as for the
signing keys in ``certificates.pki``: only an explicit ``development`` relaxes anything).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from exchange.exceptions import ExchangeError
from warehouse.datadir import ENV_VAR as DATA_DIR_VAR
from warehouse.datadir import Layout, data_dir

ENVIRONMENTS = ("development", "test", "production")


class ConfigError(ExchangeError, ValueError):
    """A setting is invalid; fix the environment variable, a retry will not help."""

    retryable = False

    def __init__(self, variable: str, value: object, reason: str) -> None:
        self.variable = variable
        self.value = value
        super().__init__(f"{variable}={value!r}: {reason}")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    env: str = "production"

    @property
    def layout(self) -> Layout:
        return Layout(self.data_dir)

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env_map = os.environ if environ is None else environ
        env = env_map.get("ONEWINDOW_ENV", "production").strip().lower()
        if env not in ENVIRONMENTS:
            raise ConfigError("ONEWINDOW_ENV", env, f"must be one of {ENVIRONMENTS}")
        raw_port = env_map.get("ONEWINDOW_PORT", "8000")
        try:
            port = int(raw_port)
        except ValueError:
            raise ConfigError("ONEWINDOW_PORT", raw_port, "must be an integer") from None
        if not 0 < port < 65536:
            raise ConfigError("ONEWINDOW_PORT", raw_port, "must be between 1 and 65535")
        return cls(data_dir=data_dir(env_map.get(DATA_DIR_VAR)),
                   host=env_map.get("ONEWINDOW_HOST", "127.0.0.1"), port=port, env=env)
