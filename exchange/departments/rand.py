"""Seeded randomness: one independent stream per (seed, day, purpose); never global state."""

from __future__ import annotations

import random
import zlib

import numpy as np


def _tag(purpose: str) -> int:
    return zlib.crc32(purpose.encode("utf-8"))


def np_rng(seed: int, day: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, day, _tag(purpose)]))


def py_rng(seed: int, day: int, purpose: str) -> random.Random:
    # a str seed is hashed with SHA-512, independent of PYTHONHASHSEED
    return random.Random(f"{seed}:{day}:{purpose}")
