"""The rules' predicates in Python, for GX's pandas execution engine.

Each function mirrors one SQL predicate of :mod:`quality.sql` / :mod:`quality.rules`
value for value (NULL handling included) and returns a boolean ``pandas.Series``
that is True for a *bad* row.  They exist so the whole suite runs on GX's pandas
engine too (the like-for-like benchmark, :mod:`quality.bench`); the hub itself
validates inside DuckDB.  Tests check that both engines count the same rows.

Written the way a pandas user would: vectorised string methods where pandas has
them, a Python function per value where the standard needs arithmetic.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

from quality import sql, standards

Frame = Any  # pandas.DataFrame (pandas is imported only by GX's pandas engine)
Check = Callable[[Frame], Any]

_BLANK_RE = re.compile(sql.NON_BLANK_PATTERN)
_DATE_RE = re.compile(sql.DATE_PATTERN)
_RIC18 = re.compile(f" *{sql.RIC_PATTERN_18} *")
_RIC15 = re.compile(f" *{sql.RIC_PATTERN_15} *")
_USCC = re.compile(f" *{sql.USCC_PATTERN} *")
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None  # NaN / None / pd.NA are NULL


def blank(value: Any) -> bool:
    """``ow_blank``: NULL or no character outside ASCII whitespace."""
    s = _text(value)
    return s is None or _BLANK_RE.search(s) is None


def strict_date(value: Any) -> dt.date | None:
    """``ow_date``: a real calendar date written YYYY-MM-DD (year 0000 does not exist)."""
    s = _text(value)
    if s is None or not _DATE_RE.fullmatch(s) or s.startswith("0000"):
        return None
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        return None


def _add_years(day: dt.date, years: int) -> dt.date:
    """DuckDB's ``date + INTERVAL n YEAR``: 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _map(frame: Frame, col: str, fn: Callable[[Any], bool]) -> Any:
    return frame[col].map(fn).astype(bool)


def missing(col: str, numeric: bool = False) -> Check:
    if numeric:
        return lambda f: f[col].isna()
    return lambda f: _map(f, col, blank)


def regex_search(col: str, pattern: str, must_match: bool) -> Check:
    """``sql.regex_violation``: NULL is never a violation."""
    def check(f: Frame) -> Any:
        hit = f[col].str.contains(pattern, regex=True, na=not must_match).astype(bool)
        return ~hit if must_match else hit
    return check


def impossible_date(col: str) -> Check:
    return lambda f: _map(f, col, lambda v: not blank(v) and strict_date(v) is None)


def end_before_start(start: str, end: str) -> Check:
    def check(f: Frame) -> Any:
        def bad(s: Any, e: Any) -> bool:
            a, b = strict_date(s), strict_date(e)
            return a is not None and b is not None and b < a
        return _pairs(f, (start, end), bad)
    return check


def _pairs(f: Frame, cols: tuple[str, ...], fn: Callable[..., bool]) -> Any:
    import pandas as pd

    return pd.Series([fn(*vals) for vals in zip(*(f[c] for c in cols))], index=f.index, dtype=bool)


# ------------------------------------------------------------------ GB 11643
def ric_kind(value: Any) -> int | None:
    s = _text(value)
    if s is None:
        return None
    if _RIC18.fullmatch(s):
        return 18
    if _RIC15.fullmatch(s):
        return 15
    return None


def _clean(s: str) -> str:
    return s.replace(" ", "").upper()


def ric_check_char_bad(value: Any) -> bool:
    if ric_kind(value) != 18:
        return False
    c = _clean(value)
    return c[17] != standards.ric_check_char(c[:17])


def ric_division_bad(value: Any) -> bool:
    return ric_kind(value) is not None and _clean(value)[:6] not in standards.division_codes()


def ric_birth8(value: Any) -> str | None:
    kind = ric_kind(value)
    if kind is None:
        return None
    c = _clean(value)
    return c[6:14] if kind == 18 else "19" + c[6:12]


def ric_birth_bad(value: Any) -> bool:
    b = ric_birth8(value)
    return b is not None and strict_date(f"{b[:4]}-{b[4:6]}-{b[6:]}") is None


def _guarded(check: Callable[[Any], bool], col: str, when: tuple[str, str] | None) -> Check:
    if when is None:
        return lambda f: _map(f, col, check)
    type_col, value = when
    return lambda f: _pairs(f, (type_col, col), lambda t, v: t == value and check(v))


def ric(col: str, code: str, when: tuple[str, str] | None = None) -> Check:
    """The GB 11643 check ``code`` (id_format / id_check_char / id_division / id_birth_date)."""
    if code == "id_format":
        pattern = re.compile(f"^ *(?:(?:{sql.RIC_PATTERN_18}|{sql.RIC_PATTERN_15}) *)?$")
        return _guarded(lambda v: _text(v) is not None and pattern.search(v) is None, col, when)
    fn = {"id_check_char": ric_check_char_bad, "id_division": ric_division_bad,
          "id_birth_date": ric_birth_bad}[code]
    return _guarded(fn, col, when)


# ------------------------------------------------------------------ GB 32100
def uscc_check_char_bad(value: Any) -> bool:
    s = _text(value)
    if s is None or not _USCC.fullmatch(s):
        return False
    c = _clean(s)
    total = sum(standards.USCC_ALPHABET.index(ch) * w for ch, w in zip(c[:17], _USCC_WEIGHTS))
    return c[17] != standards.USCC_ALPHABET[(31 - total % 31) % 31]


def uscc(col: str, code: str, when: tuple[str, str] | None = None) -> Check:
    if code == "uscc_format":
        pattern = re.compile(f"^ *(?:{sql.USCC_PATTERN} *)?$")
        return _guarded(lambda v: _text(v) is not None and pattern.search(v) is None, col, when)
    return _guarded(uscc_check_char_bad, col, when)


# ------------------------------------------------------------------ other rules
def duplicate_key(key: str) -> Check:
    return lambda f: _pairs(f, (key, "_key_rows"), lambda k, n: not blank(k) and n > 1)


def holder_code_type(col: str, allowed: tuple[str, ...]) -> Check:
    ok = frozenset(allowed)
    return lambda f: _map(f, col, lambda v: not blank(v) and v.strip(" ") not in ok)


def _loose_date(value: Any) -> dt.date | None:
    # The validity rules use TRY_CAST(x AS DATE); malformed dates are already
    # impossible_date errors, so only well-formed ones matter here.
    return strict_date(value)


def id_card_validity(birth: str, issue: str, until: str) -> Check:
    def bad(b: Any, i: Any, u: Any) -> bool:
        bd, idate, udate = _loose_date(b), _loose_date(i), _loose_date(u)
        if bd is None or idate is None or (udate is not None and udate < idate):
            return False
        for age, term in ((16, 5), (26, 10), (46, 20)):
            if idate < _add_years(bd, age):
                return blank(u) or (udate is not None and udate != _add_years(idate, term))
        return udate is not None
    return lambda f: _pairs(f, (birth, issue, until), bad)


def fixed_term(start: str, end: str, years: int) -> Check:
    def bad(s: Any, e: Any) -> bool:
        a, b = _loose_date(s), _loose_date(e)
        return a is not None and b is not None and b >= a and b != _add_years(a, years) - dt.timedelta(days=1)
    return lambda f: _pairs(f, (start, end), bad)


def licence_id(col: str, status: str) -> Check:
    return lambda f: _map(f, col, lambda v: _text(v) is not None and sql.licence_id_status(v) == status)


def licence_id_parts(col: str, type_col: str, issuer_col: str, version_col: str) -> Check:
    def as_int(v: Any) -> int | None:
        try:
            return int(str(v).strip())
        except ValueError:
            return None

    def bad(lid: Any, t: Any, i: Any, ver: Any) -> bool:
        if _text(lid) is None or sql.licence_id_status(lid) == "format":
            return False
        # SQL three-valued logic: a comparison with NULL is unknown, and unknown OR false is not bad.
        parts = lid.split(".") + [""] * 9
        a, b = as_int(parts[8]), as_int(ver) if _text(ver) is not None else None
        return ((_text(t) is not None and parts[5] != t) or (_text(i) is not None and parts[6] != i)
                or (a is not None and b is not None and a != b))
    return lambda f: _pairs(f, (col, type_col, issuer_col, version_col), bad)
