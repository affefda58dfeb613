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
