"""Chinese identifier standards: GB 11643 (citizen ID), GB 32100 (credit code), GB 11714.

Pure Python, no database. Validation leans on ``python-stdnum`` (which ships the
historical GB/T 2260 division table); the calculators here are what the
simulator and the tests use to *make* valid identifiers.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass

from stdnum import exceptions as stdnum_exc
from stdnum.cn import ric, uscc

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RIC_CHECK = "10X98765432"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class Finding:
    """Why an identifier failed; ``code`` is a stable machine code."""

    code: str
    message: str


# --------------------------------------------------------------------- GB 11643
def ric_check_char(first17: str) -> str:
    """Check character for the first 17 digits of a citizen ID number (ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"need 17 digits, got {first17!r}")
    total = sum(int(c) * w for c, w in zip(first17, _RIC_WEIGHTS))
    return _RIC_CHECK[total % 11]


def ric_upgrade_15(number15: str) -> str:
    """Upgrade a legacy 15-digit ID number to 18 digits (insert ``19``, add the check)."""
    if len(number15) != 15 or not number15.isdigit():
        raise ValueError(f"legacy ID number must be 15 digits, got {number15!r}")
    body = number15[:6] + "19" + number15[6:]
    return body + ric_check_char(body)


@functools.lru_cache(maxsize=1)
def divisions() -> dict[str, tuple[str, str, bool]]:
    """GB/T 2260 division code -> (province, name, abolished), historical codes included.

    Read from the table ``python-stdnum`` ships; a name marked ``[-2010]`` was
    abolished that year but stays valid in identifiers issued before.
    """
    import stdnum.cn

    path = os.path.join(os.path.dirname(stdnum.cn.__file__), "loc.dat")
    out: dict[str, tuple[str, str, bool]] = {}
    province_code, province_name = "", ""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            code, _, rest = line.strip().partition(" ")
            name = rest.split('"')[1] if '"' in rest else ""
            abolished = bool(re.match(r"\[\d*-\d+\]", name))
            name = re.sub(r"^\[[\d-]*\]", "", name)
            if not line.startswith(" "):
                province_code, province_name = code, name
            else:
                out[province_code + code] = (province_name, name, abolished)
    return out


@functools.lru_cache(maxsize=1)
def division_codes() -> frozenset[str]:
    """All 6-digit GB/T 2260 division codes ever valid (historical codes stay valid)."""
    return frozenset(divisions())


@functools.lru_cache(maxsize=1)
def county_division_codes() -> tuple[str, ...]:
    """County-level division codes (last two digits not ``00``), sorted — for generators."""
    return tuple(sorted(c for c, (_, name, abolished) in divisions().items()
                        if not c.endswith("00") and not abolished and name != "市辖区"))


def ric_findings(number: str | None) -> list[Finding]:
    """Every problem with a citizen ID number; empty list means valid."""
    if number is None or number == "":
        return [Finding("missing_required", "身份证号码为空")]
    n = number.strip().upper()
    if len(n) == 15 and n.isdigit():
        n = ric_upgrade_15(n)
    if len(n) != 18 or not n[:17].isdigit() or n[17] not in "0123456789X":
        return [Finding("id_format", f"身份证号码格式错误：{number}")]
    out: list[Finding] = []
    if n[17] != ric_check_char(n[:17]):
        out.append(Finding("id_check_char", f"身份证号码校验码错误：应为 {ric_check_char(n[:17])}"))
    if n[:6] not in division_codes():
        out.append(Finding("id_division", f"身份证号码地址码 {n[:6]} 不是有效行政区划代码"))
    try:
        dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        out.append(Finding("id_birth_date", f"身份证号码出生日期 {n[6:14]} 不存在"))
    return out


def ric_is_valid(number: str | None) -> bool:
    return not ric_findings(number)


def ric_sex(number: str) -> str:
    """``男`` for an odd sequence digit, ``女`` for even."""
    return "男" if int(number[16]) % 2 == 1 else "女"


def make_ric(division: str, birth: dt.date, sequence: int) -> str:
    """Build a valid 18-digit citizen ID number."""
    if not 0 <= sequence <= 999:
        raise ValueError("sequence must be 0..999")
    body = f"{division}{birth:%Y%m%d}{sequence:03d}"
    return body + ric_check_char(body)


# --------------------------------------------------------------------- GB 11714 / GB 32100
def org_code_check_char(first8: str) -> str:
    """GB 11714 organisation code check character over 8 characters."""
    total = 0
    for c, w in zip(first8, _ORG_WEIGHTS):
        v = int(c) if c.isdigit() else ord(c) - ord("A") + 10
        total += v * w
    r = 11 - total % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def uscc_check_char(first17: str) -> str:
    """GB 32100 check character for the first 17 characters."""
    return uscc.calc_check_digit(first17)


def make_uscc(authority: str, category: str, division: str, org8: str) -> str:
    """Build a valid unified social credit code from its parts (org8: 8 digits/letters)."""
    org9 = org8 + org_code_check_char(org8)
    body = f"{authority}{category}{division}{org9}"
    if any(c not in USCC_ALPHABET for c in body):
        raise ValueError(f"character outside GB 32100 alphabet in {body!r}")
    return body + uscc_check_char(body)


def uscc_findings(code: str | None) -> list[Finding]:
    """Problems with a credit code. ``uscc_check_char`` is a *warning* class finding."""
    if code is None or code == "":
        return [Finding("missing_required", "统一社会信用代码为空")]
    c = code.strip().upper()
    if len(c) != 18:
        return [Finding("uscc_format", f"统一社会信用代码应为 18 位：{code}")]
    if any(ch not in USCC_ALPHABET for ch in c):
        return [Finding("uscc_format", f"统一社会信用代码含非法字符：{code}")]
    try:
        uscc.validate(c)
    except stdnum_exc.InvalidChecksum:
        return [Finding("uscc_check_char", f"统一社会信用代码校验码错误：应为 {uscc_check_char(c[:17])}")]
    except stdnum_exc.ValidationError as exc:  # format problems stdnum reports its own way
        return [Finding("uscc_format", f"统一社会信用代码格式错误：{exc}")]
    return []


def uscc_is_valid(code: str | None) -> bool:
    return not uscc_findings(code)


def mask_identifier(value: str | None) -> str:
    """Mask a personal identifier for logs and reports: ``110105********002X``."""
    if not value:
        return ""
    if len(value) <= 10:
        return value[:2] + "*" * max(0, len(value) - 4) + value[-2:]
    return value[:6] + "*" * (len(value) - 10) + value[-4:]
