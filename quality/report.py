"""The auditor's data-quality report (数据质量报告), built from a snapshot or the library.

One HTML page, in Chinese, self-contained (inline CSS, a server-side SVG chart, no
script and nothing loaded from the internet):

* 质量分 per department over time — share of checked rows that passed, per run;
* the worst expectations (reason codes with the most failing rows);
* cross-department findings (比对结果) per check;
* for one run, a drill-down to its quarantined rows and findings, with personal
  identifiers masked (``110105********002X``).

The hub serves it at ``/quality`` (``exchange/api/routes/quality.py``) and
``onewindow quality report --run ID`` writes it as a file.  Functions take an open
DuckDB connection (or cursor) over a database with the library schema.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quality.standards import mask_identifier

DEPARTMENTS = {
    "gongan_population": "公安 · 人口信息",
    "scjg_enterprises": "市场监管 · 企业登记",
    "scjg_food_licences": "市场监管 · 食品经营许可",
    "minzheng_marriages": "民政 · 婚姻登记",
    "zrzy_property": "自然资源 · 不动产登记",
    "hub_licences": "枢纽 · 已签发电子证照",
    "zhujian_construction": "住建 · 工程建设项目审批",
    "hub_results": "枢纽 · 部门推送办结结果",
}
REASONS = {
    "id_check_char": "身份证号码校验码错误",
    "id_format": "身份证号码格式错误",
    "id_division": "身份证号码地址码无效",
    "id_birth_date": "身份证号码出生日期不存在",
    "uscc_format": "统一社会信用代码格式错误",
    "uscc_check_char": "统一社会信用代码校验码错误（标记保留）",
    "impossible_date": "日期不存在",
    "validity_end_before_start": "有效期截止早于起始",
    "validity_term": "有效期不符合证照类型规则（标记保留）",
    "missing_required": "必填字段为空",
    "duplicate_key": "同一批次业务主键重复",
    "mis_encoded_text": "文字乱码",
    "holder_code_type": "持证主体代码类型无效",
    "licence_id_format": "电子证照标识格式错误",
    "licence_id_check_char": "电子证照标识校验位错误",
    "licence_id_variant": "电子证照标识使用非标准校验位（已知变体，标记保留）",
    "licence_id_parts": "电子证照标识与证照记录不一致",
    "unknown_licence_type": "证照类型未登记",
    "holder_kind_mismatch": "持证主体类型与证照类型不符",
    "invalid_json": "扩展信息不是 JSON 对象",
}
CHECKS = {
    "name_mismatch": "姓名 / 名称与登记部门不一致",
    "legal_rep_missing": "法定代表人不在人口信息库",
    "spouse_missing": "婚姻登记当事人不在人口信息库",
    "owner_missing": "不动产权利人不在人口 / 企业信息库",
}
# Fields holding a personal identifier (or a number that identifies a person): always masked.
PERSONAL_FIELDS = frozenset({"id_number", "legal_rep_id", "spouse1_id", "spouse2_id", "owner_code",
                             "hukou_number", "subject_code", "holder_code"})
# Datasets whose business key is a personal identifier.
PERSONAL_KEYS = frozenset({"persons"})
_RIC = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_COLOURS = ("#c0392b", "#2471a3", "#1e8449", "#b9770e", "#7d3c98", "#566573")
DRILL_LIMIT = 500


def mask_text(text: Any) -> str:
    """``text`` with every citizen ID number (15 or 18 characters) in it masked."""
    return _RIC.sub(lambda m: mask_identifier(m.group(1)), "" if text is None else str(text))


def _mask_field(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in PERSONAL_FIELDS:
        return mask_identifier(str(value))
    return mask_text(value)


def mask_record_key(dataset: str, key: Any) -> str:
    """A business key as shown: masked whole when it is a personal identifier (persons)."""
    if key is None:
        return ""
    return mask_identifier(str(key)) if dataset in PERSONAL_KEYS else mask_text(key)


# ------------------------------------------------------------------ reading
@dataclass(frozen=True)
class Run:
    run_id: str
    source_id: str
    dataset: str
    interval: str
    rows: int
    passed: int
    quarantined: int
    flagged: int
    per_rule: dict[str, int]
    gx_success: bool
    status: str
    finished_at: str

    @property
    def score(self) -> float:
        """质量分: passed rows as a share of rows judged (passed + quarantined), in percent."""
        judged = self.passed + self.quarantined
        return 100.0 * self.passed / judged if judged else 100.0


@dataclass
class ReportData:
    runs: list[Run]
    findings_by_check: list[tuple[str, str, int]]  # (source_id, check, count)
    snapshot: str = ""
    run_detail: dict[str, Any] = field(default_factory=dict)


def _tables(con: Any) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def read_runs(con: Any) -> list[Run]:
    rows = con.execute("""
        SELECT run_id, source_id, dataset, interval, rows, passed, quarantined, flagged, per_rule, gx_success,
               status, strftime(finished_at, '%Y-%m-%d %H:%M:%S')
        FROM quality_runs ORDER BY interval, source_id, finished_at""").fetchall()
    return [Run(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), int(r[7]),
                {k: int(v) for k, v in json.loads(r[8]).items()}, bool(r[9]), r[10], r[11]) for r in rows]


def read(con: Any, run_id: str | None = None) -> ReportData:
    """Everything the report shows; with ``run_id``, also that run's drill-down."""
    tables = _tables(con)
    findings: list[tuple[str, str, int]] = []
    if "crosscheck_findings" in tables:
        findings = [(r[0], r[1], int(r[2])) for r in con.execute(
            'SELECT source_id, "check", count(*) FROM crosscheck_findings GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2'
        ).fetchall()]
    snapshot = ""
    if "snapshot_meta" in tables:
        meta = con.execute("SELECT snapshot_id, CAST(built_at AS VARCHAR) FROM snapshot_meta").fetchone()
        snapshot = f"{meta[0]}（生成于 {meta[1]}）" if meta else ""
    data = ReportData(read_runs(con), findings, snapshot)
    if run_id is not None:
        data.run_detail = read_run(con, run_id, tables)
    return data


def read_run(con: Any, run_id: str, tables: set[str] | None = None) -> dict[str, Any]:
    """One run's batches with their quarantined rows and cross-check findings (raw, unmasked)."""
    tables = tables if tables is not None else _tables(con)
    runs = [r for r in read_runs(con) if r.run_id == run_id]
    batches = []
    for run in runs:
        quarantined = con.execute("""
            SELECT record_key, CAST(reasons AS VARCHAR), CAST("row" AS VARCHAR), resolved_interval
            FROM quarantine WHERE source_id = ? AND interval = ? ORDER BY record_key LIMIT ?""",
                                  [run.source_id, run.interval, DRILL_LIMIT]).fetchall()
        total = con.execute("SELECT count(*) FROM quarantine WHERE source_id = ? AND interval = ?",
                            [run.source_id, run.interval]).fetchone()[0]
        findings = []
        if "crosscheck_findings" in tables:
            findings = con.execute("""
                SELECT record_key, "check", field, subject_code, CAST("values" AS VARCHAR)
                FROM crosscheck_findings WHERE source_id = ? AND interval = ? ORDER BY "check", record_key
                LIMIT ?""", [run.source_id, run.interval, DRILL_LIMIT]).fetchall()
        batches.append({"run": run, "quarantined_total": int(total),
                        "quarantined": [(k, json.loads(r), json.loads(row), res) for k, r, row, res in quarantined],
                        "findings": [(k, c, f, s, json.loads(v)) for k, c, f, s, v in findings]})
    return {"run_id": run_id, "batches": batches}


# ------------------------------------------------------------------ rendering
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def department(source_id: str) -> str:
    return DEPARTMENTS.get(source_id, source_id)


def score_chart(runs: list[Run], width: int = 760, height: int = 300) -> str:
    """Inline SVG: 质量分 per department (one line each) over the data intervals."""
    intervals = sorted({r.interval for r in runs})
    sources = sorted({r.source_id for r in runs})
    if not intervals:
        return '<p class="note">尚无校验运行记录。</p>'
    left, right, top, bottom = 56, 200, 20, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    low = min(r.score for r in runs)
    floor = max(0.0, min(90.0, (int(low) // 5) * 5.0))

    def x(i: int) -> float:
        return left + (plot_w / 2 if len(intervals) == 1 else plot_w * i / (len(intervals) - 1))

    def y(score: float) -> float:
        return top + plot_h * (100.0 - score) / (100.0 - floor)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="各部门数据质量分趋势" class="chart">']
    step = 5 if 100 - floor > 10 else 1
    tick = floor
    while tick <= 100.0001:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="#e5e7eb"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{tick:g}</text>')
        tick += step
    for i, interval in enumerate(intervals):
        parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">'
                     f'{_e(interval[:8])}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" font-size="11">'
                 f'数据区间（起始日）</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2}" font-size="11" transform="rotate(-90 14 '
                 f'{top + plot_h / 2})" text-anchor="middle">质量分（%）</text>')
    for n, source in enumerate(sources):
        colour = _COLOURS[n % len(_COLOURS)]
        points = [(x(intervals.index(r.interval)), y(r.score), r) for r in runs if r.source_id == source]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for px, py, r in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}"><title>'
                         f'{_e(department(source))} {_e(r.interval)}：{r.score:.2f}%'
                         f'（隔离 {r.quarantined} / {r.passed + r.quarantined}）</title></circle>')
        ly = top + 14 + 18 * n
        parts.append(f'<rect x="{left + plot_w + 14}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + plot_w + 32}" y="{ly + 1}" font-size="12">{_e(department(source))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def worst_expectations(runs: list[Run], limit: int = 10) -> list[tuple[str, str, int, float]]:
    """(source_id, reason code, failing rows, share of rows) over every run, worst first."""
    failing: dict[tuple[str, str], int] = {}
    rows: dict[str, int] = {}
    for r in runs:
        rows[r.source_id] = rows.get(r.source_id, 0) + r.rows
        for code, n in r.per_rule.items():
            if n:
                failing[(r.source_id, code)] = failing.get((r.source_id, code), 0) + n
    out = [(s, c, n, n / rows[s] if rows[s] else 0.0) for (s, c), n in failing.items()]
    return sorted(out, key=lambda t: (-t[2], t[0], t[1]))[:limit]


_CSS = """
body{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:68rem;margin:2rem auto;
padding:0 1rem;line-height:1.6;color:#1f2933}
h1{font-size:1.5rem;border-bottom:3px solid #c0392b;padding-bottom:.4rem} h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}
th,td{border:1px solid #d9dee3;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6} td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#7b8794;font-size:.85rem} .bad{color:#c0392b} .ok{color:#1e8449} code{background:#f3f4f6;padding:0 .2rem}
.chart{max-width:100%;height:auto;border:1px solid #e5e7eb;background:#fff}
"""


def _runs_table(runs: list[Run], link: Callable[[str], str | None]) -> str:
    head = ("<tr><th>运行</th><th>部门 · 数据集</th><th>数据区间</th><th>检查行数</th><th>通过</th><th>隔离</th>"
            "<th>标记</th><th>质量分</th><th>GX 校验</th><th>状态</th><th>完成时间</th></tr>")
    body = []
    for r in reversed(runs):
        href = link(r.run_id)
        name = f'<a href="{_e(href)}">{_e(r.run_id)}</a>' if href else _e(r.run_id)
        status = {"merged": "已入库", "rejected": "整批拒收（错误率超阈值）",
                  "checked": "仅校验（证照已签发，不入库）"}.get(r.status, r.status)
        body.append(f"<tr><td>{name}</td><td>{_e(department(r.source_id))}</td><td>{_e(r.interval)}</td>"
                    f'<td class="n">{r.rows:,}</td><td class="n">{r.passed:,}</td><td class="n">{r.quarantined:,}</td>'
                    f'<td class="n">{r.flagged:,}</td><td class="n">{r.score:.2f}%</td>'
                    f'<td class="{"ok" if r.gx_success else "bad"}">{"通过" if r.gx_success else "未通过"}</td>'
                    f"<td>{_e(status)}</td><td>{_e(r.finished_at)}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _overview(data: ReportData, link: Callable[[str], str | None]) -> str:
    worst = worst_expectations(data.runs)
    worst_rows = "".join(
        f"<tr><td>{_e(department(s))}</td><td>{_e(REASONS.get(c, c))} <code>{_e(c)}</code></td>"
        f'<td class="n">{n:,}</td><td class="n">{share:.2%}</td></tr>' for s, c, n, share in worst)
    findings = "".join(
        f"<tr><td>{_e(department(s))}</td><td>{_e(CHECKS.get(c, c))} <code>{_e(c)}</code></td>"
        f'<td class="n">{n:,}</td></tr>' for s, c, n in data.findings_by_check)
    return (
        "<h2>各部门数据质量分趋势</h2>"
        "<p class=\"note\">质量分 = 通过行数 ÷（通过 + 隔离）× 100。标记（警告）行保留入库，不扣分。</p>"
        f"{score_chart(data.runs)}"
        "<h2>失败最多的校验规则</h2>"
        + (f"<table><tr><th>部门 · 数据集</th><th>规则</th><th>涉及行数</th><th>占检查行数</th></tr>{worst_rows}"
           "</table>" if worst_rows else '<p class="note">没有失败的校验规则。</p>')
        + "<h2>跨部门比对结果</h2>"
        + (f"<table><tr><th>记录所在部门</th><th>比对项</th><th>发现数</th></tr>{findings}</table>"
           if findings else '<p class="note">没有跨部门比对差异。</p>')
        + f"<h2>校验运行记录</h2>{_runs_table(data.runs, link)}")


def _reason_cell(reason: dict[str, Any]) -> str:
    fld = str(reason.get("field", ""))
    raw_value = reason.get("value")
    value = _mask_field(fld, raw_value)
    message = mask_text(reason.get("message", ""))
    if raw_value and fld in PERSONAL_FIELDS:
        message = message.replace(str(raw_value), value)
    severity = "错误" if reason.get("severity") == "error" else "警告"
    return (f"{_e(REASONS.get(reason.get('code'), reason.get('code')))}（{severity}）"
            f"<br><code>{_e(fld)}</code> = {_e(value)}<br><span class=\"note\">{_e(message)}</span>")


def run_section(detail: dict[str, Any], docs_link: Callable[[Run], str | None] = lambda run: None) -> str:
    """The drill-down of one run: each batch's counts, quarantined rows and findings, identifiers masked."""
    if not detail.get("batches"):
        return f"<h2>运行 {_e(detail.get('run_id'))}</h2><p class=\"bad\">没有这个运行的记录。</p>"
    out = [f"<h2>运行 {_e(detail['run_id'])} 明细</h2>"]
    for batch in detail["batches"]:
        run: Run = batch["run"]
        out.append(f"<h3>{_e(department(run.source_id))} · {_e(run.interval)}</h3>"
                   f"<p>检查 {run.rows:,} 行，通过 {run.passed:,}，隔离 {run.quarantined:,}，标记 {run.flagged:,}，"
                   f"质量分 {run.score:.2f}%。</p>")
        href = docs_link(run)
        if href:
            out.append(f'<p><a href="{_e(href)}">本次运行的 GX 数据文档（Data Docs）</a></p>')
        rules = "".join(f"<tr><td>{_e(REASONS.get(c, c))} <code>{_e(c)}</code></td><td class=\"n\">{n:,}</td></tr>"
                        for c, n in sorted(run.per_rule.items(), key=lambda kv: -kv[1]) if n)
        if rules:
            out.append(f"<table><tr><th>规则</th><th>涉及行数</th></tr>{rules}</table>")
        shown = len(batch["quarantined"])
        out.append(f"<h4>隔离记录（{batch['quarantined_total']:,} 条"
                   f"{'，显示前 ' + str(shown) + ' 条' if shown < batch['quarantined_total'] else ''}）</h4>")
        if batch["quarantined"]:
            rows = []
            for key, reasons, row, resolved in batch["quarantined"]:
                fields = "；".join(f"{_e(k)}={_e(_mask_field(k, v))}" for k, v in row.items()
                                  if not k.startswith("_"))
                state = f"已于 {_e(resolved)} 修复入库" if resolved else "待源头修复"
                rows.append(f"<tr><td>{_e(mask_record_key(run.dataset, key))}</td>"
                            f"<td>{'<hr>'.join(_reason_cell(r) for r in reasons)}</td>"
                            f"<td class=\"note\">{fields}</td><td>{state}</td></tr>")
            out.append("<table><tr><th>业务主键</th><th>原因</th><th>原始记录（已脱敏）</th><th>状态</th></tr>"
                       + "".join(rows) + "</table>")
        if batch["findings"]:
            rows = []
            for key, check, fld, subject, values in batch["findings"]:
                vals = "；".join(f"{_e(department(k))}：{_e('（无记录）' if v is None else v)}"
                                for k, v in values.items())
                rows.append(f"<tr><td>{_e(mask_record_key(run.dataset, key))}</td><td>{_e(CHECKS.get(check, check))}</td>"
                            f"<td><code>{_e(fld)}</code></td><td>{_e(_mask_field('subject_code', subject))}</td>"
                            f"<td>{vals}</td></tr>")
            out.append(f"<h4>跨部门比对结果（{len(rows)} 条）</h4><table><tr><th>业务主键</th><th>比对项</th>"
                       "<th>字段</th><th>主体代码</th><th>各部门的值</th></tr>" + "".join(rows) + "</table>")
    return "".join(out)


def cert_expiry_section(entries: list[dict[str, Any]] | None, warn_days: int) -> str:
    """"证书到期提醒": signing certificates expired or due within ``warn_days`` (dicts with
    ``name``, ``code``, ``kind``, ``not_after``, ``days_left``, ``expired``, ``message_zh``);
    ``None`` when the trust material could not be read."""
    head = "<h2>证书到期提醒</h2>"
    if entries is None:
        return head + '<p class="bad">信任列表尚未发布或无法读取，无法检查签名证书有效期。</p>'
    if not entries:
        return head + f'<p class="ok">未来 {warn_days} 天内没有到期的签名证书。</p>'
    kinds = {"licence_issuer": "电子证照签名", "hub_service": "枢纽服务签章"}
    rows = "".join(
        f'<tr class="{"bad" if e["expired"] else ""}"><td>{_e(e["name"])}</td><td><code>{_e(e["code"])}</code></td>'
        f'<td>{_e(kinds.get(e["kind"], e["kind"]))}</td><td>{_e(str(e["not_after"])[:10])}</td>'
        f'<td class="n">{"已过期" if e["expired"] else _e(e["days_left"])}</td><td>{_e(e["message_zh"])}</td></tr>'
        for e in entries)
    return (head + f'<p class="bad">{len(entries)} 个签名证书已到期或将在 {warn_days} 天内到期，请及时更换密钥。</p>'
            "<table><tr><th>持有者</th><th>代码</th><th>用途</th><th>到期日</th><th>剩余天数</th><th>提醒</th></tr>"
            f"{rows}</table>")


def render(data: ReportData, *, link: Callable[[str], str | None] = lambda run_id: None,
           docs_link: Callable[[Run], str | None] = lambda run: None, title: str = "数据质量报告",
           prelude: str = "") -> str:
    """The whole page: overview, plus the drill-down when ``data.run_detail`` is set;
    ``prelude`` (e.g. :func:`cert_expiry_section`) goes first."""
    snapshot = f"<p>数据来源：证照库快照 {_e(data.snapshot)}</p>" if data.snapshot else ""
    detail = run_section(data.run_detail, docs_link) if data.run_detail else ""
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>{snapshot}"
            f"<p class=\"note\">错误类问题整行隔离（附全部原因），警告类问题标记后保留；个人身份号码已脱敏显示。</p>"
            f"{prelude}{detail}{_overview(data, link)}</body></html>")


def build_report(con: Any, run_id: str | None = None, *,
                 link: Callable[[str], str | None] = lambda run_id: None,
                 docs_link: Callable[[Run], str | None] = lambda run: None, prelude: str = "") -> str:
    """Read and render in one call (the CLI's and the hub's entry point)."""
    title = "数据质量报告" if run_id is None else f"数据质量报告 · 运行 {run_id}"
    return render(read(con, run_id), link=link, docs_link=docs_link, title=title, prelude=prelude)
