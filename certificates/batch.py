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

:class:`PayloadEncoder` produces the same bytes as ``canonical_json(build_payload(row))``
(a test checks it row by row) without building the dict: the payload's shape is fixed,
so its RFC 8785 form is a template with escaped strings slotted in. Rows it does not
recognise as ordinary go through :func:`certificates.model.build_payload`, which also
raises the proper :class:`LicenceDataError`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certificates._time import CST, aware
from certificates.identifiers import ALPHABET, ROOT, _M, _VALUE, _check_parts, _running_value
from certificates.merkle import HASH_SIZE, MerkleTree
from certificates.model import FORMAT, STATUS_CODES, build_payload, serial_for
from certificates.registry import load_registry
from certificates.signing import b64url, canonical_json

TOKEN_TYPE = "vnd.onewindow.licence+mtp"
TOKEN_VERSION = 2
MTP = "rfc9162-sha256"
ROOT_TYPE = "vnd.onewindow.licence-batch+jws"
ROOT_FORMAT = "onewindow.licence-batch/1"
PROOF_VERSION = 2
PROOF_FIXED = 1 + 4 + 64
MAX_BATCH = 1 << 16

_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C, ensure_ascii=False
_b64 = base64.urlsafe_b64encode
_TO_URL = bytes.maketrans(b"+/", b"-_")
_sha256 = hashlib.sha256


def batch_header(kid: str, batch_id: str, size: int) -> str:
    """BASE64URL of the header shared by every licence of one batch."""
    return b64url(canonical_json({"bid": batch_id, "bsz": size, "kid": kid, "mtp": MTP,
                                  "typ": TOKEN_TYPE, "ver": TOKEN_VERSION}))


def root_statement(kid: str, header_b64: str, root: bytes, size: int) -> str:
    """``header.payload`` of the root statement JWS (what the issuer key signs)."""
    head = b64url(canonical_json({"alg": "Ed25519", "kid": kid, "typ": ROOT_TYPE, "ver": 1}))
    body = b64url(canonical_json({"format": ROOT_FORMAT, "hash": "sha-256", "header": header_b64,
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


def sign_batch(payloads: Sequence[bytes], *, private_key: Any, kid: str, batch_id: str) -> SignedBatch:
    """Sign canonical payloads as one batch; ``tokens[i]`` carries ``payloads[i]``."""
    n = len(payloads)
    if not 1 <= n <= MAX_BATCH:
        raise ValueError(f"a batch holds 1..{MAX_BATCH} licences, got {n}")
    header = batch_header(kid, batch_id, n)
    prefix = f"\x00{header}.".encode("ascii")
    b2a, url, sha = binascii.b2a_base64, _TO_URL, _sha256
    payload_b64 = [b2a(p, newline=False).translate(url).rstrip(b"=") for p in payloads]
    tree = MerkleTree([sha(prefix + p).digest() for p in payload_b64])
    statement = root_statement(kid, header, tree.root, n)
    signature = private_key.sign(statement.encode("ascii"))
    header_dot = (header + ".").encode("ascii")
    tokens = [b"".join((header_dot, p64, b".", proof)).decode("ascii")
              for p64, proof in zip(payload_b64, _proof_segments(tree, signature))]
    return SignedBatch(batch_id, kid, tree.root, f"{statement}.{b64url(signature)}", tokens)


def _proof_segments(tree: MerkleTree, signature: bytes) -> list[bytes]:
    """BASE64URL(0x02 || index || signature || audit path) of every leaf, computed with numpy:
    the audit paths gathered level by level, base64 over whole runs of equal-length proofs
    (zero-padded to a multiple of 3 bytes, so each proof's encoding starts on a boundary;
    the padding only reaches the characters dropped with the ``=``)."""
    import numpy as np

    n = tree.size
    levels = [np.frombuffer(b"".join(level), dtype=np.uint8).reshape(-1, HASH_SIZE)
              for level in tree.levels[:-1]]
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
    segments: list[bytes] = [b""] * n
    groups = np.unique(count).tolist()
    for c in groups:
        rows = np.nonzero(count == c)[0] if len(groups) > 1 else idx
        size = PROOF_FIXED + HASH_SIZE * c
        padded = -(-size // 3) * 3
        block = np.ascontiguousarray(out[rows, :padded]) if len(groups) > 1 else out[:, :padded]
        text = binascii.b2a_base64(block.tobytes(), newline=False).translate(_TO_URL)
        step, keep = padded // 3 * 4, -(-size * 4 // 3)
        part = [text[j:j + keep] for j in range(0, step * len(rows), step)]
        if len(groups) == 1:
            return part
        for r, seg in zip(rows.tolist(), part):
            segments[r] = seg
    return segments


def _step(p: int, ch: str) -> int:
    return (((p + _VALUE[ch]) % _M or _M) * 2) % (_M + 1)


#: ISO 7064 MOD 37,36 running value after two more digits, by (value, "dd").
_STEP2 = [{f"{a}{b}": _step(_step(p, str(a)), str(b)) for a in range(10) for b in range(10)}
          for p in range(_M + 1)]
_loads = json.JSONDecoder().decode
_dumps_sorted = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
_SAFE = 2**53 - 1


def _flat_json(value: dict[str, Any]) -> str | None:
    """RFC 8785 text of a flat object of strings / safe ints / bools / nulls; None otherwise."""
    for k, v in value.items():
        t = type(v)
        if not (t is str or v is None or t is bool or (t is int and -_SAFE <= v <= _SAFE)) \
                or not (k.isascii() or max(k) <= "\uffff"):
            return None
    return _dumps_sorted(value)


class PayloadEncoder:
    """RFC 8785 bytes of licence payloads, built from a template (see the module docstring)."""

    def __init__(self, *, at: dt.datetime) -> None:
        self.issued_at = aware(at).astimezone(CST).isoformat(timespec="seconds")
        self._type: dict[str, str | None] = {}      # type code -> '"definer":{...}' or None
        self._prefix: dict[tuple[str, str], int | None] = {}  # (type, issuer) -> running value
        self._issuer: dict[tuple[str, str], str] = {}

    def _definer(self, type_code: str) -> str:
        d = self._type.get(type_code)
        if d is None:
            try:
                lt = load_registry().by_code(type_code)
                definer = {"name": lt.definer_name, "code": lt.definer_code}
            except KeyError:
                definer = {"name": None, "code": type_code[:18]}
            d = self._type[type_code] = canonical_json(definer).decode("utf-8")
        return d

    def _prefix_value(self, type_code: str, issuer_code: str) -> int | None:
        key = (type_code, issuer_code)
        if key not in self._prefix:
            try:
                _check_parts(type_code, issuer_code, "0", 1)
                self._prefix[key] = _running_value(type_code + issuer_code)
            except Exception:  # noqa: BLE001 - any problem: the slow path reports it properly
                self._prefix[key] = None
        return self._prefix[key]

    def encode(self, row: Mapping[str, Any], *, version: int = 1, supersedes: str | None = None,
               credential_status: tuple[str, int] | None = None) -> tuple[str, str, bytes]:
        """``(licence_id, base_id, canonical payload bytes)`` for a library row."""
        fast = None if supersedes is not None else self._fast(row, version, credential_status)
        if fast is not None:
            return fast
        payload = build_payload(row, version=version, supersedes=supersedes,
                                at=dt.datetime.fromisoformat(self.issued_at),
                                credential_status=credential_status)
        lid = payload["licence_id"]
        return lid, lid.rsplit(".", 2)[0], canonical_json(payload)

    def encode_many(self, columns: Mapping[str, Sequence[Any]], versions: Sequence[int],
                    supersedes: Sequence[str | None],
                    credential_status: Sequence[tuple[str, int] | None] | None = None
                    ) -> tuple[list[str], list[str], list[bytes]]:
        """:meth:`encode` of every row of ``columns`` (row ``k`` is ``{c: columns[c][k]}``):
        the same bytes, computed column-wise for ordinary rows; the others go row by row
        (and raise what :meth:`encode` raises)."""
        n = len(versions)
        ids: list = []
        bases: list = []
        data: list = []
        for start in range(0, n, _COLUMN_SLICE):  # slices keep every Arrow array one small chunk
            end = min(n, start + _COLUMN_SLICE)
            whole = start == 0 and end == n
            done = _encode_columns(
                self, columns if whole else {c: v[start:end] for c, v in columns.items()},
                versions if whole else versions[start:end], supersedes if whole else supersedes[start:end],
                credential_status if whole or credential_status is None else credential_status[start:end])
            if done is None:
                done = ([None] * (end - start),) * 3
            ids += done[0]
            bases += done[1]
            data += done[2]
        for k in range(n):
            if data[k] is None:
                row = {c: v[k] for c, v in columns.items()}
                ids[k], bases[k], data[k] = self.encode(
                    row, version=versions[k], supersedes=supersedes[k],
                    credential_status=None if credential_status is None else credential_status[k])
        return ids, bases, data  # type: ignore[return-value]

    def _fast(self, row: Mapping[str, Any], version: int,
              credential_status: tuple[str, int] | None = None) -> tuple[str, str, bytes] | None:
        g = row.get
        try:
            cert_key = g("cert_key").strip()
            type_code = g("licence_type_code").strip()
            issuer_code = g("issuer_code").strip()
            fields = [g(f).strip() for f in ("licence_type_name", "cert_number", "issuer_name",
                                             "holder_name", "holder_code", "holder_code_type")]
        except (AttributeError, TypeError):
            return None
        if not (cert_key and type_code and issuer_code and all(fields)) \
                or type(version) is not int or not 1 <= version <= 999:
            return None
        name, number, issuer_name, holder_name, holder_code, code_type = fields
        issue_date, valid_from, valid_until = g("issue_date"), g("valid_from"), g("valid_until")
        if type(issue_date) is not dt.date or type(valid_from) not in (dt.date, type(None)) \
                or type(valid_until) not in (dt.date, type(None)):
            return None
        valid_from = valid_from or issue_date
        if valid_until is not None and valid_until < valid_from:
            return None
        status = g("status") or "01"
        if status not in STATUS_CODES:
            return None
        ext = g("extension")
        if ext is None or ext == "":
            ext_json = "{}"
        elif type(ext) is str and ext[:1] == "{":
            try:
                value = _loads(ext)
            except ValueError:
                return None
            if type(value) is not dict:
                return None
            ext_json = _flat_json(value)
            if ext_json is None:
                ext_json = canonical_json(value).decode("utf-8")
        else:
            return None
        p = self._prefix_value(type_code, issuer_code)
        if p is None:
            return None
        serial = serial_for(cert_key, issue_date)
        tail = f"{serial}{version:03d}"  # digits only: 2 digits per table step
        step = _STEP2
        for i in range(0, len(tail) - 1, 2):
            p = step[p][tail[i:i + 2]]
        if len(tail) % 2:
            p = (((p + _VALUE[tail[-1]]) % _M or _M) * 2) % (_M + 1)
        base_id = f"{ROOT}.{type_code}.{issuer_code}.{serial}"
        licence_id = f"{base_id}.{version:03d}.{ALPHABET[(_M + 1 - p) % _M]}"
        ikey = (issuer_name, issuer_code)
        issuer_json = self._issuer.get(ikey)
        if issuer_json is None:
            issuer_json = self._issuer[ikey] = canonical_json(
                {"code": issuer_code, "name": issuer_name}).decode("utf-8")
        if credential_status is None:
            status_ref = ""
        elif type(credential_status[1]) is int and type(credential_status[0]) is str:
            status_ref = (f'"credential_status":{{"index":{credential_status[1]},'
                          f'"list":{_encode_str(credential_status[0])},"purpose":"message"}},')
        else:
            return None
        text = (
            f'{{{status_ref}"definer":{self._definer(type_code)},"division_code":{_encode_str(issuer_code[2:8])},'
            f'"extension":{ext_json},"format":"{FORMAT}","holder":{{"code":{_encode_str(holder_code)},'
            f'"code_type":{_encode_str(code_type)},"name":{_encode_str(holder_name)}}},'
            f'"issue_date":"{issue_date.isoformat()}","issued_at":"{self.issued_at}",'
            f'"issuer":{issuer_json},"licence_id":"{licence_id}","name":{_encode_str(name)},'
            f'"number":{_encode_str(number)},"status":{_encode_str(status)},"supersedes":null,'
            f'"type_code":{_encode_str(type_code)},"valid_from":"{valid_from.isoformat()}",'
            f'"valid_until":{"null" if valid_until is None else chr(34) + valid_until.isoformat() + chr(34)},'
            f'"version":{version}}}')
        try:
            return licence_id, base_id, text.encode("utf-8")
        except UnicodeEncodeError:
            return None  # a lone surrogate: the slow path reports it


# ----------------------------------------------------------------------------- column-wise encoding
#: Characters ``str.strip()`` removes (Python's own definition; none lies above U+3000,
#: which a test checks over all of Unicode), as an RE2 class.
_STRIP_CLASS = "".join(f"\\x{{{c:x}}}" for c in range(0x3001) if chr(c).isspace())
#: A string the column path cannot slot in verbatim: JSON would escape a character of it,
#: or ``strip()`` would change it. Such rows go through :meth:`PayloadEncoder.encode`.
_UNCLEAN = rf'["\\\x00-\x1f]|^[{_STRIP_CLASS}]|[{_STRIP_CLASS}]$'
#: Rows per column-wise pass: Arrow arrays of one chunk, far below the 2 GiB string limit.
_COLUMN_SLICE = 65_536
_TEXT_COLUMNS = ("cert_key", "licence_type_code", "issuer_code", "licence_type_name", "cert_number",
                 "issuer_name", "holder_name", "holder_code", "holder_code_type")
#: ISO 7064 MOD 37,36 step by (running value, digit).
_STEP = None


def _step_table():
    global _STEP
    if _STEP is None:
        import numpy as np

        _STEP = np.array([[_step(p, str(d)) for d in range(10)] for p in range(_M + 1)], dtype=np.int64)
    return _STEP


def _utf8_list(arr: Any) -> list[bytes]:
    """The values of a non-null pyarrow ``string`` array as ``bytes``, sliced from its buffers."""
    import numpy as np
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        return [v for chunk in arr.chunks for v in _utf8_list(chunk)]
    _, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1].tolist()
    raw = data.to_pybytes() if data is not None else b""
    return [raw[a:b] for a, b in zip(off, off[1:])]


def _encode_columns(enc: "PayloadEncoder", cols: Mapping[str, Sequence[Any]], versions: Sequence[Any],
                    supersedes: Sequence[str | None],
                    refs: Sequence[tuple[str, int] | None] | None) -> tuple[list[str], list[str], list[bytes]] | None:
    """Column-wise :meth:`PayloadEncoder.encode` for the ordinary rows (pyarrow kernels for the
    strings, numpy for serial digits and the check character). Rows it cannot take are left
    as None in the result, for the row path; None when the columns do not convert at all."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(versions)
    date, none = dt.date, type(None)
    issue_col, from_col, until_col = cols["issue_date"], cols["valid_from"], cols["valid_until"]
    ok = [type(v) is int and 1 <= v <= 999 and s is None and type(d) is date
          and (type(f) is date or f is None) and (type(u) is date or u is None)
          for v, s, d, f, u in zip(versions, supersedes, issue_col, from_col, until_col)]
    try:
        text = {c: pa.array(cols[c], pa.string()) for c in _TEXT_COLUMNS}
        status = pa.array(cols["status"], pa.string())
    except (pa.ArrowException, TypeError, ValueError, UnicodeError):
        return None
    if all(ok):
        issue, vfrom, until = (pa.array(c, pa.date32()) for c in (issue_col, from_col, until_col))
        ver = np.array(versions, dtype=np.int64)
    else:
        issue, vfrom, until = (pa.array([x if k else None for x, k in zip(c, ok)], pa.date32())
                               for c in (issue_col, from_col, until_col))
        ver = np.array([v if k else 1 for v, k in zip(versions, ok)], dtype=np.int64)
    good = pa.array(ok, pa.bool_())
    for arr in text.values():
        bad = pc.or_kleene(pc.match_substring_regex(arr, _UNCLEAN), pc.equal(pc.utf8_length(arr), 0))
        good = pc.and_kleene(good, pc.invert(pc.fill_null(bad, True)))
    status = pc.fill_null(status, "01")
    status = pc.if_else(pc.equal(status, ""), "01", status)
    good = pc.and_(good, pc.is_in(status, value_set=pa.array(sorted(STATUS_CODES))))
    good = pc.and_(good, pc.invert(pc.is_null(issue)))
    vfrom = pc.coalesce(vfrom, issue)
    good = pc.and_(good, pc.invert(pc.fill_null(pc.less(until, vfrom), False)))

    ext_col = cols["extension"]
    ext_cache: dict[Any, str | None] = {}
    exts: list[str | None] = []
    for e, k in zip(ext_col, ok):
        if not k:
            exts.append(None)
            continue
        try:
            exts.append(ext_cache[e])
            continue
        except (KeyError, TypeError):
            pass
        if e is None or e == "":
            j: str | None = "{}"
        elif type(e) is str and e[:1] == "{":
            try:
                value = _loads(e)
            except ValueError:
                value = None
            j = None if type(value) is not dict else (_flat_json(value) or canonical_json(value).decode("utf-8"))
        else:
            j = None
        if type(e) is str:
            ext_cache[e] = j
        exts.append(j)
    types_l, issuers_l = cols["licence_type_code"], cols["issuer_code"]
    prefix = [enc._prefix_value(t, i) if type(t) is str and type(i) is str else None
              for t, i in zip(types_l, issuers_l)]
    if refs is None:
        ref_json: Any = ""
    else:
        names: dict[str, str] = {}
        ref_list: list[str | None] = []
        for r in refs:
            if r is None:
                ref_list.append("")
            elif type(r[1]) is int and type(r[0]) is str:
                name = names.get(r[0])
                if name is None:
                    name = names[r[0]] = _encode_str(r[0])
                ref_list.append(f'"credential_status":{{"index":{r[1]},"list":{name},"purpose":"message"}},')
            else:
                ref_list.append(None)
        ref_json = pa.array(ref_list, pa.string())
    ext_arr = pa.array(exts, pa.string())
    good = pc.and_(good, pc.invert(pc.is_null(ext_arr)))
    good = pc.and_(good, pa.array([p is not None for p in prefix], pa.bool_()))

    # serial (GB/T 36904, model.serial_for): year + SHA-256(cert_key)[:8] mod 10^16, as digits
    sha = _sha256
    keys = cols["cert_key"]
    try:
        digests = b"".join([sha(k.encode("utf-8")).digest()[:8] if type(k) is str else bytes(8) for k in keys])
    except UnicodeError:
        return None
    serial = np.frombuffer(digests, dtype=">u8").astype(np.uint64) % np.uint64(10**16)
    year = pc.fill_null(pc.year(issue), 1).to_numpy(zero_copy_only=False).astype(np.uint64)
    digits = np.empty((n, 23), dtype=np.uint8)
    for j in range(4):
        digits[:, j] = (year // np.uint64(10 ** (3 - j))) % np.uint64(10)
    for j in range(16):
        digits[:, 4 + j] = (serial // np.uint64(10 ** (15 - j))) % np.uint64(10)
    for j in range(3):
        digits[:, 20 + j] = (ver // 10 ** (2 - j)) % 10
    table = _step_table()
    p = np.array([x if x is not None else _M for x in prefix], dtype=np.int64)
    for j in range(23):
        p = table[p, digits[:, j]]
    alphabet = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
    chars = digits + np.uint8(48)
    serial_s = pa.array(np.ascontiguousarray(chars[:, :20]).view("S20").ravel()).cast(pa.string())
    ver_s = pa.array(np.ascontiguousarray(chars[:, 20:]).view("S3").ravel()).cast(pa.string())
    check_s = pa.array(alphabet[(_M + 1 - p) % _M].view("S1")).cast(pa.string())

    join = pc.binary_join_element_wise
    t, i = text["licence_type_code"], text["issuer_code"]
    base_id = join(ROOT + ".", t, ".", i, ".", serial_s, "")
    licence_id = join(base_id, ".", ver_s, ".", check_s, "")
    definer = pa.array([enc._definer(x) if type(x) is str else None for x in types_l], pa.string())
    q = '"'
    until_json = pc.if_else(pc.is_null(until), "null", join(q, until.cast(pa.string()), q, ""))
    payload = join(
        "{", ref_json, '"definer":', definer, ',"division_code":"', pc.utf8_slice_codeunits(i, 2, 8),
        '","extension":', ext_arr, f',"format":"{FORMAT}","holder":{{"code":"', text["holder_code"],
        '","code_type":"', text["holder_code_type"], '","name":"', text["holder_name"],
        '"},"issue_date":"', issue.cast(pa.string()), f'","issued_at":"{enc.issued_at}","issuer":{{"code":"', i,
        '","name":"', text["issuer_name"], '"},"licence_id":"', licence_id, '","name":"', text["licence_type_name"],
        '","number":"', text["cert_number"], '","status":"', status, '","supersedes":null,"type_code":"', t,
        '","valid_from":"', vfrom.cast(pa.string()), '","valid_until":', until_json, ',"version":',
        pa.array(ver).cast(pa.string()), "}", "")
    good = pc.and_(good, pc.invert(pc.is_null(payload)))
    if not pc.all(good).as_py():
        payload = pc.if_else(good, payload, "")
        mask = good.to_pylist()
    else:
        mask = None
    ids, bases, data = licence_id.to_pylist(), base_id.to_pylist(), _utf8_list(payload)
    if mask is not None:
        for k, m in enumerate(mask):
            if not m:
                ids[k] = bases[k] = data[k] = None  # type: ignore[call-overload]
    return ids, bases, data
