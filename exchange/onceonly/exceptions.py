"""Errors of ``exchange.onceonly``, all under one base :class:`OnceOnlyError`."""

from __future__ import annotations

from pathlib import Path

from exchange.exceptions import ExchangeError


class OnceOnlyError(ExchangeError):
    """Base of every error raised by ``exchange.onceonly``."""

    retryable: bool = False


class CatalogueError(OnceOnlyError, ValueError):
    """The service-item catalogue file is malformed; fix the TOML, retrying will not help."""

    def __init__(self, path: Path, where: str, reason: str) -> None:
        self.path = path
        self.where = where
        self.reason = reason
        super().__init__(f"{path}: {where}: {reason}; fix the catalogue entry "
                         "(see shared/STANDARDS.md, GB/T 39554)")


class UnknownItemError(OnceOnlyError, KeyError):
    """A service-item code is not in the catalogue."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"no service item with code {code!r}; list the catalogue at "
                         "GET /api/v1/items (基本编码 or 实施编码 both work)")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])
