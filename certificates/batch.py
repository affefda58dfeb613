"""Batch issuance: one Ed25519 signature over a Merkle root per batch, a proof per licence.

A batch-issued licence is a self-contained token of three base64url segments, shaped
like a compact JWS so that tools which split on ``.`` still find the payload::

    BASE64URL(header) . BASE64URL(JCS(payload)) . BASE64URL(proof)

    header = {"bid": <batch id>, "bsz": <leaves in the batch>, "kid": <issuer key id>,
              "mtp": "rfc9162-sha256", "typ": "vnd.onewindow.licence+mtp", "ver": 2}
    proof  = 0x02 || index (uint32, big endian) || Ed25519 signature (64 bytes)
             || audit path (32 bytes per node, leaf to root, RFC 9162 §2.1.3.1)

The header has no ``alg``: the token is *not* a JWS and a JOSE library must refuse it
rather than misread it. The payload is exactly the single-mode payload (RFC 8785).

Leaf ``i`` is ``SHA-256(0x00 || ASCII(header_b64 "." payload_b64))``; the tree is RFC
9162's (see :mod:`certificates.merkle`). What the issuer signs, once per batch, is a
standard compact JWS — the *root statement* — that anyone can check with the JWKS::

    root header  = {"alg": "Ed25519", "kid": kid, "typ": "vnd.onewindow.licence-batch+jws", "ver": 1}
    root payload = {"format": "onewindow.licence-batch/1", "hash": "sha-256",
                    "header": header_b64, "root": BASE64URL(root), "size": bsz}

A verifier rebuilds the root from the leaf and the path, rebuilds the root statement
from the token's header, and checks the signature carried in the proof. Binding
``header`` (and so ``kid``, ``bid``, ``bsz``) into the root statement means no field
of the token can change without the signature failing.

Payloads come from :class:`certificates.encoder.PayloadEncoder`.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from certificates.merkle import HASH_SIZE, MerkleTree
from certificates.signing import b64url, canonical_json

TOKEN_TYPE = "vnd.onewindow.licence+mtp"
TOKEN_VERSION = 2
MTP = "rfc9162-sha256"
ROOT_TYPE = "vnd.onewindow.licence-batch+jws"
ROOT_FORMAT = "onewindow.licence-batch/1"
PROOF_VERSION = 2
PROOF_FIXED = 1 + 4 + 64
MAX_BATCH = 1 << 16

_TO_URL = bytes.maketrans(b"+/", b"-_")
_sha256 = hashlib.sha256


def batch_header(kid: str, batch_id: str, size: int, *, typ: str = TOKEN_TYPE) -> str:
    """BASE64URL of the header shared by every token of one batch (``typ``: a licence's, or
    :data:`certificates.usecopy.SEALED_TYPE` for use-copies sealed together)."""
    return b64url(canonical_json({"bid": batch_id, "bsz": size, "kid": kid, "mtp": MTP,
                                  "typ": typ, "ver": TOKEN_VERSION}))


def root_statement(kid: str, header_b64: str, root: bytes, size: int, *, typ: str = ROOT_TYPE,
                   fmt: str = ROOT_FORMAT) -> str:
    """``header.payload`` of the root statement JWS (what the issuer key, or for sealed
    use-copies the hub service key, signs)."""
    head = b64url(canonical_json({"alg": "Ed25519", "kid": kid, "typ": typ, "ver": 1}))
    body = b64url(canonical_json({"format": fmt, "hash": "sha-256", "header": header_b64,
                                  "root": b64url(root), "size": size}))
    return f"{head}.{body}"


def leaf_for(header_b64: str, payload_b64: str) -> bytes:
    return _sha256(f"\x00{header_b64}.{payload_b64}".encode("ascii")).digest()


@dataclass(frozen=True)
class SignedBatch:
    batch_id: str
    kid: str
    root: bytes
    root_jws: str  # the root statement as a compact JWS (publishable, JOSE-verifiable)
    tokens: list[str]


@dataclass(frozen=True)
class BatchSeal:
    """One signed batch, as columns: every token is ``header . payload_b64[i] . proofs[i]``."""

    header: str       # BASE64URL of the batch header
    root: bytes
    root_jws: str     # the root statement as a compact JWS
    proofs: Any       # pyarrow string array: BASE64URL proof segment of each leaf


def sign_batch(payloads: Sequence[bytes], *, private_key: Any, kid: str, batch_id: str) -> SignedBatch:
    """Sign canonical payloads as one batch; ``tokens[i]`` carries ``payloads[i]``."""
    import pyarrow as pa

    from certificates.arrow_text import b64url_array

    payload_b64 = b64url_array(pa.array(payloads, pa.binary()))
    seal = seal_batch(payload_b64, private_key=private_key, kid=kid, batch_id=batch_id)
    tokens = [f"{seal.header}.{p}.{proof}"
              for p, proof in zip(payload_b64.to_pylist(), seal.proofs.to_pylist())]
    return SignedBatch(batch_id, kid, seal.root, seal.root_jws, tokens)


def seal_batch(payload_b64: Any, *, private_key: Any, kid: str, batch_id: str) -> BatchSeal:
    """Sign one batch given the BASE64URL payload of each leaf (a pyarrow string array):
    the leaf hashes (one SHA-256 each, the header prefix hashed once), the tree, one
    signature, and every leaf's proof segment."""
    from certificates.arrow_text import utf8_values

    n = len(payload_b64)
    if not 1 <= n <= MAX_BATCH:
        raise ValueError(f"a batch holds 1..{MAX_BATCH} licences, got {n}")
    header = batch_header(kid, batch_id, n)
    prefix = _sha256(f"\x00{header}.".encode("ascii"))
    data, off = utf8_values(payload_b64)
    leaves = []
    for a, b in zip(off[:-1].tolist(), off[1:].tolist()):
        h = prefix.copy()
        h.update(data[a:b])
        leaves.append(h.digest())
    levels = tree_levels(b"".join(leaves))
    root = levels[-1][0].tobytes()
    statement = root_statement(kid, header, root, n)
    signature = private_key.sign(statement.encode("ascii"))
    return BatchSeal(header, root, f"{statement}.{b64url(signature)}", _proofs(levels, signature))


def tree_levels(leaf_hashes: bytes) -> list[Any]:
    """The levels of the RFC 9162 tree over the concatenated 32-byte leaf hashes, bottom-up, as
    ``(nodes, 32)`` uint8 matrices — the tree :class:`~certificates.merkle.MerkleTree` builds
    (a test checks): each level's ``0x01 || left || right`` records laid out in one buffer by
    numpy and hashed slice by slice, a lone last node carried up unchanged."""
    import numpy as np

    level = np.frombuffer(leaf_hashes, dtype=np.uint8).reshape(-1, HASH_SIZE)
    if not len(level):
        raise ValueError("a Merkle tree needs at least one leaf")
    levels = [level]
    sha = _sha256
    width = 1 + 2 * HASH_SIZE
    while len(level) > 1:
        m = len(level) // 2
        records = np.empty((m, width), dtype=np.uint8)
        records[:, 0] = 1
        records[:, 1:1 + HASH_SIZE] = level[0:2 * m:2]
        records[:, 1 + HASH_SIZE:] = level[1:2 * m:2]
        buf = memoryview(records).cast("B")
        nodes = np.frombuffer(b"".join([sha(buf[i:i + width]).digest() for i in range(0, m * width, width)]),
                              dtype=np.uint8).reshape(m, HASH_SIZE)
        level = np.concatenate([nodes, level[-1:]]) if len(level) % 2 else nodes
        levels.append(level)
    return levels


def proof_segments(tree: MerkleTree, signature: bytes) -> Any:
    """BASE64URL(0x02 || index || signature || audit path) of every leaf, as a pyarrow string
    array, computed with numpy: the audit paths gathered level by level into one zero-filled
    matrix whose rows are a multiple of 3 bytes wide, base64 over the whole matrix at once;
    each row's segment is the first ``ceil(4 * size / 3)`` characters of its part (the zero
    fill reaches only the characters the ``=``-less form drops)."""
    import numpy as np

    return _proofs([np.frombuffer(b"".join(level), dtype=np.uint8).reshape(-1, HASH_SIZE) for level in tree.levels],
                   signature)


def _proofs(tree_levels: list[Any], signature: bytes) -> Any:
    """:func:`proof_segments` of the tree given as its levels (:func:`tree_levels`)."""
    import numpy as np

    from certificates.arrow_text import b64url_bytes, slices

    n = len(tree_levels[0])
    levels = tree_levels[:-1]
    if n & (n - 1) == 0:  # a full tree: every leaf's path has every level
        return _full_tree_proofs(levels, signature, n)
    idx = np.arange(n, dtype=np.int64)
    present = [((idx >> k) ^ 1) < len(level) for k, level in enumerate(levels)]
    count = np.sum(present, axis=0, dtype=np.int64) if present else np.zeros(n, dtype=np.int64)
    width = PROOF_FIXED + HASH_SIZE * len(levels)
    width3 = -(-width // 3) * 3
    out = np.zeros((n, width3), dtype=np.uint8)
    out[:, 0] = PROOF_VERSION
    out[:, 1:5] = idx.astype(">u4").view(np.uint8).reshape(n, 4)
    out[:, 5:PROOF_FIXED] = np.frombuffer(signature, dtype=np.uint8)
    offset = np.full(n, PROOF_FIXED, dtype=np.int64)
    cols = np.arange(HASH_SIZE, dtype=np.int64)
    aligned = True  # every path so far has the same length: plain column slices
    for k, level in enumerate(levels):
        if aligned and present[k].all():
            start = PROOF_FIXED + HASH_SIZE * k
            out[:, start:start + HASH_SIZE] = level[(idx >> k) ^ 1]
            continue
        if aligned:
            offset[:] = PROOF_FIXED + HASH_SIZE * k
            aligned = False
        rows = np.nonzero(present[k])[0]
        out[rows[:, None], offset[rows][:, None] + cols] = level[(idx[rows] >> k) ^ 1]
        offset[rows] += HASH_SIZE
    text = b64url_bytes(out)
    size = PROOF_FIXED + HASH_SIZE * count
    return slices(text, idx * (width3 // 3 * 4), (size * 4 + 2) // 3)


def _full_tree_proofs(levels: list[Any], signature: bytes, n: int) -> Any:
    """:func:`proof_segments` of a tree of ``n = 2**L`` leaves, without base64-encoding every
    proof. The proof is 69 fixed bytes (a multiple of 3) then the path, and three path levels
    are 96 bytes (a multiple of 3 again), so the proof's BASE64URL is the concatenation of
    independently encoded parts: bytes 0-5 (version, index, first signature byte), bytes
    6-68 (the rest of the signature, the same for every leaf) and one part per group of three
    levels, which for leaf ``i`` depends only on ``i >> 3g`` — so group ``g`` has only
    ``n >> 3g`` distinct parts, each encoded once and gathered."""
    import numpy as np

    from certificates.arrow_text import fixed_width

    idx = np.arange(n, dtype=np.int64)
    head = np.zeros((n, 6), dtype=np.uint8)
    head[:, 0] = PROOF_VERSION
    head[:, 1:5] = idx.astype(">u4").view(np.uint8).reshape(n, 4)
    head[:, 5] = signature[0]
    parts = [_b64_rows(head, 8), np.frombuffer(_b64(signature[1:]), dtype=np.uint8)[None, :].repeat(n, axis=0)]
    for g in range(0, len(levels), 3):
        group = levels[g:g + 3]
        distinct = np.arange(n >> g, dtype=np.int64)  # i >> g
        chunk = np.concatenate([level[((distinct >> k) ^ 1)] for k, level in enumerate(group)], axis=1)
        encoded = _b64_rows(chunk, -(-chunk.shape[1] * 4 // 3))
        parts.append(encoded[idx >> g])
    return fixed_width(np.concatenate(parts, axis=1))


def _b64(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=")


def _b64_rows(rows: Any, keep: int) -> Any:
    """BASE64URL of each row of a uint8 matrix, the first ``keep`` characters of each (rows
    zero-padded to a multiple of 3 bytes first)."""
    import numpy as np

    from certificates.arrow_text import b64url_bytes

    n, width = rows.shape
    width3 = -(-width // 3) * 3
    if width3 != width:
        padded = np.zeros((n, width3), dtype=np.uint8)
        padded[:, :width] = rows
        rows = padded
    text = b64url_bytes(np.ascontiguousarray(rows))
    return np.frombuffer(text, dtype=np.uint8).reshape(n, width3 // 3 * 4)[:, :keep]
