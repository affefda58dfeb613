"""Electronic licence identifiers, GB/T 36904-2018 (电子证照标识).

::

    1.2.156.3005.2 . <type code> . <issuer code> . <serial> . <version> . <check>
        root           21 chars      18-char USCC   [0-9A-Z]+   3 digits    1 char

The check character is ISO/IEC 7064 hybrid MOD 37,36 (GB/T 17710) over
``type + issuer + serial + version`` with no dots and no root; characters map
0-9 → 0-9, A-Z → 10-35, and the check alphabet is ``0-9A-Z``.

Known variant. Some published identifiers carry a check character made by a copied
implementation whose final step is off by one: it picks the character that makes the
running value ``≡ 0 (mod 36)`` instead of ``≡ 1`` — ``(M - P) mod M`` where ISO
7064 has ``(M + 1 - P) mod M``. Its check character is therefore always the
standard one shifted one place down the alphabet (``U`` → ``T``, ``0`` → ``Z``).
:func:`check_identifier` accepts such identifiers as ``known_variant`` with a flag
instead of rejecting them; the hub itself only ever *makes* standard ones. (No
public test vector for the variant was found; if one turns up that disagrees,
:func:`variant_check_char` is the only function to change.)
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from certificates.exceptions import IdentifierError
from quality.standards import uscc_findings

ROOT = "1.2.156.3005.2"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_M = 36
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_SERIAL = re.compile(r"[0-9A-Z]+")
_TYPE = re.compile(r"[0-9A-Z]{18}[0-9]{3}")
_CODE = re.compile(r"[0-9A-Z]{18}")
MAX_VERSION = 999
#: A well-formed identifier: what :func:`parse_identifier` accepts, except that the type
#: and issuer codes must still pass their GB 32100 format check and the version be >= 1.
_SHAPE = re.compile(r"1\.2\.156\.3005\.2\.([0-9A-Z]{18}[0-9]{3})\.([0-9A-Z]{18})\.([0-9A-Z]+)\.([0-9]{3})\.([0-9A-Z])")

VARIANT_FLAG = "non-standard check character (known variant)"
VARIANT_FLAG_ZH = "非标准校验位（已知变体）"


#: ISO 7064 hybrid step as a table: the running value after ``ch`` is ``_NEXT[p][ch]``,
#: where ``S = (P + value(ch)) mod M`` (0 read as M) and the next ``P = 2S mod (M+1)``.
_NEXT = [{c: ((p + v) % _M or _M) * 2 % (_M + 1) for c, v in _VALUE.items()} for p in range(_M + 1)]


def _running_value(body: str, p: int = _M) -> int:
    """ISO 7064 hybrid system: P after the last character, reduced mod (M+1).

    ``p`` is the running value before ``body`` (``_M`` at the start), so a value can
    be continued from a cached prefix (:func:`_prefix_value`)."""
    step = _NEXT
    for ch in body:
        p = step[p][ch]
    return p


@functools.lru_cache(maxsize=4096)
def _prefix_value(type_code: str, issuer_code: str) -> int:
    """Running value after ``type_code + issuer_code`` (cached: a handful of pairs recur in
    every identifier; the serial and version are all that change)."""
    return _running_value(type_code + issuer_code)


def _identifier_value(type_code: str, issuer_code: str, serial: str, version: int) -> int:
    _check_parts(type_code, issuer_code, serial, version)
    return _running_value(f"{serial}{version:03d}", _prefix_value(type_code, issuer_code))


def _check_parts(type_code: str, issuer_code: str, serial: str, version: int) -> None:
    if not isinstance(type_code, str) or not _TYPE.fullmatch(type_code):
        raise IdentifierError(type_code, "licence type code must be 18-char credit code + 3 digits")
    if not isinstance(issuer_code, str) or len(issuer_code) != 18:
        raise IdentifierError(issuer_code, "issuer code must be an 18-character credit code")
    # A GB 32100 check-character failure is tolerated (real registers hold such
    # codes); a format failure is not.
    for code in (type_code[:18], issuer_code):
        problem = _code_format_problem(code)
        if problem:
            raise IdentifierError(code, problem)
    if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
        raise IdentifierError(serial, "serial must be one or more of 0-9 A-Z")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise IdentifierError(version, f"version must be an integer 1..{MAX_VERSION}")


@functools.lru_cache(maxsize=4096)
def _code_format_problem(code: str) -> str | None:
    """A GB 32100 format problem of ``code`` (not its check character), cached: a handful of
    type and issuer codes recur in every identifier."""
    if not _CODE.fullmatch(code):  # uscc_findings forgives case and spaces; the check character cannot
        return f"credit code must be 18 characters of 0-9 A-Z: {code!r}"
    bad = [f for f in uscc_findings(code) if f.code != "uscc_check_char"]
    return bad[0].message if bad else None


def check_char(type_code: str, issuer_code: str, serial: str, version: int) -> str:
    """The GB/T 36904 (ISO 7064 MOD 37,36) check character for these parts."""
    p = _identifier_value(type_code, issuer_code, serial, version)
    return ALPHABET[(_M + 1 - p) % _M]


def variant_check_char(type_code: str, issuer_code: str, serial: str, version: int) -> str:
    """The check character of the known off-by-one variant (see module docstring)."""
    p = _identifier_value(type_code, issuer_code, serial, version)
    return ALPHABET[(_M - p) % _M]


@dataclass(frozen=True)
class LicenceIdentifier:
    type_code: str
    issuer_code: str
    serial: str
    version: int
    check: str

    @property
    def base_id(self) -> str:
        """The identifier without version and check: stays the same across versions."""
        return f"{ROOT}.{self.type_code}.{self.issuer_code}.{self.serial}"

    def __str__(self) -> str:
        return f"{self.base_id}.{self.version:03d}.{self.check}"


def make_identifier(type_code: str, issuer_code: str, serial: str, version: int) -> str:
    """A full GB/T 36904 identifier with the standard check character."""
    check = check_char(type_code, issuer_code, serial, version)
    return str(LicenceIdentifier(type_code, issuer_code, serial, version, check))


def parse_identifier(s: str) -> LicenceIdentifier:
    """Split an identifier into its parts (format only; the check is not verified).

    Raises :class:`IdentifierError` when the text is not shaped like an identifier.
    """
    if not isinstance(s, str):
        raise IdentifierError(s, "not a string")
    shaped = _shaped_parts(s)
    if shaped is not None:
        parts = shaped[0]
        return LicenceIdentifier(parts[0], parts[1], parts[2], int(parts[3]), parts[4])
    return _parse_explained(s)


def _shaped_parts(s: str) -> tuple[tuple[str, str, str, str, str], int] | None:
    """((type, issuer, serial, version text, check), running value after type + issuer) of an
    identifier :func:`parse_identifier` accepts, in one match; None when ``s`` is anything
    else (:func:`_parse_explained` says why)."""
    shaped = _SHAPE.fullmatch(s)
    if shaped is None:
        return None
    parts = shaped.groups()
    p = _checked_prefix(parts[0], parts[1])
    if p is None or parts[3] == "000":
        return None
    return parts, p  # type: ignore[return-value]


@functools.lru_cache(maxsize=4096)
def _checked_prefix(type_code: str, issuer_code: str) -> int | None:
    """:func:`_prefix_value`, or None when either code fails its GB 32100 format check
    (one cache lookup for the three an identifier needs)."""
    if _code_format_problem(type_code[:18]) is not None or _code_format_problem(issuer_code) is not None:
        return None
    return _prefix_value(type_code, issuer_code)


def _parse_explained(s: str) -> LicenceIdentifier:
    """:func:`parse_identifier` step by step, so that a failure names what is wrong."""
    if not s.startswith(ROOT + "."):
        raise IdentifierError(s, f"must start with the root {ROOT}")
    parts = s[len(ROOT) + 1:].split(".")
    if len(parts) != 5:
        raise IdentifierError(s, "need type.issuer.serial.version.check after the root")
    type_code, issuer_code, serial, version_text, check = parts
    if not re.fullmatch(r"[0-9]{3}", version_text):
        raise IdentifierError(s, "version must be 3 digits")
    if len(check) != 1 or check not in ALPHABET:
        raise IdentifierError(s, "check must be one character of 0-9 A-Z")
    version = int(version_text)
    _check_parts(type_code, issuer_code, serial, version)
    return LicenceIdentifier(type_code, issuer_code, serial, version, check)


Status = Literal["valid", "known_variant", "invalid"]


@dataclass(frozen=True)
class IdentifierCheck:
    """Result of :func:`check_identifier`; ``ok`` is true for valid and known_variant."""

    value: str
    status: Status
    identifier: LicenceIdentifier | None = None
    expected_check: str | None = None
    reason: str | None = None
    reason_zh: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "invalid"


def _status(p: int, body: str, check: str) -> tuple[Status, str]:
    """(status, expected check character) from the running value ``p`` after type + issuer,
    continued over ``body`` (serial + version text), for parts that passed the format checks."""
    step = _NEXT
    for ch in body:
        p = step[p][ch]
    expected = ALPHABET[(_M + 1 - p) % _M]
    if check == expected:
        return "valid", expected
    if check == ALPHABET[(_M - p) % _M]:  # variant_check_char
        return "known_variant", expected
    return "invalid", expected


def check_identifier(s: str) -> IdentifierCheck:
    """Check an identifier: ``valid``, ``known_variant`` (flagged, kept) or ``invalid``."""
    try:
        ident = parse_identifier(s)
    except IdentifierError as exc:
        return IdentifierCheck(str(s), "invalid", reason=exc.reason, reason_zh="证照标识格式错误")
    status, expected = _status(_prefix_value(ident.type_code, ident.issuer_code),
                               f"{ident.serial}{ident.version:03d}", ident.check)
    if status == "valid":
        return IdentifierCheck(s, "valid", ident, expected)
    if status == "known_variant":
        return IdentifierCheck(s, "known_variant", ident, expected, VARIANT_FLAG, VARIANT_FLAG_ZH)
    return IdentifierCheck(s, "invalid", ident, expected,
                           f"check character {ident.check!r} wrong, expected {expected!r}",
                           f"证照标识校验位错误：应为 {expected}")


def identifier_status(s: str) -> tuple[Status, str] | None:
    """``(check_identifier(s).status, issuer code)`` without building the result objects,
    for an identifier of the usual shape; None for any other text (ask
    :func:`check_identifier`, which explains). Verification's hot path."""
    shaped = _SHAPE.fullmatch(s)
    if shaped is None:
        return None
    type_code, issuer_code, serial, version_text, check = shaped.groups()
    p = _checked_prefix(type_code, issuer_code)
    if p is None or version_text == "000":
        return None
    return _status(p, serial + version_text, check)[0], issuer_code


def next_version(identifier: str) -> str:
    """The identifier of the next version: same base, version + 1, new check character."""
    ident = parse_identifier(identifier)
    if ident.version >= MAX_VERSION:
        raise IdentifierError(identifier, f"version {MAX_VERSION} is the last one")
    return make_identifier(ident.type_code, ident.issuer_code, ident.serial, ident.version + 1)
