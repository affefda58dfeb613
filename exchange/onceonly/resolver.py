"""Once-only resolution: for an applicant and service items, what is on file and what must be submitted.

Time is a parameter: a licence counts only when its status is ``01`` and ``at`` lies
inside its validity (``valid_until`` empty = 长期). Requirements met by the same
licence(s), or still needing the same licence types, are listed once with every item
they serve. Cross-checks (比对) compare the applicant's name across departments and
report every disagreement instead of picking one value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from certificates.registry import Registry
from exchange.onceonly.catalogue import (AllOf, AnyOf, Catalogue, Expr, Item, Material, MaterialRef,
                                         expr_canonical, expr_keys, expr_text)

STATUS_NAMES = {"01": "有效", "02": "暂扣", "03": "撤销", "04": "注销", "05": "失效", "07": "吊销"}
_NECESSITY_RANK = {"必要": 0, "容缺后补": 1, "非必要": 2}


class Records(Protocol):
    """What the resolver reads: the snapshot index implements this."""

    def subject(self, code: str) -> Mapping[str, Any] | None: ...

    def certificates_of(self, holder_code: str) -> list[Mapping[str, Any]]:
        """Certificate rows of a holder, each with ``licence_id`` of its newest licence (or None)."""
        ...


class MaterialRecords(Protocol):
    """What the resolver reads from the material library (材料库)."""

    def materials_of(self, holder_code: str) -> list[Mapping[str, Any]]:
        """Material rows of a holder: material_id, material_type, digest, verified_by, reuse_until."""
        ...


@dataclass(frozen=True)
class Applicant:
    code: str
    code_type: str  # "111" citizen ID, "001" credit code
    agent_code: str | None = None


@dataclass(frozen=True)
class OnFile:
    """A licence (or, with ``kind`` "material", a reusable material) that meets (part of) a requirement."""

    licence_id: str | None
    licence_type_key: str
    licence_type_code: str
    licence_type_name: str
    cert_number: str
    holder_code: str
    issuer_name: str
    issuer_code: str
    valid_until: str | None  # None = 长期
    status: str
    flags: tuple[str, ...] = ()
    kind: str = "licence"  # "licence" | "material"
    material_id: str | None = None
    digest: str | None = None
    verified_by: str | None = None

    @property
    def ref(self) -> str:
        return self.licence_id if self.kind == "licence" else f"material:{self.material_id}"


@dataclass(frozen=True)
class Rejected:
    """A licence on file that does not count at ``at``, and why."""

    licence_id: str | None
    licence_type_name: str
    cert_number: str
    status: str
    valid_from: str | None
    valid_until: str | None
    reason_code: str  # status_not_valid | expired | not_yet_valid | not_signed | material_unverified | material_expired
    reason_zh: str
    licence_type_code: str = ""


@dataclass(frozen=True)
class Served:
    item_code: str
    item_name: str
    material_key: str
    material_name: str
    necessity: str
    condition: str | None


@dataclass
class Requirement:
    """One deduplicated line of the answer."""

    status: str  # "on_file" | "must_submit"
    title: str
    holder_role: str  # applicant | agent
    holder_code: str | None
    satisfied_by: str | None  # Chinese AND/OR text, None if only a submitted material will do
    licence_types: list[str]  # registry keys in the expression
    necessity: str
    source_channel: str
    on_file: list[OnFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # licence type names still needed
    rejected: list[Rejected] = field(default_factory=list)
    serves: list[Served] = field(default_factory=list)
    note: str | None = None


@dataclass(frozen=True)
class Observation:
    department: str
    source: str
    value: str
    record: str  # 主体登记信息, or the licence type name
    licence_id: str | None = None


@dataclass(frozen=True)
class Discrepancy:
    """A 比对 finding: one fact with different values from different departments."""

    holder_code: str
    field: str
    values: tuple[Observation, ...]
    message_zh: str


@dataclass
class Resolution:
    at: dt.datetime
    applicant: Applicant
    items: list[Item]
    requirements: list[Requirement]
    findings: list[Discrepancy]
    notes: list[str]

    @property
    def on_file_count(self) -> int:
        return sum(r.status == "on_file" for r in self.requirements)

    @property
    def must_submit_count(self) -> int:
        return sum(r.status == "must_submit" for r in self.requirements)


# ----------------------------------------------------------------------------- dates
def as_date(value: object) -> dt.date | None:
    """A date from a DATE/TIMESTAMP/ISO text value; None/empty/长期 -> None."""
    if value is None or value == "" or value == "长期":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def iso(value: object) -> str | None:
    d = as_date(value)
    return d.isoformat() if d else None


# ----------------------------------------------------------------------------- evaluation
@dataclass
class _Eval:
    met: bool
    used: list[OnFile]
    missing: list[str]
    rejected: list[Rejected]


def _judge(cert: Mapping[str, Any], day: dt.date) -> Rejected | None:
    status = str(cert.get("status") or "")
    start = as_date(cert.get("valid_from")) or as_date(cert.get("issue_date"))
    end = as_date(cert.get("valid_until"))
    reason = None
    if status != "01":
        reason = ("status_not_valid", f"证照状态为{STATUS_NAMES.get(status, status)}（{status}），不能免提交")
    elif end is not None and day > end:
        reason = ("expired", f"证照已于 {end.isoformat()} 到期")
    elif start is not None and day < start:
        reason = ("not_yet_valid", f"证照自 {start.isoformat()} 起生效，尚未生效")
    elif not cert.get("licence_id"):
        reason = ("not_signed", "证照尚未签发电子证照，需提交纸质材料")
    if reason is None:
        return None
    return Rejected(licence_id=cert.get("licence_id"), licence_type_name=cert.get("licence_type_name") or "",
                    cert_number=cert.get("cert_number") or "", status=status,
                    valid_from=iso(cert.get("valid_from")), valid_until=iso(cert.get("valid_until")),
                    reason_code=reason[0], reason_zh=reason[1],
                    licence_type_code=cert.get("licence_type_code") or "")


def _leaf(key: str, certs: Iterable[Mapping[str, Any]], registry: Registry, day: dt.date) -> _Eval:
    lt = registry.licence_type(key)
    usable: list[Mapping[str, Any]] = []
    rejected: list[Rejected] = []
    for c in certs:
        if c.get("licence_type_code") != lt.code:
            continue
        why = _judge(c, day)
        (rejected.append(why) if why else usable.append(c))
    if not usable:
        return _Eval(False, [], [lt.name], rejected)
    # The longest-lived valid one (长期 sorts last), then the newest issue.
    best = max(usable, key=lambda c: (as_date(c.get("valid_until")) or dt.date.max,
                                      as_date(c.get("issue_date")) or dt.date.min))
    used = OnFile(licence_id=best["licence_id"], licence_type_key=key, licence_type_code=lt.code,
                  licence_type_name=lt.name, cert_number=best.get("cert_number") or "",
                  holder_code=best.get("holder_code") or "", issuer_name=best.get("issuer_name") or "",
                  issuer_code=best.get("issuer_code") or "", valid_until=iso(best.get("valid_until")),
                  status="01", flags=tuple(best.get("flags") or ()))
    return _Eval(True, [used], [], [])


def _material_leaf(ref: MaterialRef, materials: Iterable[Mapping[str, Any]], day: dt.date) -> _Eval:
    """A verified material of the type whose reuse period covers ``day``; unverified/expired ones do not count."""
    usable: list[Mapping[str, Any]] = []
    rejected: list[Rejected] = []
    for m in materials:
        if m.get("material_type") != ref.key:
            continue
        until = as_date(m.get("reuse_until"))
        reason = None
        if not m.get("verified_by"):
            reason = ("material_unverified", "材料尚未经窗口核验，不能复用")
        elif until is None or day > until:
            reason = ("material_expired", f"材料复用期限已于 {until.isoformat() if until else '—'} 届满")
        if reason is None:
            usable.append(m)
        else:
            rejected.append(Rejected(licence_id=None, licence_type_name=ref.name,
                                     cert_number=f"material:{m.get('material_id')}", status="",
                                     valid_from=None, valid_until=iso(until), reason_code=reason[0],
                                     reason_zh=reason[1]))
    if not usable:
        return _Eval(False, [], [ref.name], rejected)
    best = max(usable, key=lambda m: (as_date(m.get("reuse_until")) or dt.date.min, str(m.get("material_id"))))
    used = OnFile(licence_id=None, licence_type_key=f"material:{ref.key}", licence_type_code="",
                  licence_type_name=ref.name, cert_number="", holder_code=best.get("holder_code") or "",
                  issuer_name=best.get("verifier_department") or "", issuer_code="",
                  valid_until=iso(best.get("reuse_until")), status="verified", kind="material",
                  material_id=best.get("material_id"), digest=best.get("digest"),
                  verified_by=best.get("verified_by"))
    return _Eval(True, [used], [], [])


def evaluate(expr: Expr, certs: list[Mapping[str, Any]], registry: Registry, day: dt.date,
             materials: list[Mapping[str, Any]] | None = None, memo: dict | None = None) -> _Eval:
    """Evaluate an AND/OR expression against a holder's certificates (and materials) on ``day``.

    ``memo`` (one per resolution: the same lists, the same day) keeps each leaf's result, so a
    licence type asked for by many requirements of a bundle is judged once.
    """
    if isinstance(expr, str) or isinstance(expr, MaterialRef):
        key = (id(certs), id(materials), expr) if memo is not None else None
        if key is not None and key in memo:
            return memo[key]
        result = (_leaf(expr, certs, registry, day) if isinstance(expr, str)
                  else _material_leaf(expr, materials or [], day))
        if key is not None:
            memo[key] = result
        return result
    parts = [evaluate(m, certs, registry, day, materials, memo) for m in expr.members]
    rejected = [r for p in parts for r in p.rejected]
    if isinstance(expr, AnyOf):
        for p in parts:
            if p.met:
                return _Eval(True, p.used, [], [])
        return _Eval(False, [], [_static(expr, registry)[0] or ""], rejected)
    assert isinstance(expr, AllOf)
    used = [u for p in parts for u in p.used]
    missing = [m for p in parts for m in p.missing]
    return _Eval(all(p.met for p in parts), used, missing, rejected)


# ----------------------------------------------------------------------------- resolve
_STATIC: dict[int, tuple[Any, str | None, str | None, list[str]]] = {}


def _static(expr: Expr | None, registry: Registry) -> tuple[str | None, str | None, list[str]]:
    """(text, canonical form, licence type keys) of a catalogue expression, computed once per object.

    Catalogue items are immutable and live as long as the catalogue; the entry keeps the
    expression alive so its ``id`` is never reused for another one.
    """
    if expr is None:
        return None, None, []
    hit = _STATIC.get(id(expr))
    if hit is None or hit[0] is not expr:
        hit = _STATIC[id(expr)] = (expr, expr_text(expr, registry), expr_canonical(expr), expr_keys(expr))
    return hit[1], hit[2], hit[3]


def _holder_for(material: Material, applicant: Applicant) -> tuple[str | None, str | None]:
    """The holder code whose licences count for a material, and a note when there is none."""
    if material.holder == "applicant":
        return applicant.code, None
    if applicant.agent_code:
        return applicant.agent_code, None
    if applicant.code_type == "111":
        return applicant.code, None  # a person applying in person is their own 经办人
    return None, "未提供经办人证件号码，无法调取经办人证照"


@dataclass(frozen=True)
class _Step:
    """One material of one item of a bundle, with everything about it that does not depend on the applicant."""

    item: Item
    material: Material
    served: Served
    text: str | None
    canonical: str | None
    type_keys: list[str]


@dataclass(frozen=True)
class _Plan:
    """A bundle's items (deduplicated, in request order) and their materials as :class:`_Step` s."""

    items: tuple[Item, ...]
    steps: tuple[_Step, ...]


_PLANS: dict[tuple[int, tuple[str, ...]], tuple[Catalogue, _Plan]] = {}
_PLAN_LIMIT = 4096  # distinct bundles kept; a client sending ever new ones only costs the rebuild


def _plan(catalogue: Catalogue, item_codes: list[str]) -> _Plan:
    """The :class:`_Plan` of a bundle, built once per catalogue object and list of codes.

    Catalogues are immutable; the entry keeps its catalogue alive, so the ``id`` in the key is
    never reused for another one. Raises :class:`UnknownItemError` (nothing is kept then).
    """
    key = (id(catalogue), tuple(item_codes))
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is catalogue:
        return hit[1]
    registry = catalogue.registry
    items: list[Item] = []
    for code in item_codes:
        it = catalogue.get(code)
        if not any(it is seen for seen in items):  # identity: comparing whole items is slow
            items.append(it)
    steps = tuple(_Step(it, m, Served(it.code, it.name, m.key, m.name, m.necessity, m.condition),
                        *_static(m.satisfied_by, registry))
                  for it in items for m in it.materials)
    plan = _Plan(tuple(items), steps)
    if len(_PLANS) >= _PLAN_LIMIT:
        _PLANS.clear()
    _PLANS[key] = (catalogue, plan)
    return plan


def resolve(catalogue: Catalogue, records: Records, applicant: Applicant,
            item_codes: list[str], *, at: dt.datetime,
            materials: MaterialRecords | None = None) -> Resolution:
    """Answer, per deduplicated requirement, ``on_file`` or ``must_submit`` at the moment ``at``.

    ``materials``: the material library; without it, requirements met only by a material
    are ``must_submit``.

    Raises :class:`exchange.onceonly.exceptions.UnknownItemError` for an unknown item code.
    """
    registry = catalogue.registry
    day = at.date()
    plan = _plan(catalogue, item_codes)
    certs_cache: dict[str, list[Mapping[str, Any]]] = {}

    def certs_of(code: str) -> list[Mapping[str, Any]]:
        if code not in certs_cache:
            certs_cache[code] = list(records.certificates_of(code))
        return certs_cache[code]

    mats_cache: dict[str, list[Mapping[str, Any]]] = {}

    def materials_of(code: str) -> list[Mapping[str, Any]]:
        if materials is None:
            return []
        if code not in mats_cache:
            mats_cache[code] = list(materials.materials_of(code))
        return mats_cache[code]

    memo: dict = {}  # leaf results (see evaluate); the lists above live as long as this call
    # Whole expressions per (holder, canonical form): the same form is the same AND/OR tree of the
    # same leaves, so it evaluates alike; with the refs of what it used when met.
    evals: dict[tuple[str, str | None], tuple[_Eval, tuple[str | None, ...] | None]] = {}
    lines: dict[tuple, Requirement] = {}
    notes: list[str] = []
    for it in plan.items:
        if it.applicant_type == "person" and applicant.code_type != "111":
            notes.append(f"事项「{it.name}」面向自然人，申请人证件类型为 {applicant.code_type}")
        if it.applicant_type == "organisation" and applicant.code_type != "001":
            notes.append(f"事项「{it.name}」面向法人或其他组织，申请人证件类型为 {applicant.code_type}")
    for step in plan.steps:
        m = step.material
        holder, note = _holder_for(m, applicant)
        text, canonical = step.text, step.canonical
        if m.satisfied_by is None:
            key: tuple = ("material", step.item.code, m.key)
            ev = _Eval(False, [], [], [])
            note = note or "该材料须由申请人提交，无法通过证照库免提交"
        elif holder is None:
            key = ("must_submit", m.holder, canonical)
            ev = _Eval(False, [], [text or ""], [])
        else:
            hit = evals.get((holder, canonical))
            if hit is None:
                ev = evaluate(m.satisfied_by, certs_of(holder), registry, day, materials_of(holder), memo)
                hit = evals[holder, canonical] = (ev, tuple(sorted(u.ref for u in ev.used)) if ev.met else None)
            ev, refs = hit
            key = ("on_file", m.holder, refs) if ev.met else ("must_submit", m.holder, canonical)
        line = lines.get(key)
        if line is None:
            line = lines[key] = Requirement(
                status="on_file" if ev.met else "must_submit",
                title=(" 且 ".join(u.licence_type_name for u in ev.used) if ev.met else m.name),
                holder_role=m.holder, holder_code=holder,
                satisfied_by=text, licence_types=list(step.type_keys),
                necessity=m.necessity, source_channel=m.source_channel,
                on_file=list(ev.used), missing=list(ev.missing), rejected=list(ev.rejected),
                note=note)
        elif _NECESSITY_RANK[m.necessity] < _NECESSITY_RANK[line.necessity]:
            line.necessity = m.necessity
        line.serves.append(step.served)
    findings = cross_check(records, [c for c in {applicant.code, applicant.agent_code} if c],
                           registry, certs_of)
    return Resolution(at=at, applicant=applicant, items=list(plan.items), requirements=list(lines.values()),
                      findings=findings, notes=notes)


# ----------------------------------------------------------------------------- 比对
def _department_of_source(source_id: str | None, registry: Registry) -> str:
    prefix = (source_id or "").split("_", 1)[0]
    dept = registry.departments.get(prefix)
    return dept.name if dept else (source_id or "未知来源")


def _norm_name(name: str) -> str:
    return "".join(name.split()).replace("\u3000", "")


def cross_check(records: Records, holder_codes: list[str], registry: Registry,
                certs_of=None) -> list[Discrepancy]:
    """Compare each holder's name in the subject register against every certificate's holder name."""
    certs_of = certs_of or records.certificates_of
    out: list[Discrepancy] = []
    for code in sorted(holder_codes):
        subj = records.subject(code)
        # Most holders agree with themselves: compare the names before building the observations.
        names = {_norm_name(c["holder_name"]) for c in certs_of(code) if c.get("holder_name")}
        if subj is not None and subj.get("name"):
            names.add(_norm_name(subj["name"]))
        if len(names) <= 1:
            continue
        obs: list[Observation] = []
        if subj is not None and subj.get("name"):
            obs.append(Observation(_department_of_source(subj.get("source_id"), registry),
                                   subj.get("source_id") or "", subj["name"], "主体登记信息"))
        for c in certs_of(code):
            if c.get("holder_name"):
                obs.append(Observation(
                    c.get("issuer_name") or _department_of_source(c.get("source_id"), registry),
                    c.get("source_id") or "", c["holder_name"], c.get("licence_type_name") or "证照",
                    c.get("licence_id")))
        distinct = {_norm_name(o.value) for o in obs}
        if len(distinct) > 1:
            by_value: dict[str, list[str]] = {}
            for o in obs:
                by_value.setdefault(o.value, []).append(o.department)
            parts = "；".join(f"{', '.join(dict.fromkeys(d))}：{v}" for v, d in by_value.items())
            out.append(Discrepancy(holder_code=code, field="name", values=tuple(obs),
                                   message_zh=f"持证主体名称在各部门记录不一致（{parts}），请核实后受理"))
    return out
