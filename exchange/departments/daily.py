"""Simulated day ``k >= 1``: births, moves, renamed companies, status changes, new certificates."""

from __future__ import annotations

import numpy as np

from exchange.departments import defects as d
from exchange.departments import gongan, minzheng, scjg, zrzy
from exchange.departments import timeline as tl
from exchange.departments.errors import SimulationError
from exchange.departments.manifest import Manifest
from exchange.departments.people import PERSON_COLUMNS, Linkable, generate_persons
from exchange.departments.pools import division_places, make_pools
from exchange.departments.rand import np_rng, py_rng
from exchange.departments.state import SOURCE_IDS, SimulationSummary, Stores
from warehouse.datadir import Layout

BIRTH_RATE = 0.001
MOVE_RATE = 0.005
RENAME_RATE = 0.005


def _share(total: int, rate: float) -> int:
    return max(1, round(total * rate))


def _check_days(manifest: Manifest, persons: int, seed: int, day: int) -> bool:
    """True when ``day`` is a re-run of the latest day; raises when the days are out of order."""
    if (manifest.seed, manifest.persons) != (seed, persons):
        raise SimulationError(
            f"day {day} must use the seed and persons of day 0 (seed={manifest.seed}, "
            f"persons={manifest.persons}), got seed={seed}, persons={persons}",
            seed=seed, persons=persons, day=day)
    if 0 not in manifest.days:
        raise SimulationError("day 0 has not been simulated in this data directory", day=day)
    last = max(manifest.days)
    if day in manifest.days and day != last:
        raise SimulationError(f"day {day} is already simulated and later days exist (up to {last}); "
                              "re-run from day 0 to rebuild", day=day)
    if day not in manifest.days and day != last + 1:
        raise SimulationError(f"simulate day {last + 1} before day {day}", day=day)
    return day in manifest.days


def advance(layout: Layout, persons: int, seed: int, day: int, rate: float,
            pg_dsn: str | None) -> SimulationSummary:
    if not layout.defect_manifest.exists():
        raise SimulationError(f"day {day} needs day 0 first: no simulation in {layout.departments} "
                              f"(run with day=0)", day=day, path=str(layout.departments))
    manifest = Manifest.load(layout.defect_manifest)
    rerun = _check_days(manifest, persons, seed, day)
    dep = layout.departments
    stores = Stores(dep, pg_dsn, fresh=False)
    summary = SimulationSummary(seed=seed, persons=persons, day=day)
    try:
        if rerun:
            stores.journal.undo(stores.tables(), day)
            manifest.drop_day(day)
        found: list[dict] = []
        _Day(stores, manifest, summary, found, persons, seed, day, rate).run()
        stores.commit()
        manifest.add_day(day, found)
        manifest.save(layout.defect_manifest)
    finally:
        stores.close()
    summary.locations = stores.locations() | {
        "marriages": str(minzheng.drop_path(dep, day)), "properties": str(zrzy.drop_path(dep, day))}
    return summary


class _Day:
    def __init__(self, stores: Stores, manifest: Manifest, summary: SimulationSummary, found: list[dict],
                 persons: int, seed: int, day: int, rate: float) -> None:
        self.s, self.m, self.summary, self.found = stores, manifest, summary, found
        self.persons, self.seed, self.day, self.rate = persons, seed, day, rate
        self.pools = make_pools(seed)

    def nrng(self, purpose: str) -> np.random.Generator:
        return np_rng(self.seed, self.day, purpose)

    def prng(self, purpose: str):
        return py_rng(self.seed, self.day, purpose)

    def inject(self, dataset: str, rows: list[tuple], columns: tuple[str, ...], key: str,
               rules: list[d.Rule], n_eligible: int) -> d.Injected:
        inj = d.inject(rows, columns, key, rules, rate=self.rate, rng=self.prng(dataset + ".defects"),
                       dataset=dataset, source_id=SOURCE_IDS[dataset], day=self.day,
                       eligible=list(range(n_eligible)))
        self.found.extend(inj.defects)
        self.summary.defects[dataset] = len(inj.defects)
        return inj

    def stamps(self, purpose: str, n: int) -> list[str]:
        return tl.timestamps_in_day(self.nrng(purpose + ".ts"), self.day, n)

    def run(self) -> None:
        pop = self.people()
        renamed = self.registry(pop)
        self.marriages(pop)
        self.properties(pop, renamed)

    # ------------------------------------------------------------- 公安
    def people(self) -> Linkable:
        s, day = self.s, self.day
        everyone = s.persons.select(["id_number", "name", "sex", "birth_date"])
        bad = self.m.keys("persons")
        pop = Linkable.from_rows([r for r in everyone if r[0] not in bad])
        taken = np.array([int(r[0][:17]) for r in everyone], dtype=np.int64)
        births = generate_persons(self.nrng("births"), self.pools, _share(self.persons, BIRTH_RATE), day,
                                  taken=taken, newborn=True)
        inj = self.inject("persons", list(births.rows), PERSON_COLUMNS, "id_number", gongan.person_rules(),
                          len(births.rows))
        rng = self.prng("moves")
        movers = sorted(self.nrng("moves").choice(pop.ids, min(len(pop.ids), _share(self.persons, MOVE_RATE)),
                                                  replace=False).tolist())
        moved = []
        for row, ts in zip(s.persons.fetch(movers), self.stamps("moves", len(movers))):
            r = dict(zip(PERSON_COLUMNS, row))
            r["address"] = (f"{division_places()[r['division_code']][0]}{rng.choice(self.pools.streets)}"
                            f"{rng.randint(1, 400)}号{rng.randint(1, 30)}幢{rng.randint(1, 5)}单元"
                            f"{rng.randint(1, 33)}{rng.randint(1, 4):02d}室")
            r["updated_at"] = ts
            moved.append(tuple(r[c] for c in PERSON_COLUMNS))
        s.journal.upsert(s.persons, day, inj.rows + moved)
        self.summary.rows["persons"] = len(inj.rows) + len(moved)
        return pop

    # ------------------------------------------------------------- 市场监管
    def registry(self, pop: Linkable) -> set[str]:
        s, day, pools = self.s, self.day, self.pools
        ents = s.enterprises.select(scjg.ENTERPRISES.columns)
        lics = s.food_licences.select(scjg.FOOD_LICENCES.columns)
        bad_e, bad_l = self.m.keys("enterprises"), self.m.keys("food_licences")
        taken_uscc = {e[0] for e in ents}
        taken_names = {e[1] for e in ents}
        new = scjg.generate_enterprises(self.nrng("enterprises"), self.prng("enterprises"), pools,
                                        _share(len(ents), 0.002), day, pop, taken_uscc, taken_names, new=True)
        inj_e = self.inject("enterprises", new, scjg.ENTERPRISES.columns, "uscc", scjg.enterprise_rules(pools),
                            len(new))
        # renames: clean companies without properties or defective licences
        owners = {r[0] for r in s.properties.select(["owner_code"])}
        shaky = {l[1] for l in lics if l[0] in bad_l}
        candidates = [e for e in ents if e[0] not in bad_e and e[9] == "01" and e[2] == scjg.COMPANY
                      and e[0] not in owners and e[0] not in shaky]
        rng = self.prng("renames")
        picked = rng.sample(candidates, min(len(candidates), _share(len(ents), RENAME_RATE)))
        picked.sort()
        renamed, changed_e = {}, []
        for e, ts in zip(picked, self.stamps("renames", len(picked))):
            name = scjg.enterprise_name(rng, pools, scjg.COMPANY, e[6], taken_names)
            renamed[e[0]] = (name, ts)
            changed_e.append(e[:1] + (name,) + e[2:10] + (ts,))
        s.journal.upsert(s.enterprises, day, inj_e.rows + changed_e)
        self.summary.rows["enterprises"] = len(inj_e.rows) + len(changed_e)

        changed_l = [l[:2] + (renamed[l[1]][0],) + l[3:9] + (renamed[l[1]][1],)
                     for l in lics if l[1] in renamed and l[0] not in bad_l]
        status_pool = [l for l in lics if l[0] not in bad_l and l[8] == "01" and l[1] not in renamed]
        flips = sorted(rng.sample(status_pool, min(len(status_pool), _share(len(lics), 0.003))))
        for l, ts in zip(flips, self.stamps("licence-status", len(flips))):
            changed_l.append(l[:8] + (rng.choice(("02", "03")), ts))
        fresh = [e for i, e in enumerate(new) if i not in inj_e.touched and scjg.is_food_business(e[1])]
        lic_new = scjg.generate_food_licences(self.nrng("food_licences"), self.prng("food_licences"), fresh,
                                              day, {l[0] for l in lics}, new=True)
        inj_l = self.inject("food_licences", lic_new, scjg.FOOD_LICENCES.columns, "licence_no",
                            scjg.LICENCE_RULES, len(lic_new))
        s.journal.upsert(s.food_licences, day, inj_l.rows + changed_l)
        self.summary.rows["food_licences"] = len(inj_l.rows) + len(changed_l)
        return set(renamed)

    # ------------------------------------------------------------- 民政
    def marriages(self, pop: Linkable) -> None:
        s, day = self.s, self.day
        existing = s.marriages.select(["cert_no", "spouse1_id", "spouse2_id"])
        married = {r[1] for r in existing} | {r[2] for r in existing}
        rows = minzheng.generate_marriages(self.nrng("marriages"), self.prng("marriages"), pop,
                                           _share(self.persons, 0.0005), day, married,
                                           {r[0] for r in existing}, new=True)
        inj = self.inject("marriages", rows, minzheng.MARRIAGES.columns, "cert_no",
                          minzheng.marriage_rules(self.pools), len(rows))
        minzheng.write_drop(minzheng.drop_path(s.departments, day), inj.rows)
        s.journal.upsert(s.marriages, day, inj.rows)
        self.summary.rows["marriages"] = len(inj.rows)

    # ------------------------------------------------------------- 自然资源
    def properties(self, pop: Linkable, renamed: set[str]) -> None:
        s, day = self.s, self.day
        bad_e, bad_p = self.m.keys("enterprises"), self.m.keys("properties")
        owners = [(e[0], e[1]) for e in s.enterprises.select(["uscc", "name", "entity_type", "status"])
                  if e[0] not in bad_e and e[0] not in self.found_keys("enterprises") and e[2] == scjg.COMPANY
                  and e[3] == "01" and e[0] not in renamed]
        existing = s.properties.select(zrzy.PROPERTIES.columns)
        new = zrzy.generate_properties(self.nrng("properties"), self.prng("properties"), self.pools,
                                       _share(self.persons, 0.0005), day, pop, owners,
                                       {p[0] for p in existing}, new=True)
        inj = self.inject("properties", new, zrzy.PROPERTIES.columns, "cert_no", zrzy.property_rules(self.pools),
                          len(new))
        rng = self.prng("property-status")
        pool = [p for p in existing if p[0] not in bad_p and p[11] == "01"]
        flips = sorted(rng.sample(pool, min(len(pool), _share(len(existing), 0.002))))
        changed = [p[:11] + ("03" if rng.random() < 0.7 else "02", ts)
                   for p, ts in zip(flips, self.stamps("property-status", len(flips)))]
        rows = inj.rows + changed
        zrzy.write_drop(zrzy.drop_path(s.departments, day), rows)
        s.journal.upsert(s.properties, day, rows)
        self.summary.rows["properties"] = len(rows)

    def found_keys(self, dataset: str) -> set[str]:
        return {f["record_key"] for f in self.found if f["dataset"] == dataset}
