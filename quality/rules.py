"""Per-dataset rules: each one a single SQL predicate over the staged batch.

A rule's ``predicate`` is TRUE for a bad row.  The split (:mod:`quality.check`) uses
it to quarantine or flag rows, and the GX suite (:mod:`quality.gx_suite`) uses the
same text in a custom GX column-map expectation (:mod:`quality.gx_suite`).  Rules whose
predicate is exactly what a native GX expectation computes (a regex, not-null) are
*built from* that native form, so the SQL text and the GX expectation still come from
one definition.  ``py`` is the same predicate in Python (:mod:`quality.py_checks`),
for GX's pandas engine: the suite runs unchanged on both engines.

The staged batch is the raw batch with exact duplicate rows collapsed and one extra
column ``_key_rows`` (rows sharing the business key), so duplicate_key is a row
predicate too.  Pure Python: importing this module needs no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from quality import py_checks as py
from quality import sql

Severity = Literal["error", "warning"]
GxForm = Literal["rows", "regex_match", "regex_not_match", "required"]

META_COLUMNS = ("_record_key", "_source_id", "_interval")


@dataclass(frozen=True)
class Rule:
    """One check: reason ``code`` on ``field``; ``predicate`` is TRUE for a bad row."""

    code: str
    field: str
    severity: Severity
    predicate: str
    message: str  # SQL expression giving the Chinese message
    gx_form: GxForm = "rows"
    pattern: str | None = None  # for regex forms
    # the predicate in Python over a pandas DataFrame (True = bad row), for GX's pandas engine
    py: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def rule_id(self) -> str:
        return f"{self.code}:{self.field}"


@dataclass(frozen=True)
class DatasetSpec:
    """What the hub knows about one dataset's raw batch."""

    name: str
    source_id: str
    key: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    dates: tuple[str, ...]  # every date column (YYYY-MM-DD text)
    optional_dates: tuple[str, ...]  # date columns that may be empty
    numeric: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = field(default=())

    @property
    def raw_columns(self) -> tuple[str, ...]:
        return self.columns + META_COLUMNS


# ------------------------------------------------------------------ rule factories
def _q(col: str) -> str:
    return f'"{col}"'


def missing_required(col: str, numeric: bool = False) -> Rule:
    if numeric:
        return Rule("missing_required", col, "error", f"({_q(col)} IS NULL)",
                    sql.lit(f"必填字段 {col} 为空"), gx_form="required", py=py.missing(col, True))
    return Rule("missing_required", col, "error", f"ow_blank({_q(col)})",
                sql.lit(f"必填字段 {col} 为空"), gx_form="required", pattern=sql.NON_BLANK_PATTERN,
                py=py.missing(col))


def impossible_date(col: str) -> Rule:
    return Rule("impossible_date", col, "error", sql.impossible_date(_q(col)),
                f"'日期 {col} 不存在或不是 YYYY-MM-DD：' || {_q(col)}", py=py.impossible_date(col))


def end_before_start(start: str, end: str) -> Rule:
    return Rule("validity_end_before_start", end, "error", sql.end_before_start(_q(start), _q(end)),
                f"'{end} ' || {_q(end)} || ' 早于 {start} ' || {_q(start)}", py=py.end_before_start(start, end))


def mis_encoded(col: str) -> Rule:
    pattern = sql.MOJIBAKE_PATTERN
    return Rule("mis_encoded_text", col, "error", sql.regex_violation(_q(col), pattern, False),
                sql.lit(f"{col} 含乱码（替换字符或 GBK/UTF-8 按 Latin-1 误解码）"),
                gx_form="regex_not_match", pattern=pattern, py=py.regex_search(col, pattern, False))


def duplicate_key(key: str) -> Rule:
    return Rule("duplicate_key", key, "error", f"(NOT ow_blank({_q(key)}) AND _key_rows > 1)",
                f"'同一批次中业务主键 {key} 有 ' || _key_rows || ' 条不同记录'", py=py.duplicate_key(key))


def _when_sql(when: tuple[str, str] | None) -> str | None:
    return f"{_q(when[0])} = {sql.lit(when[1])}" if when else None


def ric_rules(col: str, when: tuple[str, str] | None = None) -> tuple[Rule, ...]:
    """GB 11643 checks of a citizen ID column (``when``: (code type column, value) guard)."""
    q, guard_py = _q(col), when
    when = _when_sql(guard_py)
    guard = (lambda p: f"({when} AND {p})") if when else (lambda p: p)
    fmt_pattern = f"^ *(?:(?:{sql.RIC_PATTERN_18}|{sql.RIC_PATTERN_15}) *)?$"
    if when:
        fmt = Rule("id_format", col, "error", guard(sql.regex_violation(q, fmt_pattern, True)),
                   f"'身份证号码格式错误：' || {q}", py=py.ric(col, "id_format", guard_py))
    else:
        fmt = Rule("id_format", col, "error", sql.regex_violation(q, fmt_pattern, True),
                   f"'身份证号码格式错误：' || {q}", gx_form="regex_match", pattern=fmt_pattern,
                   py=py.ric(col, "id_format"))
    return (
        fmt,
        Rule("id_check_char", col, "error", guard(sql.ric_check_char_bad(q)),
             f"'身份证号码校验码错误：应为 ' || {sql.ric_expected_check_char(q)}",
             py=py.ric(col, "id_check_char", guard_py)),
        Rule("id_division", col, "error", guard(sql.ric_division_bad(q)),
             f"'身份证号码地址码 ' || substr(trim({q}), 1, 6) || ' 不是有效行政区划代码'",
             py=py.ric(col, "id_division", guard_py)),
        Rule("id_birth_date", col, "error", guard(sql.ric_birth_bad(q)),
             f"'身份证号码出生日期 ' || ow_ric_birth8({q}) || ' 不存在'",
             py=py.ric(col, "id_birth_date", guard_py)),
    )


def uscc_rules(col: str, when: tuple[str, str] | None = None) -> tuple[Rule, ...]:
    """GB 32100 checks: bad format is an error, a bad check character only a warning."""
    q, guard_py = _q(col), when
    when = _when_sql(guard_py)
    pattern = f"^ *(?:{sql.USCC_PATTERN} *)?$"
    if when:
        fmt = Rule("uscc_format", col, "error",
                   f"({when} AND {sql.regex_violation(q, pattern, True)})",
                   f"'统一社会信用代码格式错误：' || {q}", py=py.uscc(col, "uscc_format", guard_py))
    else:
        fmt = Rule("uscc_format", col, "error", sql.regex_violation(q, pattern, True),
                   f"'统一社会信用代码格式错误：' || {q}", gx_form="regex_match", pattern=pattern,
                   py=py.uscc(col, "uscc_format"))
    check = sql.uscc_check_char_bad(q)
    return (
        fmt,
        Rule("uscc_check_char", col, "warning", f"({when} AND {check})" if when else check,
             f"'统一社会信用代码校验码错误（保留待核）：应为 ' || {sql.uscc_expected_check_char(q)}",
             py=py.uscc(col, "uscc_check_char", guard_py)),
    )


# GB/T 36903 holder code types (持证主体代码类型).
HOLDER_CODE_TYPES = ("001", "099", "111", "114", "115", "118", "119", "120", "122",
                     "411", "412", "413", "414", "511", "516", "999")


def holder_code_type(col: str) -> Rule:
    """The code type must be a GB/T 36903 holder code type (111 / 001 then check the code)."""
    q = _q(col)
    allowed = ", ".join(sql.lit(t) for t in HOLDER_CODE_TYPES)
    return Rule("holder_code_type", col, "error", f"(NOT ow_blank({q}) AND trim({q}) NOT IN ({allowed}))",
                f"'持证主体代码类型 ' || {q} || ' 不是 GB/T 36903 代码类型'",
                py=py.holder_code_type(col, HOLDER_CODE_TYPES))


def _try_date(col: str) -> str:
    # Cheaper than ow_date; a malformed date is already an impossible_date error, so a
    # validity warning never decides anything for such a row.
    return f"TRY_CAST({_q(col)} AS DATE)"


def id_card_validity(birth: str, issue: str, until: str) -> Rule:
    """居民身份证 validity by age at issue: <16 → 5 y, 16–25 → 10 y, 26–45 → 20 y, 46+ → 长期 (empty)."""
    b, i, u = (_try_date(c) for c in (birth, issue, until))
    blank = f"ow_blank({_q(until)})"
    bands = " ".join(f"WHEN {i} < {b} + INTERVAL {age} YEAR THEN {blank} OR {u} <> {i} + INTERVAL {term} YEAR"
                     for age, term in ((16, 5), (26, 10), (46, 20)))
    # one CASE: each row evaluates only its own age band; end-before-start is an error of its own
    predicate = (f"({b} IS NOT NULL AND {i} IS NOT NULL AND NOT coalesce({u} < {i}, false) AND "
                 f"CASE {bands} ELSE {u} IS NOT NULL END)")
    return Rule("validity_term", until, "warning", predicate,
                f"'居民身份证有效期与签发时年龄段不符（<16 岁 5 年，16–25 岁 10 年，26–45 岁 20 年，"
                f"46 岁以上长期）：签发 ' || {_q(issue)} || '，有效期至 ' || "
                f"coalesce(nullif({_q(until)}, ''), '长期')", py=py.id_card_validity(birth, issue, until))


def fixed_term(start: str, end: str, years: int, licence: str) -> Rule:
    """A fixed-term licence: valid until start + ``years`` years − 1 day."""
    s, e = _try_date(start), _try_date(end)
    return Rule("validity_term", end, "warning",
                f"({e} >= {s} AND {e} <> {s} + INTERVAL {years} YEAR - INTERVAL 1 DAY)",
                f"'{licence}有效期应为 {years} 年：' || {_q(start)} || ' 至 ' || {_q(end)}",
                py=py.fixed_term(start, end, years))


def licence_id_rules(col: str) -> tuple[Rule, ...]:
    """GB/T 36904 identifier (``certificates.check_identifier``): the known variant is only flagged."""
    q = _q(col)
    status = f"ow_licence_id_status({q})"
    return (
        Rule("licence_id_format", col, "error", f"({status} = 'format')", f"'证照标识格式错误：' || {q}",
             py=py.licence_id(col, "format")),
        Rule("licence_id_check_char", col, "error", f"({status} = 'invalid')",
             f"'证照标识校验位错误（GB/T 36904 MOD 37,36）：' || {q}", py=py.licence_id(col, "invalid")),
        Rule("licence_id_variant", col, "warning", f"({status} = 'known_variant')",
             f"'证照标识使用非标准校验位（已知变体，保留待核）：' || {q}", py=py.licence_id(col, "known_variant")),
    )


def licence_id_parts(col: str, type_col: str, issuer_col: str, version_col: str) -> Rule:
    """The identifier's type code, issuer code and version are the licence's own."""
    q = _q(col)
    parts = (f"(split_part({q}, '.', 6) <> {_q(type_col)} OR split_part({q}, '.', 7) <> {_q(issuer_col)} "
             f"OR TRY_CAST(split_part({q}, '.', 9) AS INTEGER) <> TRY_CAST({_q(version_col)} AS INTEGER))")
    return Rule("licence_id_parts", col, "error", f"(ow_licence_id_status({q}) <> 'format' AND {parts})",
                f"'证照标识中的证照类型代码、颁发机构代码或版本号与证照记录不一致：' || {q}",
                py=py.licence_id_parts(col, type_col, issuer_col, version_col))


def _spec(name: str, source_id: str, key: str, columns: str, required: str, dates: str,
          optional_dates: str = "", numeric: str = "", text: str = "",
          extra: tuple[Rule, ...] = ()) -> DatasetSpec:
    cols, req, ds, opt, num = (tuple(s.split()) for s in (columns, required, dates,
                                                           optional_dates, numeric))
    rules: list[Rule] = [missing_required(c, c in num) for c in req]
    rules += [impossible_date(c) for c in ds]
    rules += list(extra)
    rules += [mis_encoded(c) for c in text.split()]
    rules.append(duplicate_key(key))
    return DatasetSpec(name, source_id, key, cols, req, ds, opt, num, tuple(rules))


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "persons", "gongan_population", "id_number",
            "id_number name sex birth_date ethnicity division_code address hukou_number "
            "id_card_issue_date id_card_valid_until id_card_authority status updated_at",
            required="id_number name sex birth_date id_card_issue_date status updated_at",
            dates="birth_date id_card_issue_date id_card_valid_until",
            optional_dates="id_card_valid_until",
            text="name address id_card_authority",
            extra=ric_rules("id_number")
            + (end_before_start("id_card_issue_date", "id_card_valid_until"),
               id_card_validity("birth_date", "id_card_issue_date", "id_card_valid_until")),
        ),
        _spec(
            "enterprises", "scjg_enterprises", "uscc",
            "uscc name entity_type legal_rep_id legal_rep_name address division_code "
            "registered_capital issue_date status updated_at",
            required="uscc name entity_type legal_rep_name issue_date status updated_at",
            dates="issue_date", numeric="registered_capital",
            text="name legal_rep_name address",
            extra=uscc_rules("uscc") + ric_rules("legal_rep_id"),
        ),
        _spec(
            "food_licences", "scjg_food_licences", "licence_no",
            "licence_no holder_uscc holder_name business_scope address issue_date valid_from "
            "valid_until status updated_at",
            required="licence_no holder_uscc holder_name issue_date valid_from valid_until "
            "status updated_at",
            dates="issue_date valid_from valid_until",
            text="holder_name business_scope address",
            extra=uscc_rules("holder_uscc") + (end_before_start("valid_from", "valid_until"),
                                               fixed_term("valid_from", "valid_until", 5, "食品经营许可证")),
        ),
        _spec(
            "marriages", "minzheng_marriages", "cert_no",
            "cert_no spouse1_id spouse1_name spouse2_id spouse2_name registration_date office "
            "status updated_at",
            required="cert_no spouse1_id spouse1_name spouse2_id spouse2_name registration_date "
            "status updated_at",
            dates="registration_date",
            text="spouse1_name spouse2_name office",
            extra=ric_rules("spouse1_id") + ric_rules("spouse2_id"),
        ),
        _spec(
            "properties", "zrzy_property", "cert_no",
            "cert_no owner_code owner_code_type owner_name parcel_no address area_m2 land_use "
            "term_start term_end issue_date status updated_at",
            required="cert_no owner_code owner_code_type owner_name issue_date status updated_at",
            dates="term_start term_end issue_date", optional_dates="term_start term_end",
            numeric="area_m2",
            text="owner_name address",
            extra=(holder_code_type("owner_code_type"),)
            + ric_rules("owner_code", when=("owner_code_type", "111"))
            + uscc_rules("owner_code", when=("owner_code_type", "001"))
            + (end_before_start("term_start", "term_end"),),
        ),
        _spec(
            "licences", "hub_licences", "licence_id",
            "licence_id cert_key licence_type_code issuer_code holder_code holder_code_type version issued_at",
            required="licence_id cert_key licence_type_code issuer_code holder_code holder_code_type version "
            "issued_at",
            dates="",
            extra=licence_id_rules("licence_id")
            + (licence_id_parts("licence_id", "licence_type_code", "issuer_code", "version"),
               holder_code_type("holder_code_type"))
            + ric_rules("holder_code", when=("holder_code_type", "111"))
            + uscc_rules("holder_code", when=("holder_code_type", "001")),
        ),
    )
}

def _licence_type_rules(type_col: str, code_type_col: str) -> tuple[Rule, ...]:
    """Generic licence records (back-office results, the construction approval system): the
    type must be one the registry knows, and the holder's code type must suit it
    (organisation types: 001, person types: 111)."""
    from certificates.registry import load_registry

    types = load_registry().licence_types.values()
    t, c = _q(type_col), _q(code_type_col)
    known = ", ".join(sql.lit(lt.code) for lt in types)
    org = ", ".join(sql.lit(lt.code) for lt in types if lt.holder == "organisation") or "''"
    person = ", ".join(sql.lit(lt.code) for lt in types if lt.holder == "person") or "''"
    return (
        Rule("unknown_licence_type", type_col, "error", f"(NOT ow_blank({t}) AND trim({t}) NOT IN ({known}))",
             f"'证照类型代码 ' || {t} || ' 未在证照目录（certificates/registry.toml）登记'"),
        Rule("holder_kind_mismatch", code_type_col, "error",
             f"((trim({t}) IN ({org}) AND trim({c}) <> '001') OR (trim({t}) IN ({person}) AND trim({c}) <> '111'))",
             f"'持证主体代码类型 ' || {c} || ' 与证照类型 ' || {t} || ' 的持证主体（法人 001 / 自然人 111）不符'"),
    )


def json_object_text(col: str) -> Rule:
    """An optional column holding a JSON object (the licence's extension fields)."""
    q = _q(col)
    return Rule("invalid_json", col, "error",
                f"(NOT ow_blank({q}) AND (NOT json_valid({q}) OR NOT starts_with(ltrim({q}), '{{')))",
                f"'{col} 不是 JSON 对象：' || left({q}, 80)")


def _case_guarded(rules: tuple[Rule, ...], guard: str) -> tuple[Rule, ...]:
    """Rules that apply only where ``guard`` holds, guarded by CASE: unlike AND, DuckDB evaluates
    a CASE branch only for the rows that select it, so the ID-number arithmetic never sees a
    credit code with letters in one mixed column."""
    from dataclasses import replace

    # py=None: the Python form of an SQL guard is not derived (GX's pandas engine then
    # says so instead of counting the unguarded predicate)
    return tuple(replace(r, predicate=f"(CASE WHEN {guard} THEN {r.predicate} ELSE false END)",
                         gx_form="rows", pattern=None, py=None) for r in rules)


DATASETS["licence_records"] = _spec(
    "licence_records", "hub_results", "cert_no",
    "licence_type_code cert_no holder_code holder_code_type holder_name issue_date valid_from valid_until "
    "status details reported_by updated_at",
    required="licence_type_code cert_no holder_code holder_code_type holder_name issue_date status updated_at",
    dates="issue_date valid_from valid_until", optional_dates="valid_from valid_until",
    text="holder_name",
    extra=_licence_type_rules("licence_type_code", "holder_code_type")
    + (holder_code_type("holder_code_type"), json_object_text("details"))
    + _case_guarded(ric_rules("holder_code"), "trim(holder_code_type) = '111'")
    + _case_guarded(uscc_rules("holder_code"), "trim(holder_code_type) = '001'")
    + (end_before_start("valid_from", "valid_until"),),
)

# Datasets whose rules call Python functions registered on the DuckDB connection.
NEEDS_LICENCE_FUNCTIONS = frozenset({"licences"})


def dataset(name: str) -> DatasetSpec:
    """The spec for ``name``; raises :class:`quality.exceptions.UnknownDatasetError`."""
    from quality.exceptions import UnknownDatasetError

    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(name, tuple(DATASETS)) from None
