"""Bundle plans and per-holder expression results give the answers of the straightforward walk.

The oracle is the resolver as it read before the plans (``tests/exchange/onceonly_reference.py``).
Hypothesis draws bundles (repeated items, 实施编码 for 基本编码), holders' certificates (every
status, validity windows around the day, unsigned ones, name disagreements), reusable
materials, applicants of both kinds with and without an agent; every answer is compared whole,
as the resolver's records and as the API's JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.api.routes.onceonly import answer, to_response
from exchange.onceonly import resolver
from exchange.onceonly.catalogue import load_catalogue
from exchange.onceonly.resolver import Applicant, resolve
from tests.exchange import onceonly_reference

CATALOGUE = load_catalogue()
REGISTRY = CATALOGUE.registry
TYPES = sorted(REGISTRY.licence_types)
MATERIAL_TYPES = sorted(CATALOGUE.material_types)
CODES = [c for it in CATALOGUE.items for c in (it.code, it.impl_code)]
PERSON, AGENT, ORG = "330106198506150011", "330106199001010022", "91330106MA2XXXXX1X"
DAY = dt.date(2026, 11, 20)


class Records:
    """``resolver.Records`` over plain rows; every call returns new dicts, as the snapshot index does."""

    def __init__(self, subjects: dict[str, dict], certs: dict[str, list[dict]]) -> None:
        self.subjects, self.certs = subjects, certs

    def subject(self, code: str) -> Mapping[str, Any] | None:
        row = self.subjects.get(code)
        return None if row is None else dict(row)

    def certificates_of(self, holder_code: str) -> list[Mapping[str, Any]]:
        return [dict(c) for c in self.certs.get(holder_code, [])]


class Materials:
    def __init__(self, rows: dict[str, list[dict]]) -> None:
        self.rows = rows

    def materials_of(self, holder_code: str) -> list[Mapping[str, Any]]:
        return [dict(m) for m in self.rows.get(holder_code, [])]


days = st.integers(-400, 400).map(lambda n: DAY + dt.timedelta(days=n))


@st.composite
def certificate(draw, holder: str, n: int) -> dict:
    lt = REGISTRY.licence_type(draw(st.sampled_from(TYPES)))
    issue = draw(days)
    return {"cert_key": f"{lt.code}:{n}:{holder}", "licence_type_code": lt.code, "licence_type_name": lt.name,
            "cert_number": f"N{n:05d}", "holder_code": holder,
            "holder_name": draw(st.sampled_from(["张三", "张 三", "李四", "", None])),
            "issuer_name": lt.issuer.name, "issuer_code": lt.issuer.code, "issue_date": issue,
            "valid_from": draw(st.one_of(st.none(), days)), "valid_until": draw(st.one_of(st.none(), days)),
            "status": draw(st.sampled_from(["01", "01", "01", "02", "03", "05"])),
            "licence_id": draw(st.one_of(st.none(), st.just(f"1.2.156.3005.2.{lt.code}.{n:05d}.001.T"))),
            "source_id": "gongan_population", "flags": draw(st.sampled_from([[], ["name_mismatch"]]))}


@st.composite
def material(draw, holder: str, n: int) -> dict:
    return {"material_id": f"m{n:04d}", "material_type": draw(st.sampled_from(MATERIAL_TYPES)),
            "holder_code": holder, "digest": f"{n:064x}", "verified_by": draw(st.sampled_from([None, "clerk-1"])),
            "verifier_department": "杭州市民政局", "reuse_until": draw(st.one_of(st.none(), days.map(dt.date.isoformat)))}


@st.composite
def case(draw) -> tuple:
    kind = draw(st.sampled_from(["111", "001"]))
    applicant = PERSON if kind == "111" else ORG
    agent = draw(st.sampled_from([None, AGENT]))
    holders = [applicant, AGENT]
    certs = {h: [draw(certificate(h, 100 * i + j)) for j in range(draw(st.integers(0, 6)))]
             for i, h in enumerate(holders)}
    mats = {h: [draw(material(h, 100 * i + j)) for j in range(draw(st.integers(0, 3)))]
            for i, h in enumerate(holders)}
    subjects = {h: {"subject_code": h, "name": draw(st.sampled_from(["张三", "李四"])), "source_id": "gongan_population"}
                for h in holders if draw(st.booleans())}
    items = draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=7))
    at = dt.datetime.combine(DAY, dt.time(10)) + dt.timedelta(days=draw(st.integers(-30, 30)))
    return Applicant(applicant, kind, agent), items, Records(subjects, certs), Materials(mats), at


def encoded(res, granted=None) -> bytes:
    return msgspec.json.encode(answer(res, "snap-1", granted))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case(), st.sampled_from([None, frozenset(), frozenset(REGISTRY.licence_type(t).code for t in TYPES[:5])]))
def test_planned_resolution_matches_the_straightforward_walk(drawn, granted):
    applicant, items, records, materials, at = drawn
    expected = onceonly_reference.resolve(CATALOGUE, records, applicant, items, at=at, materials=materials)
    for _ in range(2):  # the second call takes the kept plan
        got = resolve(CATALOGUE, records, applicant, items, at=at, materials=materials)
        assert got == expected
        assert encoded(got, granted) == encoded(expected, granted)
    assert to_response(got, "snap-1", granted) == to_response(expected, "snap-1", granted)
    no_library = resolve(CATALOGUE, records, applicant, items, at=at)
    assert no_library == onceonly_reference.resolve(CATALOGUE, records, applicant, items, at=at)


def test_plan_is_per_catalogue_object():
    """Another catalogue with the same item codes gets its own plan (not the first one's materials)."""
    item = CATALOGUE.items[0]
    changed = dataclasses.replace(item, materials=item.materials[:1])
    other = dataclasses.replace(CATALOGUE, items=(changed, *CATALOGUE.items[1:]))
    records, materials = Records({}, {}), Materials({})
    at = dt.datetime.combine(DAY, dt.time(10))
    for cat in (CATALOGUE, other, CATALOGUE):
        got = resolve(cat, records, Applicant(PERSON, "111"), [item.code], at=at, materials=materials)
        assert got == onceonly_reference.resolve(cat, records, Applicant(PERSON, "111"), [item.code], at=at,
                                                 materials=materials)
    assert sum(len(r.serves) for r in got.requirements) == len(item.materials)
    assert sum(len(r.serves) for r in resolve(other, records, Applicant(PERSON, "111"), [item.code],
                                              at=at).requirements) == 1


def test_unknown_item_keeps_no_plan():
    import pytest

    from exchange.onceonly import UnknownItemError

    before = dict(resolver._PLANS)
    with pytest.raises(UnknownItemError):
        resolve(CATALOGUE, Records({}, {}), Applicant(PERSON, "111"), [CODES[0], "999999999999"],
                at=dt.datetime.combine(DAY, dt.time(10)))
    assert resolver._PLANS == before


def test_plans_are_bounded(monkeypatch):
    monkeypatch.setattr(resolver, "_PLAN_LIMIT", 3)
    monkeypatch.setattr(resolver, "_PLANS", {})
    at = dt.datetime.combine(DAY, dt.time(10))
    for n in range(1, 8):
        resolve(CATALOGUE, Records({}, {}), Applicant(PERSON, "111"), CODES[:n], at=at)
        assert len(resolver._PLANS) <= 3


def test_served_entries_are_bounded_and_follow_their_object(monkeypatch):
    from exchange.api.routes import onceonly
    from exchange.onceonly.resolver import Served

    monkeypatch.setattr(onceonly, "_SERVED_LIMIT", 2)
    monkeypatch.setattr(onceonly, "_SERVED", {})
    for n in range(5):
        v = Served(f"i{n}", "name", "m", "material", "必要", None if n % 2 else "条件")
        assert onceonly._served(v) == {"item_code": f"i{n}", "item_name": "name", "material_key": "m",
                                       "material_name": "material", "necessity": "必要",
                                       "condition": None if n % 2 else "条件"}
        assert len(onceonly._SERVED) <= 2
