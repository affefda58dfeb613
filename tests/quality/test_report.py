"""The auditor's report: chart, worst rules, masked drill-down; served at /quality and written by the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from typer.testing import CliRunner

from quality import report
from quality.standards import mask_identifier
from warehouse.datadir import Layout

RIC = "11010519491231002X"
BAD_RIC = "110105194912310021"  # wrong check character
SHORT = "1101051949"  # a malformed number is still personal
I1, I2 = "20261101T000000-20261102T000000", "20261102T000000-20261103T000000"


def _library(layout: Layout) -> None:
    from warehouse.load import open_library

    con = open_library(layout)
    try:
        runs = [("run-a", "gongan_population", "persons", I1, 1000, 950, 50, 3, {"id_check_char": 40, "impossible_date": 10}),
                ("run-b", "gongan_population", "persons", I2, 200, 198, 2, 0, {"id_check_char": 2}),
                ("run-a", "zrzy_property", "properties", I1, 100, 99, 1, 1, {"missing_required": 1, "uscc_check_char": 1})]
        for run_id, src, ds, interval, rows, passed, quarantined, flagged, per_rule in runs:
            con.execute("INSERT INTO quality_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, true, 'merged', ?)",
                        [run_id, src, ds, interval, rows, passed, quarantined, flagged, json.dumps(per_rule),
                         dt.datetime(2026, 11, 2, 1)])
        reasons = [{"code": "id_check_char", "field": "id_number", "value": BAD_RIC, "severity": "error",
                    "message": "身份证号码校验码错误：应为 X"},
                   {"code": "id_format", "field": "id_number", "value": SHORT, "severity": "error",
                    "message": f"身份证号码格式错误：{SHORT}"}]
        con.execute("INSERT INTO quarantine VALUES ('gongan_population', 'persons', ?, ?, ?, ?, NULL)",
                    [I1, BAD_RIC, json.dumps(reasons[:1], ensure_ascii=False),
                     json.dumps({"id_number": BAD_RIC, "name": "王芳", "hukou_number": "3301020012345"},
                                ensure_ascii=False)])
        con.execute("INSERT INTO quarantine VALUES ('gongan_population', 'persons', ?, ?, ?, ?, NULL)",
                    [I1, SHORT, json.dumps(reasons[1:], ensure_ascii=False),
                     json.dumps({"id_number": SHORT, "name": "李强"}, ensure_ascii=False)])
        con.execute("""INSERT INTO crosscheck_findings VALUES ('zrzy_property', 'properties', 'P-1', 'name_mismatch',
                       'owner_name', ?, ?, ?)""",
                    [RIC, json.dumps({"zrzy_property": "王方", "gongan_population": "王芳"}, ensure_ascii=False), I1])
    finally:
        con.close()


@pytest.fixture()
def published(layout):
    from warehouse.snapshot import current, publish

    _library(layout)
    publish(layout, built_at=dt.datetime(2026, 11, 2, 2))
    return layout, current(layout)


def _read(path):
    from warehouse.duck import connect

    return connect(path, read_only=True)


def _assert_no_raw_identifier(page: str) -> None:
    for raw in (BAD_RIC, RIC, SHORT, "3301020012345"):
        assert raw not in page
    assert not re.search(r"<script|<link|https?://(?!www\.w3\.org/2000/svg)", page)


def test_overview_chart_worst_rules_and_findings(published):
    _, snap = published
    con = _read(snap)
    try:
        page = report.build_report(con, link=lambda r: f"/quality/runs/{r}")
    finally:
        con.close()
    _assert_no_raw_identifier(page)
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert svg.count("<polyline") == 1  # 公安 has two intervals, 自然资源 one point
    assert svg.count("<circle") == 3 and "公安 · 人口信息" in svg and "自然资源 · 不动产登记" in svg
    assert "95.00%" in page and "99.00%" in page  # 950 / (950 + 50), 198 / 200
    worst = report.worst_expectations(report.read_runs(_read(snap)))
    assert worst[0] == ("gongan_population", "id_check_char", 42, 42 / 1200)
    assert "身份证号码校验码错误" in page and "姓名 / 名称与登记部门不一致" in page
    assert page.index("id_check_char") < page.index("impossible_date")  # worst first
    assert '/quality/runs/run-a' in page


def test_drill_down_masks_identifiers_everywhere(published):
    _, snap = published
    con = _read(snap)
    try:
        page = report.build_report(con, "run-a")
    finally:
        con.close()
    _assert_no_raw_identifier(page)
    assert mask_identifier(BAD_RIC) in page and mask_identifier(SHORT) in page
    assert "王芳" in page and "待源头修复" in page  # the row is shown, only identifiers are masked
    assert "王方" in page and mask_identifier(RIC) in page  # the finding with both departments' values
    assert "运行 run-a 明细" in page and "自然资源 · 不动产登记" in page


def test_mask_text_masks_every_id_number():
    assert report.mask_text(f"a {RIC} b 110105491231002 c") == (
        f"a {mask_identifier(RIC)} b {mask_identifier('110105491231002')} c")
    assert report.mask_text("JY11101080000001") == "JY11101080000001"  # not an ID number


def test_served_pages(published):
    from fastapi.testclient import TestClient

    from exchange.api.main import create_app

    layout, _ = published
    docs = layout.reports / "data_docs" / "gongan_population" / I1
    docs.mkdir(parents=True)
    (docs / "run-a.html").write_text("<html>GX page</html>", encoding="utf-8")
    with TestClient(create_app(layout)) as client:
        assert client.get("/quality", follow_redirects=False).status_code == 303  # auditors only (issue 6)
        from tests.web.helpers import sign_in_as_auditor

        sign_in_as_auditor(client)
        overview = client.get("/quality")
        assert overview.status_code == 200 and "各部门数据质量分趋势" in overview.text
        _assert_no_raw_identifier(overview.text)
        run = client.get("/quality/runs/run-a")
        assert run.status_code == 200
        _assert_no_raw_identifier(run.text)
        link = re.search(r'href="(/quality/data-docs/[^"]+)"', run.text).group(1)
        assert client.get(link).text == "<html>GX page</html>"
        assert client.get("/quality/runs/nope").status_code == 404
        assert client.get("/quality/data-docs/gongan_population/..%2F..%2Fkeys/x.html").status_code == 404
        assert client.get(f"/quality/data-docs/gongan_population/{I1}/missing.html").status_code == 404


def test_cli_writes_the_same_report(published, tmp_path, monkeypatch):
    from exchange.cli import app
    from warehouse.datadir import ENV_VAR

    layout, snap = published
    monkeypatch.delenv(ENV_VAR, raising=False)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["--data-dir", str(layout.root), "quality", "report", "--run", "run-a",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    con = _read(snap)
    try:
        assert out.read_text(encoding="utf-8") == report.build_report(con, "run-a")
    finally:
        con.close()
    missing = CliRunner().invoke(app, ["--data-dir", str(layout.root), "quality", "report", "--run", "nope"])
    assert missing.exit_code == 2 and "run-a" in missing.output
