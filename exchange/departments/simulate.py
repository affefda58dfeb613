"""Entry point: ``simulate(layout, persons, seed, day=0, ...)`` builds or advances the systems."""

from __future__ import annotations

import shutil

import numpy as np

from exchange.departments import daily, gcjs, gongan, minzheng, scjg, zrzy
from exchange.departments import defects as d
from exchange.departments.errors import SimulationError
from exchange.departments.manifest import Manifest
from exchange.departments.people import PERSON_COLUMNS, Linkable, generate_persons
from exchange.departments.pools import make_pools
from exchange.departments.rand import np_rng, py_rng
from exchange.departments.state import SOURCE_IDS, SimulationSummary, Stores, state_path
from warehouse.datadir import Layout

MARRIED_SHARE = 0.15  # couples per person: about 30% of the population is married


def simulate(layout: Layout, persons: int, seed: int, day: int = 0, defect_rate: float = 0.02,
             pg_dsn: str | None = None) -> SimulationSummary:
    """Build the four department systems (day 0) or apply simulated day ``day``'s changes.

    Deterministic in (persons, seed, day, defect_rate): the same arguments give the same
    files. Day ``k >= 1`` needs days ``0..k-1`` in the same data directory; re-running
    the latest day undoes it first, so it is idempotent.
    """
    if not isinstance(persons, int) or persons < 1:
        raise SimulationError(f"persons must be a positive integer, got {persons!r}", persons=persons)
    if not 0.0 <= defect_rate <= 0.5:
        raise SimulationError(f"defect_rate must be within [0, 0.5], got {defect_rate!r}",
                              defect_rate=defect_rate)
    if not isinstance(day, int) or day < 0:
        raise SimulationError(f"day must be an integer >= 0, got {day!r}", day=day)
    if day == 0:
        return _day0(layout, persons, seed, defect_rate, pg_dsn)
    return daily.advance(layout, persons, seed, day, defect_rate, pg_dsn)


def _wipe(layout: Layout) -> None:
    dep = layout.departments
    for sub in ("gongan", "scjg", "minzheng", "zrzy", "zhujian"):
        shutil.rmtree(dep / sub, ignore_errors=True)
    shutil.rmtree(state_path(dep).parent, ignore_errors=True)
    layout.defect_manifest.unlink(missing_ok=True)


def _inject(rows: list[tuple], columns: tuple[str, ...], key: str, rules: list[d.Rule], rate: float,
            seed: int, day: int, dataset: str, eligible: list[int] | None = None) -> d.Injected:
    return d.inject(rows, columns, key, rules, rate=rate, rng=py_rng(seed, day, dataset + ".defects"),
                    dataset=dataset, source_id=SOURCE_IDS[dataset], day=day, eligible=eligible)


def _day0(layout: Layout, persons: int, seed: int, rate: float, pg_dsn: str | None) -> SimulationSummary:
    _wipe(layout)
    dep = layout.departments
    pools = make_pools(seed)
    stores = Stores(dep, pg_dsn, fresh=True)
    summary = SimulationSummary(seed=seed, persons=persons, day=0)
    found: list[dict] = []

    def record(dataset: str, inj: d.Injected) -> None:
        summary.rows[dataset] = len(inj.rows)
        summary.defects[dataset] = len(inj.defects)
        found.extend(inj.defects)

    try:
        batch = generate_persons(np_rng(seed, 0, "persons"), pools, persons, 0)
        inj = _inject(batch.rows, PERSON_COLUMNS, "id_number", gongan.person_rules(), rate, seed, 0, "persons")
        stores.persons.bulk_load(inj.rows)
        record("persons", inj)
        keep = np.ones(len(batch.rows), dtype=bool)
        keep[sorted(inj.touched)] = False
        pop = Linkable(ids=batch.ids()[keep], names=batch.names()[keep],
                       male=batch.male[keep], birth=batch.birth[keep])
        del batch

        n_ent = max(10, persons // 20)
        ents = scjg.generate_enterprises(np_rng(seed, 0, "enterprises"), py_rng(seed, 0, "enterprises"),
                                         pools, n_ent, 0, pop, set(), set())
        inj = _inject(ents, scjg.ENTERPRISES.columns, "uscc", scjg.enterprise_rules(pools), rate, seed, 0,
                      "enterprises")
        stores.enterprises.reset()
        stores.enterprises.insert(inj.rows)
        stores.enterprises.create_indexes()
        record("enterprises", inj)
        clean_ents = [e for i, e in enumerate(ents) if i not in inj.touched and e[9] == "01"]

        rng = py_rng(seed, 0, "food_licences")
        food = [e for e in clean_ents if scjg.is_food_business(e[1])]
        other = [e for e in clean_ents if not scjg.is_food_business(e[1])]
        want = max(1, n_ent // 3)
        holders = food[:want] + rng.sample(other, min(len(other), max(0, want - len(food))))
        lics = scjg.generate_food_licences(np_rng(seed, 0, "food_licences"), rng, holders, 0, set())
        inj = _inject(lics, scjg.FOOD_LICENCES.columns, "licence_no", scjg.LICENCE_RULES, rate, seed, 0,
                      "food_licences")
        stores.food_licences.reset()
        stores.food_licences.insert(inj.rows)
        stores.food_licences.create_indexes()
        record("food_licences", inj)

        mars = minzheng.generate_marriages(np_rng(seed, 0, "marriages"), py_rng(seed, 0, "marriages"), pop,
                                           round(persons * MARRIED_SHARE), 0, set(), set())
        inj = _inject(mars, minzheng.MARRIAGES.columns, "cert_no", minzheng.marriage_rules(pools), rate,
                      seed, 0, "marriages")
        minzheng.write_drop(minzheng.drop_path(dep, 0), inj.rows)
        stores.marriages.reset()
        stores.marriages.insert(inj.rows)
        stores.marriages.create_indexes()
        record("marriages", inj)

        owners = [(e[0], e[1]) for e in clean_ents if e[2] == scjg.COMPANY]
        props = zrzy.generate_properties(np_rng(seed, 0, "properties"), py_rng(seed, 0, "properties"), pools,
                                         max(10, persons // 10), 0, pop, owners, set())
        inj = _inject(props, zrzy.PROPERTIES.columns, "cert_no", zrzy.property_rules(pools), rate, seed, 0,
                      "properties")
        zrzy.write_drop(zrzy.drop_path(dep, 0), inj.rows)
        stores.properties.reset()
        stores.properties.insert(inj.rows)
        stores.properties.create_indexes()
        record("properties", inj)

        # 工程建设项目审批: approvals for projects of clean companies (no injected defects)
        approvals = gcjs.generate_approvals(np_rng(seed, 0, "approvals"), py_rng(seed, 0, "approvals"), owners, 0)
        gcjs.write_drop(gcjs.drop_path(dep, 0), approvals)
        summary.rows["licence_records"] = len(approvals)

        stores.state.execute("INSERT OR REPLACE INTO meta VALUES ('backend', ?)", (stores.backend,))
        stores.commit()
        manifest = Manifest(seed=seed, persons=persons)
        manifest.add_day(0, found)
        manifest.save(layout.defect_manifest)
    finally:
        stores.close()
    summary.locations = Stores.locations(stores) | {
        "marriages": str(minzheng.drop_path(dep, 0)), "properties": str(zrzy.drop_path(dep, 0)),
        "licence_records": str(gcjs.drop_path(dep, 0))}
    return summary
