"""Indicators for managers (可视化): 免提交率, applications per item and day, freshness and quality.

Charts are inline SVG rendered here (no script, no CDN). Sources:

* 免提交率 — cases accepted at the web counter: requirements met from the library
  without the applicant submitting anything, over all requirements the case needed;
* applications per item and day — the ``applications`` table (counter and API alike);
* freshness and quality score per department — the newest ``quality_runs`` row per
  source in the current snapshot (score = passed / (passed + quarantined)); freshness is
  the time since the end of that run's data interval (``finished_at``, stored in UTC).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import Counter, defaultdict
from typing import Any

from exchange.api.deps import CST

COLOURS = ("#2471a3", "#c0392b", "#1e8449", "#b9770e", "#7d3c98", "#566573", "#148f77")
DAYS = 14


def _e(value: Any) -> str:
    return html.escape(str(value))


def hbar_chart(rows: list[tuple[str, float, str]], *, max_value: float, label: str, width: int = 640) -> str:
    """Horizontal bars: (label, value, text shown at the bar's end)."""
    if not rows:
        return '<p class="note">暂无数据。</p>'
    left, bar, gap, top = 190, 18, 8, 8
    plot = width - left - 90
    height = top + len(rows) * (bar + gap) + 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{_e(label)}" class="chart">']
    for i, (name, value, text) in enumerate(rows):
        y = top + i * (bar + gap)
        w = 0 if max_value <= 0 else max(1.0, plot * value / max_value)
        out.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end" font-size="12">{_e(name)}</text>'
                   f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{COLOURS[i % len(COLOURS)]}">'
                   f'<title>{_e(name)}：{_e(text)}</title></rect>'
                   f'<text x="{left + w + 6:.1f}" y="{y + 13}" font-size="12">{_e(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def stacked_days_chart(counts: dict[str, Counter], days: list[str], names: dict[str, str], *,
                       width: int = 640, height: int = 240) -> str:
    """Stacked columns: applications per day, one colour per service item, with a legend."""
    if not counts:
        return '<p class="note">暂无办件。</p>'
    items = sorted({i for c in counts.values() for i in c})
    left, right, top, bottom = 40, 180, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(sum(c.values()) for c in counts.values()) or 1
    col = plot_w / max(1, len(days))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="各事项每日办件量" class="chart">',
           f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9aa5b1"/>',
           f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="11">{peak}</text>',
           f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>']
    for d, day in enumerate(days):
        x = left + d * col + col * 0.15
        y = top + plot_h
        for n, item in enumerate(items):
            k = counts.get(day, Counter()).get(item, 0)
            if not k:
                continue
            h = plot_h * k / peak
            y -= h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{col * 0.7:.1f}" height="{h:.1f}" '
                       f'fill="{COLOURS[n % len(COLOURS)]}"><title>{_e(day)} {_e(names.get(item, item))}：{k} 件'
                       f'</title></rect>')
        if d % max(1, len(days) // 7) == 0 or d == len(days) - 1:
            out.append(f'<text x="{x + col * 0.35:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                       f'font-size="10">{_e(day[5:])}</text>')
    for n, item in enumerate(items):
        ly = top + 10 + 18 * n
        out.append(f'<rect x="{left + plot_w + 12}" y="{ly - 9}" width="11" height="11" '
                   f'fill="{COLOURS[n % len(COLOURS)]}"/><text x="{left + plot_w + 28}" y="{ly}" '
                   f'font-size="11">{_e(names.get(item, item))}</text>')
    out.append("</svg>")
    return "".join(out)


def _quality(app: Any, now: dt.datetime) -> tuple[list[dict[str, Any]], str | None]:
    import duckdb

    from exchange.api.exceptions import ApiError
    from quality.report import department, read_runs

    try:
        with app.state.snapshots.lease() as snap:
            cur = snap.cursor()
            try:
                runs = read_runs(cur)
            finally:
                cur.close()
    except ApiError as exc:  # no snapshot published yet: said on the page
        return [], f"暂无质量记录：{exc.message.split('。')[0]}。"
    except (duckdb.CatalogException, duckdb.BinderException) as exc:  # snapshot without (current) quality table
        return [], f"当前快照没有质量记录表（{exc}）。"
    newest: dict[str, Any] = {}
    for r in runs:
        if r.source_id not in newest or (r.finished_at or "") >= (newest[r.source_id].finished_at or ""):
            newest[r.source_id] = r
    utc_now = now.astimezone(dt.timezone.utc).replace(tzinfo=None)
    out = []
    for source, r in sorted(newest.items()):
        age, shown = None, r.finished_at
        if r.finished_at:  # the end of the newest checked data interval, stored as UTC
            end = dt.datetime.fromisoformat(r.finished_at)
            age = (utc_now - end).total_seconds() / 3600
            shown = f"{end.replace(tzinfo=dt.timezone.utc).astimezone(CST):%Y-%m-%d %H:%M}"
        out.append({"source": source, "department": department(source), "score": r.score,
                    "finished_at": shown, "interval": r.interval, "age_hours": age,
                    "rows": r.rows, "quarantined": r.quarantined})
    return out, None


def age_text(hours: float) -> str:
    return f"{hours:.1f} 小时前" if hours < 48 else f"{hours / 24:.1f} 天前"


def collect(app: Any, now: dt.datetime) -> dict[str, Any]:
    store = app.state.service_store
    catalogue = app.state.catalogue
    names = {}
    for it in catalogue.items:
        names[it.code] = it.name
    # 免提交率
    reused = required = 0
    per_item: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in store.counter_cases(accepted_only=True):
        o = json.loads(case["outcome"] or "{}")
        k, n = len(o.get("reused", [])), int(o.get("required", 0))
        reused += k
        required += n
        for code in json.loads(case["item_codes"]):
            per_item[code][0] += k
            per_item[code][1] += n
    rate = 100.0 * reused / required if required else None
    rate_rows = [(names.get(c, c), 100.0 * k / n, f"{100.0 * k / n:.0f}%（{k}/{n}）")
                 for c, (k, n) in sorted(per_item.items()) if n]
    # applications per item and day
    today = now.astimezone(CST).date()
    days = [(today - dt.timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)]
    counts: dict[str, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    for a in store.all_applications():
        day = str(a["accepted_at"])[:10]
        totals[a["item_code"]] += 1
        if day in days:
            counts[day][a["item_code"]] += 1
    quality, quality_note = _quality(app, now)
    return {
        "rate": rate, "reused": reused, "required": required,
        "rate_chart": hbar_chart(rate_rows, max_value=100, label="各事项免提交率"),
        "apps_chart": stacked_days_chart(counts, days, names),
        "app_totals": [(names.get(c, c), c, n) for c, n in totals.most_common()],
        "quality": quality, "quality_note": quality_note,
        "quality_chart": hbar_chart([(q["department"], q["score"], f"{q['score']:.2f}%") for q in quality],
                                    max_value=100, label="各部门最新质量分"),
        "freshness_chart": hbar_chart(
            [(q["department"], max(q["age_hours"], 0.0), age_text(q["age_hours"]))
             for q in quality if q["age_hours"] is not None],
            max_value=max([q["age_hours"] for q in quality if q["age_hours"] is not None] or [1]),
            label="各部门数据更新距今"),
    }
