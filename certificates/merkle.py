"""Merkle trees and inclusion proofs as in RFC 9162 (Certificate Transparency 2.0), SHA-256.

``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``; a tree of
``n`` leaves splits at the largest power of two below ``n`` (RFC 9162 §2.1.1). Built
bottom-up, pairing neighbours and carrying a lone last node up unchanged, which gives
the same tree (a property test checks it against the recursive definition).

The inclusion proof of leaf ``index`` is the RFC 9162 §2.1.3.1 audit path; it is
verified with the §2.1.3.2 algorithm. A path valid at one position does not verify
at another; the tree size is not pinned by the path alone (a left-edge path can fit
several sizes), so callers must take the size from signed data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_sha256 = hashlib.sha256
HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """All levels of a tree over leaf hashes (level 0 = the leaf hashes themselves)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        if not leaf_hashes:
            raise ValueError("a Merkle tree needs at least one leaf")
        levels = [list(leaf_hashes)]
        level = levels[0]
        while len(level) > 1:
            nxt = [_sha256(b"\x01" + level[i] + level[i + 1]).digest()
                   for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            levels.append(nxt)
            level = nxt
        self.levels = levels
        self.size = len(leaf_hashes)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` (leaf to root)."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} outside a tree of {self.size}")
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path

    def proofs_concat(self) -> list[bytes]:
        """Every leaf's audit path as one byte string (``b"".join(proof(i))``), fast."""
        levels = self.levels[:-1]
        out = []
        for index in range(self.size):
            parts = []
            i = index
            for level in levels:
                s = i ^ 1
                if s < len(level):
                    parts.append(level[s])
                i >>= 1
            out.append(b"".join(parts))
        return out


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root implied by an audit path (RFC 9162 §2.1.3.2); None when the path cannot fit."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def reference_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 MTH by its recursive definition (for tests; quadratic-free but slow)."""
    n = len(leaf_hashes)
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_root(leaf_hashes[:k]), reference_root(leaf_hashes[k:]))
