"""Errors of the warehouse package. Each keeps its inputs and says whether a retry can help."""

from __future__ import annotations


class WarehouseError(Exception):
    """Base error of the warehouse package."""

    retryable: bool = False


class LakeConfigError(WarehouseError, ValueError):
    """The lake's settings are wrong (``ONEWINDOW_LAKE_URL``, S3 endpoint or credentials); fix them, a retry will not help."""

    def __init__(self, variable: str, value: object, reason: str) -> None:
        self.variable = variable
        self.value = value
        super().__init__(f"{variable}={value!r}: {reason}")


class LakeIOError(WarehouseError):
    """Reading or writing a lake object failed; a retry may help unless the object is missing."""

    def __init__(self, location: str, action: str, cause: BaseException) -> None:
        self.location = location
        self.action = action
        self.retryable = not isinstance(cause, FileNotFoundError)  # a missing object stays missing
        super().__init__(f"lake: cannot {action} {location}: {type(cause).__name__}: {cause}")


class LicenceConflict(WarehouseError):
    """A build would store a licence identifier that is already stored (or twice in one chunk).

    Identifiers derive from type, issuer, a hash of the certificate key and the version, so
    this means two certificates collided (or one certificate was issued twice): the chunk is
    rolled back, earlier chunks and the last good state stay; a retry gives the same result."""

    def __init__(self, licence_ids: list[str]) -> None:
        self.licence_ids = licence_ids
        shown = ", ".join(licence_ids[:5]) + (" …" if len(licence_ids) > 5 else "")
        super().__init__(f"{len(licence_ids)} licence identifier(s) would be stored twice: {shown}; "
                         "nothing of this chunk was stored — check the certificates behind them")


class LicenceFilesMissing(WarehouseError):
    """Licence files registered in the library are gone from its licence directory."""

    def __init__(self, directory: str, names: list[str]) -> None:
        self.directory, self.names = directory, names
        super().__init__(f"{len(names)} registered licence file(s) missing from {directory} "
                         f"(first: {names[0]}); restore them from a backup of the data directory")


class LibraryConfigError(WarehouseError, ValueError):
    """The library's settings are wrong (``ONEWINDOW_LIBRARY_CATALOG_URL`` / ``ONEWINDOW_LIBRARY_DATA_URL``); a retry will not help."""

    def __init__(self, variable: str, value: object, reason: str) -> None:
        self.variable = variable
        self.value = value
        shown = "<hidden>" if "@" in str(value) else repr(value)  # a catalog URL may carry a password
        super().__init__(f"{variable}={shown}: {reason}")


class LibraryConflict(WarehouseError):
    """A DuckLake library transaction kept conflicting with other writers' commits.

    Every attempt was rolled back, so nothing of it is stored; a later retry (the task's) can succeed."""

    retryable = True

    def __init__(self, what: str, attempts: int, cause: BaseException) -> None:
        self.what, self.attempts = what, attempts
        super().__init__(f"{what}: still conflicting with other library writers after {attempts} attempts "
                         f"(nothing of it was stored): {cause}")
