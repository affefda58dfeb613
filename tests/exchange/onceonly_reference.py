"""The once-only resolution as it read before bundle plans (exchange.onceonly.resolver at a218167),
kept as the oracle of tests/exchange/test_onceonly_plan.py: every item and material walked per
call, expressions evaluated per material. The resolver's own helpers (evaluate, _static,
_holder_for) are shared; what the plans changed is only the walk and what is kept between calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from certificates.registry import Registry
from exchange.onceonly.catalogue import Catalogue, Item
from exchange.onceonly.resolver import (_NECESSITY_RANK, Applicant, Discrepancy, MaterialRecords, Observation,
                                        Records, Requirement, Resolution, Served, _department_of_source, _Eval,
                                        _holder_for, _norm_name, _static, evaluate)


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
    items: list[Item] = []
    for code in item_codes:
        it = catalogue.get(code)
        if not any(it is seen for seen in items):  # identity: comparing whole items is slow
            items.append(it)
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
    lines: dict[tuple, Requirement] = {}
    notes: list[str] = []
    for it in items:
        if it.applicant_type == "person" and applicant.code_type != "111":
            notes.append(f"事项「{it.name}」面向自然人，申请人证件类型为 {applicant.code_type}")
        if it.applicant_type == "organisation" and applicant.code_type != "001":
            notes.append(f"事项「{it.name}」面向法人或其他组织，申请人证件类型为 {applicant.code_type}")
        for m in it.materials:
            served = Served(it.code, it.name, m.key, m.name, m.necessity, m.condition)
            holder, note = _holder_for(m, applicant)
            text, canonical, type_keys = _static(m.satisfied_by, registry)
            if m.satisfied_by is None:
                key: tuple = ("material", it.code, m.key)
                ev = _Eval(False, [], [], [])
                note = note or "该材料须由申请人提交，无法通过证照库免提交"
            elif holder is None:
                key = ("must_submit", m.holder, canonical)
                ev = _Eval(False, [], [text or ""], [])
            else:
                ev = evaluate(m.satisfied_by, certs_of(holder), registry, day, materials_of(holder), memo)
                if ev.met:
                    key = ("on_file", m.holder, tuple(sorted(u.ref for u in ev.used)))
                else:
                    key = ("must_submit", m.holder, canonical)
            line = lines.get(key)
            if line is None:
                line = lines[key] = Requirement(
                    status="on_file" if ev.met else "must_submit",
                    title=(" 且 ".join(u.licence_type_name for u in ev.used) if ev.met else m.name),
                    holder_role=m.holder, holder_code=holder,
                    satisfied_by=text, licence_types=list(type_keys),
                    necessity=m.necessity, source_channel=m.source_channel,
                    on_file=list(ev.used), missing=list(ev.missing), rejected=list(ev.rejected),
                    note=note)
            elif _NECESSITY_RANK[m.necessity] < _NECESSITY_RANK[line.necessity]:
                line.necessity = m.necessity
            line.serves.append(served)
    findings = cross_check(records, [c for c in {applicant.code, applicant.agent_code} if c],
                           registry, certs_of)
    return Resolution(at=at, applicant=applicant, items=items, requirements=list(lines.values()),
                      findings=findings, notes=notes)


def cross_check(records: Records, holder_codes: list[str], registry: Registry,
                certs_of=None) -> list[Discrepancy]:
    """Compare each holder's name in the subject register against every certificate's holder name."""
    certs_of = certs_of or records.certificates_of
    out: list[Discrepancy] = []
    for code in sorted(holder_codes):
        obs: list[Observation] = []
        subj = records.subject(code)
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
