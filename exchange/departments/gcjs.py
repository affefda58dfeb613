"""工程建设项目审批管理系统 (run by 住建): construction approvals of the five stages, daily CSV drops.

Each simulated project belongs to a clean company and has reached stage 1..5 of the
approval (立项 → 用地 → 规划 → 施工许可 → 竣工验收); every stage it passed issued its
licence. Rows are generic licence records (dataset ``licence_records``): the licence
type code says which of the five it is. Deterministic per seed (its own random streams,
so adding it changed no other department's data).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from pathlib import Path

import numpy as np

from exchange.departments import timeline as tl
from exchange.departments.pools import division_places, hangzhou_counties

COLUMNS = ("licence_type_code", "cert_no", "holder_code", "holder_code_type", "holder_name", "issue_date",
           "valid_from", "valid_until", "status", "details", "reported_by", "updated_at")
#: registry keys of the five stages, in order
STAGES = ("land_preapproval", "land_planning_permit", "construction_planning_permit", "construction_permit",
          "completion_filing")
SYSTEM = "工程建设项目审批管理系统"
PROJECT_KINDS = ("研发中心", "生产厂房", "仓储物流中心", "商业综合体", "办公楼", "人才公寓")
PROJECT_SHARE = 0.1  # projects per clean company


def drop_path(departments: Path, day: int) -> Path:
    return departments / "zhujian" / "drops" / f"approvals_{tl.day_stamp(day)}.csv"


def write_drop(path: Path, rows: list[tuple]) -> None:
    """UTF-8 CSV; written to a temporary name and renamed, like every other drop."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    tmp.replace(path)


def read_drop(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _number(stage: str, rng: random.Random, division: str, year: int, seq: int) -> str:
    if stage == "land_preapproval":
        return f"用字第{division}{year}{seq:05d}号"
    if stage == "land_planning_permit":
        return f"地字第{division}{year}{seq:05d}号"
    if stage == "construction_planning_permit":
        return f"建字第{division}{year}{seq:05d}号"
    if stage == "construction_permit":
        return f"{division}{year}{rng.randint(101, 1231):04d}{seq:04d}"
    return f"备{division}{year}{seq:05d}"


def generate_approvals(nrng: np.random.Generator, rng: random.Random, companies: list[tuple[str, str]],
                       day: int) -> list[tuple]:
    """Licence records for projects of ``companies`` ((credit code, name)), issued by day ``day``."""
    from certificates.registry import load_registry

    reg = load_registry()
    today = tl.day_date(day)
    counties = hangzhou_counties()
    n = min(len(companies), max(3, round(len(companies) * PROJECT_SHARE))) if companies else 0
    owners = rng.sample(companies, n)
    rows: list[tuple] = []
    issued: list[str] = []
    seq = 0
    for k, (code, name) in enumerate(owners):
        division = rng.choice(counties)
        place = f"{division_places()[division][0]}{rng.choice(('科技', '江南', '文一', '钱江'))}路{rng.randint(1, 900)}号"
        # the first project reaches every stage (so the demo always has a complete case)
        reached = 5 if k == 0 else rng.randint(1, 5)
        start = today - dt.timedelta(days=rng.randint(400, 1500))
        details = json.dumps({"project_name": f"{name}{rng.choice(PROJECT_KINDS)}项目",
                              "project_code": f"{start.year}-{division}-{rng.randint(10, 99)}-01-{rng.randint(0, 999999):06d}",
                              "address": place, "system": SYSTEM}, ensure_ascii=False)
        when = start
        for stage in STAGES[:reached]:
            seq += 1
            lt = reg.licence_type(stage)
            when = min(today, when + dt.timedelta(days=rng.randint(20, 120)))
            until = ""
            if lt.validity.startswith("fixed:"):
                until = (tl.add_years_date(when, int(lt.validity.split(":")[1])) - dt.timedelta(days=1)).isoformat()
            rows.append((lt.code, _number(stage, rng, division, when.year, seq), code, "001", name,
                         when.isoformat(), when.isoformat(), until, "01", details, "gcjs-system"))
            issued.append(when.isoformat())
    stamps = tl.timestamps_after(nrng, np.array(issued, dtype="datetime64[D]"), day) if rows else []
    return [r + (ts,) for r, ts in zip(rows, stamps)]
