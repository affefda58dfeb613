"""Errors raised by the department simulator."""

from __future__ import annotations


class SimulationError(Exception):
    """The simulator cannot run with these arguments or this data directory.

    Keeps the offending inputs as attributes; a retry with the same inputs will fail
    the same way (the simulator is deterministic), so fix the arguments first.
    """

    def __init__(self, message: str, **inputs: object) -> None:
        super().__init__(message)
        self.inputs = inputs
        for key, value in inputs.items():
            setattr(self, key, value)
