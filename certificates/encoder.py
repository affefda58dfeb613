"""Licence payloads as RFC 8785 bytes, fast: :class:`PayloadEncoder`.

:meth:`PayloadEncoder.encode` produces the same bytes as ``canonical_json(build_payload(row))``
(a test checks it row by row) without building the dict: the payload's shape is fixed, so
its RFC 8785 form is a template with escaped strings slotted in. Rows it does not
recognise as ordinary go through :func:`certificates.model.build_payload`, which also
raises the proper :class:`LicenceDataError`.

:meth:`PayloadEncoder.encode_table` (Arrow columns, what the library build uses) and
:meth:`PayloadEncoder.encode_many` (Python lists) encode whole columns at once with
:func:`certificates.columns.encode_arrow` and send only the rows it leaves out through
:meth:`encode`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from certificates._time import CST, aware
from certificates.arrow_text import single as _single, utf8_values
from certificates.columns import _step, encode_arrow
from certificates.identifiers import ALPHABET, ROOT, _M, _VALUE, _check_parts, _running_value
from certificates.model import FORMAT, STATUS_CODES, build_payload, serial_for
from certificates.registry import load_registry
from certificates.signing import canonical_json

_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C, ensure_ascii=False
#: Rows per column-wise pass of :meth:`PayloadEncoder.encode_many`.
_COLUMN_SLICE = 65_536


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


    def encode_table(self, cols: Mapping[str, Any], versions: Any, supersedes: Any | None = None,
                     ref_list: Any | None = None, ref_index: Any | None = None
                     ) -> tuple[pa.Array, pa.Array, pa.Array]:
        """``(licence_id, base_id, payload)`` string arrays for Arrow columns (``ROW_COLUMNS`` of
        :mod:`certificates.issue`), ``ref_list``/``ref_index`` each row's status-list entry (a
        null list: none). Column-wise where :func:`~certificates.columns.encode_arrow` can, row by
        row through :meth:`encode` elsewhere (which raises :class:`LicenceDataError` for a bad row)."""
        ids, bases, payload = encode_arrow(self, cols, versions, supersedes, ref_list, ref_index)
        missing = np.flatnonzero(pc.is_null(payload).to_numpy(zero_copy_only=False))
        if not len(missing):
            return ids, bases, payload
        take = pa.array(missing)
        rows = {c: _single(v).take(take).to_pylist() for c, v in cols.items()}
        vers = _single(versions).take(take).to_pylist()
        sups = _single(supersedes).take(take).to_pylist() if supersedes is not None else [None] * len(missing)
        lists = _single(ref_list).take(take).to_pylist() if ref_list is not None else [None] * len(missing)
        idx = _single(ref_index).take(take).to_pylist() if ref_index is not None else [None] * len(missing)
        done = [self.encode({c: v[k] for c, v in rows.items()}, version=vers[k], supersedes=sups[k],
                            credential_status=None if lists[k] is None else (lists[k], idx[k]))
                for k in range(len(missing))]
        new = [pa.array([d[j] for d in done], pa.binary() if j == 2 else pa.string()) for j in range(3)]
        return tuple(_patch(arr, missing, values) for arr, values in zip((ids, bases, payload), new))  # type: ignore[return-value]

    def encode_many(self, columns: Mapping[str, Sequence[Any]], versions: Sequence[int],
                    supersedes: Sequence[str | None],
                    credential_status: Sequence[tuple[str, int] | None] | None = None
                    ) -> tuple[list[str], list[str], list[bytes]]:
        """:meth:`encode` of every row of ``columns`` (row ``k`` is ``{c: columns[c][k]}``):
        the same bytes, computed column-wise for ordinary rows; the others go row by row
        (and raise what :meth:`encode` raises)."""
        n = len(versions)
        ids: list = [None] * n
        bases: list = [None] * n
        data: list = [None] * n
        for start in range(0, n, _COLUMN_SLICE):  # slices keep every Arrow array one small chunk
            end = min(n, start + _COLUMN_SLICE)
            arrays = _arrays_from_lists({c: v[start:end] for c, v in columns.items()}, versions[start:end],
                                        supersedes[start:end],
                                        None if credential_status is None else credential_status[start:end])
            if arrays is None:
                continue
            lid, bid, pay = encode_arrow(self, *arrays)
            ids[start:end], bases[start:end] = lid.to_pylist(), bid.to_pylist()
            data[start:end] = utf8_list(pay)
        for k in range(n):
            if data[k] is None:
                row = {c: v[k] for c, v in columns.items()}
                ids[k], bases[k], data[k] = self.encode(
                    row, version=versions[k], supersedes=supersedes[k],
                    credential_status=None if credential_status is None else credential_status[k])
        return ids, bases, data

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




def _patch(arr: pa.Array, positions: np.ndarray, values: pa.Array) -> pa.Array:
    """``arr`` with ``arr[positions[k]]`` replaced by ``values[k]``."""
    index = np.arange(len(arr), dtype=np.int64)
    index[positions] = len(arr) + np.arange(len(positions))
    return pa.concat_arrays([arr, values.cast(arr.type)]).take(pa.array(index))


def utf8_list(arr: pa.Array) -> list[bytes | None]:
    """The values of a pyarrow ``string`` array as ``bytes`` (None for nulls), sliced from its buffers."""
    data, off = utf8_values(arr)
    raw = data.tobytes()
    out: list[bytes | None] = [raw[a:b] for a, b in zip(off[:-1].tolist(), off[1:].tolist())]
    if arr.null_count:
        for k in np.flatnonzero(pc.is_null(arr).to_numpy(zero_copy_only=False)).tolist():
            out[k] = None
    return out


def _arrays_from_lists(cols: Mapping[str, Sequence[Any]], versions: Sequence[Any], supersedes: Sequence[Any],
                       refs: Sequence[Any] | None) -> tuple | None:
    """``encode_arrow``'s arguments for Python lists; a row whose values have the wrong Python
    types gets a null version (so the row path takes it); None when a column does not convert."""
    date, none = dt.date, type(None)
    ok = [type(v) is int and 1 <= v <= 999 and type(d) is date and type(f) in (date, none)
          and type(u) in (date, none) and type(e) in (str, none)
          and (r is None or (type(r[0]) is str and type(r[1]) is int))
          for v, d, f, u, e, r in zip(versions, cols["issue_date"], cols["valid_from"], cols["valid_until"],
                                      cols["extension"], refs if refs is not None else [None] * len(versions))]
    from certificates.columns import TEXT_COLUMNS

    try:
        arrays: dict[str, Any] = {c: pa.array(cols[c], pa.string()) for c in (*TEXT_COLUMNS, "status")}
        arrays["extension"] = pa.array([e if k else None for e, k in zip(cols["extension"], ok)], pa.string())
        for c in ("issue_date", "valid_from", "valid_until"):
            arrays[c] = pa.array([x if k else None for x, k in zip(cols[c], ok)], pa.date32())
        sup = pa.array([s if type(s) is str else None if s is None else "?" for s in supersedes], pa.string())
    except (pa.ArrowException, TypeError, ValueError, UnicodeError):
        return None
    vers = pa.array([v if k else None for v, k in zip(versions, ok)], pa.int64())
    if refs is None:
        return arrays, vers, sup, None, None
    lists = pa.array([r[0] if r is not None and k else None for r, k in zip(refs, ok)], pa.string())
    index = pa.array([r[1] if r is not None and k else None for r, k in zip(refs, ok)], pa.int64())
    return arrays, vers, sup, lists, index
