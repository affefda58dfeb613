"""Whole-column text helpers on pyarrow string arrays: buffers, base64url, slices as values.

Base64url of every value at once (:func:`b64url_array`): each value is padded with zero
bytes to a multiple of 3, so the base64 of the padded values' concatenation — one
``binascii`` call — holds each value's encoding on a 4-character boundary; the unpadded
base64url of a value is the first ``ceil(4 * len / 3)`` characters of its part (the zero
padding reaches only the characters that are dropped). The values are then cut out of
that text as an Arrow ``string_view`` array (offset and length per value, built with
numpy) and cast to ``string`` in C++. The base64 itself is :func:`b64url_bytes` (SIMD,
``pybase64``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybase64
import pyarrow as pa
import pyarrow.compute as pc

_PADS = pa.array(["", "\0", "\0\0"], pa.string())
_INLINE = 12  # a string_view value of at most 12 bytes is stored inside its view


def b64url_bytes(data: Any) -> bytes:
    """Base64url of a bytes-like object (padding kept), as ``binascii.b2a_base64`` with ``-_``
    for ``+/`` gives it, several times faster (SIMD)."""
    return pybase64.b64encode(data, altchars=b"-_")


def single(arr: Any) -> pa.Array:
    """``arr`` as one Arrow array (chunks combined)."""
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def utf8_values(arr: Any) -> tuple[memoryview, np.ndarray]:
    """The data buffer of a string or binary array and each value's start/end offsets (``n + 1``)."""
    arr = single(arr)
    _, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    return memoryview(data if data is not None else b""), off


def slices(text: Any, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """A ``string`` array whose value ``k`` is ``text[starts[k]:starts[k] + lengths[k]]``
    (``text`` ASCII or UTF-8 cut at character boundaries; below 2 GiB)."""
    n = len(starts)
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    views = np.zeros((n, 16), dtype=np.uint8)
    views[:, :4] = lengths.astype("<i4").view(np.uint8).reshape(n, 4)
    buf = np.frombuffer(text, dtype=np.uint8)
    for j in range(_INLINE):  # inline bytes of short values; the first 4 are every long value's prefix
        rows = np.flatnonzero(lengths > j) if j < 4 else np.flatnonzero((lengths > j) & (lengths <= _INLINE))
        if len(rows):
            views[rows, 4 + j] = buf[starts[rows] + j]
    long = lengths > _INLINE
    if long.any():
        views[long, 8:12] = 0  # data buffer 0
        views[long, 12:16] = starts[long].astype("<i4").view(np.uint8).reshape(-1, 4)
    arr = pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views), pa.py_buffer(text)])
    return arr.cast(pa.string())


def fixed_width(matrix: Any) -> pa.Array:
    """A string array whose value ``k`` is the ASCII row ``matrix[k]`` (all rows one width),
    over the matrix's own bytes."""
    n, width = matrix.shape
    offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int32) * np.int32(width))
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(np.ascontiguousarray(matrix))])


def b64url_array(arr: Any) -> pa.Array:
    """BASE64URL (no padding) of every value of a non-null string or binary array."""
    arr = single(arr)
    data, off = utf8_values(arr)
    lengths = np.diff(off).astype(np.int64)
    pad = (-lengths) % 3
    if pad.any():
        pads = _PADS.take(pa.array(pad))
        padded = pc.binary_join_element_wise(arr, pads.cast(arr.type), pa.scalar(b"", arr.type))
        data, poff = utf8_values(padded)
    else:
        poff = off
    text = b64url_bytes(data[poff[0]:poff[-1]])
    return slices(text, (poff[:-1] - poff[0]).astype(np.int64) // 3 * 4, (lengths * 4 + 2) // 3)


_FP_WIDTH = 88  # bytes hashed per value (GB/T 36904 identifiers are 82)
_FP_MUL = np.uint64(0x9E3779B97F4A7C15)
_FP_MIX = np.uint64(0xBF58476D1CE4E5B9)


def fingerprints(arr: Any) -> np.ndarray | None:
    """A 64-bit fingerprint of every value of a non-null string array (multiply-xorshift over
    its length and its bytes, zero-padded to 88): equal values, equal fingerprints; distinct
    values collide with probability about 2**-64 a pair. None when a value is longer than 88
    bytes (the caller then compares the values themselves)."""
    arr = single(arr)
    data, off = utf8_values(arr)
    lengths = np.diff(off).astype(np.int64)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if int(lengths.max()) > _FP_WIDTH:
        return None
    if (lengths == lengths[0]).all():  # fixed width: the rows are the buffer itself
        rows = np.frombuffer(data, dtype=np.uint8, count=n * int(lengths[0]), offset=int(off[0])).reshape(n, -1)
        block = np.zeros((n, _FP_WIDTH), dtype=np.uint8)
        block[:, :rows.shape[1]] = rows
    else:
        block = np.zeros((n, _FP_WIDTH), dtype=np.uint8)
        buf = np.frombuffer(data, dtype=np.uint8)
        for j in range(int(lengths.max())):
            rows = np.flatnonzero(lengths > j)
            block[rows, j] = buf[off[:-1][rows] + j]
    words = block.view("<u8")
    h = (lengths.astype(np.uint64) + np.uint64(1)) * _FP_MUL
    with np.errstate(over="ignore"):
        for k in range(words.shape[1]):
            h ^= words[:, k]
            h *= _FP_MUL
            h ^= h >> np.uint64(32)
        h *= _FP_MIX
        h ^= h >> np.uint64(29)
    return h
