"""Column-wise RFC 8785 licence payloads: pyarrow kernels over whole columns, numpy for digits.

:func:`encode_arrow` gives every *ordinary* row of a set of Arrow columns the same
``(licence_id, base_id, payload)`` as :meth:`certificates.encoder.PayloadEncoder.encode`
(property-tested), without a Python object per row: the payload's shape is fixed, so its
RFC 8785 text is a join of columns and constants. A row is ordinary when every string it
slots in is clean (JSON would not escape it, ``str.strip()`` would not change it), its
dates are dates, its version is 1..999, it supersedes nothing, and its status-list name is
clean. Rows that are not ordinary come back null, for the caller's row path.

The extension is canonicalised column-wise too when it is a flat JSON object of clean
strings, safe integers, booleans and nulls without spaces — what DuckDB's ``json_object``
writes — with its keys in any order: the rows are grouped by key set, and each key set
whose order is not RFC 8785's is rewritten with one regex extraction for all its rows.
Any other extension (floats, nesting, spaces) is canonicalised one value at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from certificates.arrow_text import fixed_width, single as _single, utf8_values
from certificates.identifiers import ALPHABET, ROOT, _M, _VALUE
from certificates.model import FORMAT, STATUS_CODES
from certificates.signing import canonical_json

#: Characters ``str.strip()`` removes (Python's own definition; none lies above U+3000,
#: which a test checks over all of Unicode), as an RE2 class.
_STRIP_CLASS = "".join(f"\\x{{{c:x}}}" for c in range(0x3001) if chr(c).isspace())
#: A string the column path cannot slot in verbatim: JSON would escape a character of it,
#: or ``strip()`` would change it.
_UNCLEAN = rf'["\\\x00-\x1f]|^[{_STRIP_CLASS}]|[{_STRIP_CLASS}]$'
_ESCAPED = r'["\\\x00-\x1f]'
TEXT_COLUMNS = ("cert_key", "licence_type_code", "issuer_code", "licence_type_name", "cert_number",
                "issuer_name", "holder_name", "holder_code", "holder_code_type")

# A flat extension object as DuckDB writes it. Keys: no escapes, none of : , { } (so the key
# set can be read off by deleting the values), only BMP characters (so Python's sort is RFC
# 8785's UTF-16 order). Values: escape-free strings, integers of at most 15 digits (inside
# the IEEE-754 safe range, no -0, no leading zero), true, false, null.
_KEY = r'"[^"\\\x00-\x1f:,{}\x{10000}-\x{10FFFF}]*"'
_VAL = r'(?:"[^"\\\x00-\x1f]*"|0|-?[1-9][0-9]{0,14}|true|false|null)'
_FLAT = rf'^\{{(?:{_KEY}:{_VAL}(?:,{_KEY}:{_VAL})*)?\}}$'
_loads = json.JSONDecoder().decode


def _step(p: int, ch: str) -> int:
    return (((p + _VALUE[ch]) % _M or _M) * 2) % (_M + 1)


#: ISO 7064 MOD 37,36 step by (running value, digit).
_STEP = np.array([[_step(p, str(d)) for d in range(10)] for p in range(_M + 1)], dtype=np.int64)


def _string(arr: pa.Array) -> pa.Array | None:
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type) or pa.types.is_dictionary(arr.type):
        try:
            return arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


def _date(arr: pa.Array) -> pa.Array | None:
    if pa.types.is_date32(arr.type):
        return arr
    if pa.types.is_date64(arr.type) or pa.types.is_null(arr.type):
        return arr.cast(pa.date32())
    return None


def _all_null(n: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    nulls = pa.nulls(n, pa.string())
    return nulls, nulls, nulls


class _Codes:
    """A column as dense integer codes (nulls get a code of their own) and its distinct values."""

    def __init__(self, arr: pa.Array) -> None:
        d = pc.dictionary_encode(arr, null_encoding="encode")
        self.codes = d.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        self.values = d.dictionary

    def per_value(self, values: list[Any], dtype: Any = object) -> np.ndarray:
        """``values[k]`` (one per distinct value) for every row."""
        return np.asarray(values, dtype=dtype)[self.codes] if len(values) else np.zeros(0, dtype=dtype)


def _combined(*codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes of the combinations of several code columns, and one row holding each."""
    code = codes[0]
    for c in codes[1:]:
        width = int(c.max()) + 1 if len(c) else 1
        code = code * width + c
        if int(code.max(initial=0)) > 1 << 40:  # keep the mixed radix far from overflow
            code = np.unique(code, return_inverse=True)[1].astype(np.int64)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return inverse.astype(np.int64), first


def _block(keys: tuple[np.ndarray, ...], parts: Any) -> pa.Array:
    """A text for every row that depends only on the code columns ``keys``: ``parts(take)``
    lists the pieces to join, with ``take(column)`` giving the column at one row of each
    distinct combination of ``keys``; joined once per combination, spread by ``take``."""
    inverse, first = _combined(*keys)
    rows = pa.array(first)
    small = pc.binary_join_element_wise(*parts(lambda column: column.take(rows)), "")
    return small.take(pa.array(inverse))


def _clean(codes: _Codes) -> np.ndarray:
    """Per row: the value can be slotted into the JSON text verbatim (checked once per value)."""
    bad = pc.fill_null(pc.match_substring_regex(codes.values, _UNCLEAN), True).to_numpy(zero_copy_only=False)
    return codes.per_value(list(~bad), bool)


def encode_arrow(enc: Any, cols: Mapping[str, Any], versions: Any, supersedes: Any | None = None,
                 ref_list: Any | None = None, ref_index: Any | None = None) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``(licence_id, base_id, payload)`` string arrays for the ordinary rows (see the module
    docstring), null for the others. ``enc`` is the :class:`~certificates.encoder.PayloadEncoder`
    (issue time, per-type and per-issuer caches); ``ref_list``/``ref_index`` the status-list
    entry of each row (null list: no entry).

    The payload is joined from 12 pieces a row: the per-row columns (extension, holder code
    and name, identifier, number, status entry) and blocks that depend only on a few
    low-cardinality columns (type, issuer, dates, status, version), each built once per
    distinct combination. The identifier is built as fixed-width bytes with numpy."""
    versions = _single(versions)
    n = len(versions)
    text = {c: _string(_single(cols[c])) for c in TEXT_COLUMNS}
    status, ext_col = _string(_single(cols["status"])), _string(_single(cols["extension"]))
    issue, vfrom, until = (_date(_single(cols[c])) for c in ("issue_date", "valid_from", "valid_until"))
    if any(v is None for v in (*text.values(), status, ext_col, issue, vfrom, until)) \
            or not pa.types.is_integer(versions.type):
        return _all_null(n)
    ver = pc.fill_null(versions, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    good = (ver >= 1) & (ver <= 999)
    ver = np.where(good, ver, 1)
    if supersedes is not None:
        good &= pc.is_null(_single(supersedes)).to_numpy(zero_copy_only=False)
    for c in ("cert_key", "cert_number", "holder_name", "holder_code"):  # distinct per row: checked in full
        bad = pc.match_substring_regex(text[c], _UNCLEAN)
        good &= ~pc.fill_null(bad, True).to_numpy(zero_copy_only=False)
    status = pc.fill_null(status, "01")
    status = pc.if_else(pc.equal(status, ""), "01", status)
    vfrom = pc.coalesce(vfrom, issue)
    good &= ~pc.is_null(issue).to_numpy(zero_copy_only=False)
    good &= ~pc.fill_null(pc.less(until, vfrom), False).to_numpy(zero_copy_only=False)
    ext = canonical_extensions(ext_col)
    good &= ~pc.is_null(ext).to_numpy(zero_copy_only=False)

    # the low-cardinality columns, as codes
    t, i = text["licence_type_code"], text["issuer_code"]
    tc, ic, tnc, inc, ctc, sc = (_Codes(x) for x in (t, i, text["licence_type_name"], text["issuer_name"],
                                                     text["holder_code_type"], status))
    for codes in (tc, ic, tnc, inc, ctc):
        good &= _clean(codes)
    good &= sc.per_value([v in STATUS_CODES for v in sc.values.to_pylist()], bool)
    pair, pair_row = _combined(tc.codes, ic.codes)
    pairs = [(t[int(r)].as_py(), i[int(r)].as_py()) for r in pair_row]
    prefixes = [enc._prefix_value(a, b) if a is not None and b is not None else None for a, b in pairs]
    good &= np.array([p is not None for p in prefixes], dtype=bool)[pair]
    p_of = np.array([_M if p is None else p for p in prefixes], dtype=np.int64)

    # identifier (GB/T 36904): ROOT . type(21) . issuer(18) . serial(20) . version(3) . check, fixed width
    data, off = utf8_values(pc.fill_null(text["cert_key"], ""))
    sha = hashlib.sha256
    digests = b"".join([sha(data[a:b]).digest()[:8] for a, b in zip(off[:-1].tolist(), off[1:].tolist())])
    serial = np.frombuffer(digests, dtype=">u8").astype(np.uint64) % np.uint64(10**16)
    year = pc.fill_null(pc.year(issue), 1).to_numpy(zero_copy_only=False).astype(np.uint64)
    digits = np.empty((n, 23), dtype=np.uint8)
    for j in range(4):
        digits[:, j] = (year // np.uint64(10 ** (3 - j))) % np.uint64(10)
    for j in range(16):
        digits[:, 4 + j] = (serial // np.uint64(10 ** (15 - j))) % np.uint64(10)
    for j in range(3):
        digits[:, 20 + j] = (ver // 10 ** (2 - j)) % 10
    p = p_of[pair]
    for j in range(23):
        p = _STEP[p, digits[:, j]]
    head_len = len(ROOT) + 1 + 21 + 1 + 18 + 1
    heads = np.zeros((len(pairs), head_len), dtype=np.uint8)
    for k, (a, b) in enumerate(pairs):
        head = f"{ROOT}.{a}.{b}.".encode("utf-8") if prefixes[k] is not None else b""
        if len(head) == head_len:
            heads[k] = np.frombuffer(head, dtype=np.uint8)
        else:
            good &= pair != k
    ident = np.empty((n, head_len + 26), dtype=np.uint8)
    ident[:, :head_len] = heads[pair]
    ident[:, head_len:head_len + 20] = digits[:, :20] + np.uint8(48)
    ident[:, head_len + 20] = ord(".")
    ident[:, head_len + 21:head_len + 24] = digits[:, 20:] + np.uint8(48)
    ident[:, head_len + 24] = ord(".")
    ident[:, head_len + 25] = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)[(_M + 1 - p) % _M]
    licence_id, base_id = fixed_width(ident), fixed_width(ident[:, :head_len + 20])

    # the status list entry: '{"credential_status":{"index":' + index + ',"list":"<list>","purpose":"message"},'
    if ref_list is None:
        lc, head_piece, list_piece = None, "{", ""
    else:
        lists, index = _string(_single(ref_list)), _single(ref_index)
        if lists is None or index is None or not pa.types.is_integer(index.type):
            return _all_null(n)
        lc = _Codes(lists)
        has = ~pc.is_null(lists).to_numpy(zero_copy_only=False)
        clean = ~pc.fill_null(pc.match_substring_regex(lc.values, _ESCAPED), True).to_numpy(zero_copy_only=False)
        good &= ~has | (lc.per_value(list(clean), bool) & ~pc.is_null(index).to_numpy(zero_copy_only=False))
        index_text = pc.fill_null(index, 0).cast(pa.string())
        opening = '{"credential_status":{"index":'
        head_piece = pc.binary_join_element_wise(opening, index_text, "") if has.all() else \
            pc.if_else(pa.array(has), pc.binary_join_element_wise(opening, index_text, ""), "{")
    definer = pa.array([enc._definer(a) if a is not None else None for a, _ in pairs], pa.string())
    q = '"'
    join = pc.binary_join_element_wise
    issue_c, from_c, until_c = (_Codes(x).codes for x in (issue, vfrom, until))
    versions_a = pa.array(ver)
    pair_a = pa.array(pair)

    def entry_and_definer(take: Any) -> list[Any]:
        listed = "" if lc is None else pc.if_else(pc.is_null(take(lists)), "", join(
            ',"list":"', take(lists), '","purpose":"message"},', ""))
        return [listed, '"definer":', definer.take(take(pair_a)), ',"division_code":"',
                pc.utf8_slice_codeunits(take(i), 2, 8), '","extension":']

    def validity(take: Any) -> list[Any]:
        end = take(until)
        return ['","status":"', take(status), '","supersedes":null,"type_code":"', take(t), '","valid_from":"',
                take(vfrom).cast(pa.string()), '","valid_until":',
                pc.if_else(pc.is_null(end), "null", join(q, end.cast(pa.string()), q, "")), ',"version":',
                take(versions_a).cast(pa.string()), "}"]

    block_01 = _block((pair,) if lc is None else (lc.codes, pair), entry_and_definer)
    block_3 = _block((ctc.codes,), lambda take: ['","code_type":"', take(text["holder_code_type"]), '","name":"'])
    block_4 = _block((issue_c, ic.codes, inc.codes), lambda take: [
        '"},"issue_date":"', take(issue).cast(pa.string()), f'","issued_at":"{enc.issued_at}","issuer":{{"code":"',
        take(i), '","name":"', take(text["issuer_name"]), '"},"licence_id":"'])
    block_5 = _block((tnc.codes,), lambda take: ['","name":"', take(text["licence_type_name"]), '","number":"'])
    block_6 = _block((sc.codes, tc.codes, from_c, until_c, ver - 1), validity)
    payload = join(head_piece, block_01, ext, f',"format":"{FORMAT}","holder":{{"code":"', text["holder_code"],
                   block_3, text["holder_name"], block_4, licence_id, block_5, text["cert_number"], block_6, "")
    good &= ~pc.is_null(payload).to_numpy(zero_copy_only=False)
    if good.all():
        return licence_id, base_id, payload
    mask, null = pa.array(good), pa.scalar(None, pa.string())
    return (pc.if_else(mask, licence_id, null), pc.if_else(mask, base_id, null), pc.if_else(mask, payload, null))


#: Rows of an extension column whose key sets :func:`canonical_extensions` reads first, and
#: how many of the most frequent key sets it takes from them (one RE2 pattern each).
_SAMPLE = 256
_SHAPES = 16


def canonical_extensions(ext: pa.Array) -> pa.Array:
    """The RFC 8785 text of each extension (``{}`` for null or empty), null where the value
    is not a JSON object (the row path then reports it).

    First the key sets of a sample of the rows (:func:`_sample_shapes`): every row whose text
    is exactly one of those key sets in RFC 8785 order (one DFA match for all of them) is its
    own canonical text; a sampled key set out of order is matched and rewritten for all its
    rows. The rows left (another key set, or not flat) go through :func:`_general`."""
    n = len(ext)
    empty = pc.fill_null(pc.equal(ext, ""), True)
    as_is = pc.if_else(empty, "{}", ext)
    settled = empty.to_numpy(zero_copy_only=False).copy()  # rows whose text is known
    index = np.arange(n, dtype=np.int64)  # where each row's value sits in concat(pieces)
    pieces: list[pa.Array] = [as_is]
    size = n

    def put(rows: np.ndarray, values: pa.Array) -> None:
        nonlocal size
        index[rows] = size + np.arange(len(rows))
        pieces.append(values)
        size += len(rows)

    shapes = _sample_shapes(ext, settled)
    in_order = [keys for keys in shapes if list(keys) == sorted(keys)]
    if in_order:
        pattern = "^\\{(?:" + "|".join(_shape_pattern(keys) for keys in in_order) + ")\\}$"
        settled |= pc.fill_null(pc.match_substring_regex(ext, pattern), False).to_numpy(zero_copy_only=False)
    for keys in shapes:
        if list(keys) == sorted(keys):
            continue
        rest = np.flatnonzero(~settled)
        if not len(rest):
            break
        pattern = "^\\{" + _shape_pattern(keys, capture=True) + "\\}$"
        fields = pc.extract_regex(ext.take(pa.array(rest)), pattern)
        hit = pc.is_valid(fields).to_numpy(zero_copy_only=False)
        if hit.any():
            mine = rest[hit]
            put(mine, _reordered(fields.filter(pa.array(hit)), keys))
            settled[mine] = True
    rest = np.flatnonzero(~settled)
    if len(rest):
        put(rest, _general(ext.take(pa.array(rest))))
    if len(pieces) == 1:
        return as_is
    return pa.concat_arrays([pc.cast(x, pa.string()) for x in pieces]).take(pa.array(index))


def _sample_shapes(ext: pa.Array, skip: np.ndarray) -> list[tuple[str, ...]]:
    """The distinct key sets without a repeated key (at most ``_SHAPES``, most frequent first)
    of the flat values among up to ``_SAMPLE`` rows spread over ``ext`` (``skip``: rows not to read)."""
    candidates = np.flatnonzero(~skip)
    if not len(candidates):
        return []
    picked = candidates[np.unique(np.linspace(0, len(candidates) - 1, min(_SAMPLE, len(candidates))).astype(np.int64))]
    sample = ext.take(pa.array(picked))
    flat = pc.fill_null(pc.match_substring_regex(sample, _FLAT), False)
    shapes = pc.value_counts(pc.replace_substring_regex(sample.filter(flat), f":{_VAL}", ""))
    order = np.argsort(-shapes.field("counts").to_numpy(zero_copy_only=False), kind="stable")
    out = []
    for shape in shapes.field("values").take(pa.array(order)).to_pylist():
        keys = tuple(_loads("[" + shape[1:-1] + "]"))
        if len(set(keys)) == len(keys):
            out.append(keys)
    return out[:_SHAPES]


def _shape_pattern(keys: tuple[str, ...], *, capture: bool = False) -> str:
    """RE2 text of a flat object's members with exactly these keys in this order (the values
    as groups ``v0``, ``v1``, ... when ``capture``)."""
    return ",".join(f'"{_re_text(k)}":' + (f"(?P<v{j}>{_VAL})" if capture else _VAL) for j, k in enumerate(keys))


def _reordered(fields: pa.Array, keys: tuple[str, ...]) -> pa.Array:
    """The canonical text of flat objects with ``keys`` (in this order), from their values
    (``fields``, a struct of ``extract_regex`` groups): the members in RFC 8785 order."""
    parts: list[Any] = ["{"]
    for j, k in sorted(enumerate(keys), key=lambda jk: jk[1]):
        parts += [("," if len(parts) > 1 else "") + f'"{k}":', pc.struct_field(fields, [j])]
    return pc.binary_join_element_wise(*parts, "}", "")


def _general(ext: pa.Array) -> pa.Array:
    """:func:`canonical_extensions` of non-empty values without the sample: flat values grouped
    by key set (each key set out of order rewritten with one regex extraction for its rows),
    anything else canonicalised one value at a time."""
    n = len(ext)
    flat = pc.fill_null(pc.match_substring_regex(ext, _FLAT), False)
    index = np.arange(n, dtype=np.int64)
    pieces: list[pa.Array] = [ext]
    size = n

    def put(rows: np.ndarray, values: pa.Array) -> None:
        nonlocal size
        index[rows] = size + np.arange(len(rows))
        pieces.append(values)
        size += len(rows)

    flat_np = flat.to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(flat_np)
    if len(rows):
        shapes = pc.dictionary_encode(pc.replace_substring_regex(ext.take(pa.array(rows)), f":{_VAL}", ""))
        codes = shapes.indices.to_numpy(zero_copy_only=False)
        by_shape = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[by_shape], np.arange(len(shapes.dictionary) + 1))
        for s, shape in enumerate(shapes.dictionary.to_pylist()):
            keys = tuple(_loads("[" + shape[1:-1] + "]"))
            if list(keys) == sorted(keys) and len(set(keys)) == len(keys):
                continue  # already canonical
            mine = rows[by_shape[bounds[s]:bounds[s + 1]]]
            if len(set(keys)) != len(keys):  # a repeated key: json.loads keeps the last one
                put(mine, _one_by_one(ext.take(pa.array(mine))))
                continue
            pattern = "^\\{" + _shape_pattern(keys, capture=True) + "\\}$"
            put(mine, _reordered(pc.extract_regex(ext.take(pa.array(mine)), pattern), keys))
    other = np.flatnonzero(~flat_np)
    if len(other):
        put(other, _one_by_one(ext.take(pa.array(other))))
    if len(pieces) == 1:
        return ext
    return pa.concat_arrays([pc.cast(x, pa.string()) for x in pieces]).take(pa.array(index))


def _re_text(key: str) -> str:
    """``key`` as an RE2 literal (every non-alphanumeric ASCII character escaped)."""
    return "".join(f"\\{c}" if c.isascii() and not c.isalnum() else c for c in key)


def _one_by_one(values: pa.Array) -> pa.Array:
    """RFC 8785 text of each JSON object in ``values`` (null when it is not one)."""
    cache: dict[str, str | None] = {}
    out: list[str | None] = []
    for v in values.to_pylist():
        if v not in cache:
            try:
                value = json.loads(v)
                cache[v] = canonical_json(value).decode("utf-8") if type(value) is dict else None
            except (TypeError, ValueError, UnicodeError):  # rfc8785 raises ValueError subclasses
                cache[v] = None
        out.append(cache[v])
    return pa.array(out, pa.string())
