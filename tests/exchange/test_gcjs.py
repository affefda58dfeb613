"""The simulated construction approval system (工程建设项目审批): deterministic per seed, stages in order."""

from __future__ import annotations

from collections import defaultdict

from certificates.registry import load_registry
from exchange.departments import gcjs, simulate
from quality.standards import uscc_findings
from warehouse.datadir import Layout


def _drop(tmp_path, name: str, seed: int) -> bytes:
    layout = Layout(tmp_path / name).ensure()
    simulate(layout, persons=300, seed=seed)
    return gcjs.drop_path(layout.departments, 0).read_bytes()


def test_construction_drop_is_deterministic_and_stages_come_in_order(tmp_path):
    first, again, other = _drop(tmp_path, "a", 5), _drop(tmp_path, "b", 5), _drop(tmp_path, "c", 6)
    assert first == again and first != other
    rows = gcjs.read_drop(Layout(tmp_path / "a").departments / "zhujian" / "drops" / "approvals_20261101.csv")
    reg = load_registry()
    stage_of = {reg.licence_type(k).code: i for i, k in enumerate(gcjs.STAGES)}
    by_project: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_project[r["details"]].append(r)
        assert r["holder_code_type"] == "001" and not uscc_findings(r["holder_code"])
        assert r["updated_at"] < "2026-11-02"
    assert any(len(rs) == 5 for rs in by_project.values()), "one project reached 竣工验收"
    for rs in by_project.values():
        stages = [stage_of[r["licence_type_code"]] for r in rs]
        assert stages == list(range(len(stages)))  # 立项 → 用地 → 规划 → 施工许可 → 竣工验收, no gaps
        assert [r["issue_date"] for r in rs] == sorted(r["issue_date"] for r in rs)
