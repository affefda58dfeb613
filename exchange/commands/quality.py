"""``onewindow quality …``: the auditor's data-quality report as a standalone HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from warehouse.datadir import Layout

app = typer.Typer(help="Data quality (数据质量): reports for auditors.", no_args_is_help=True)
console = Console()


@app.command("report")
def report(
    run: str = typer.Option(..., "--run", help="Run id to drill down into (see quality_runs.run_id)."),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write (default <data-dir>/reports/quality-<run>.html)."),
    library: bool = typer.Option(False, "--library", help="Read the library itself instead of the published snapshot."),
) -> None:
    """Write the data-quality report (score chart, worst rules, masked quarantine drill-down) as one HTML file."""
    from quality.data_docs import page_name
    from quality.report import build_report, read_run
    from warehouse.duck import connect
    from warehouse.snapshot import current

    layout = Layout.from_env()
    source = layout.library if library else current(layout)
    if source is None or not source.exists():
        console.print(f"[red]没有可读的{'证照库' if library else '快照'}：{source or layout.current_snapshot_pointer}[/]"
                      " — run the pipeline first (`onewindow pipeline run`), or pass --library.")
        raise typer.Exit(2)
    con = connect(source, read_only=True)
    try:
        if not read_run(con, run)["batches"]:
            known = [r[0] for r in con.execute(
                "SELECT DISTINCT run_id FROM quality_runs ORDER BY 1 DESC LIMIT 10").fetchall()]
            console.print(f"[red]运行 {run} 不在 {source.name} 的 quality_runs 中。[/] Known runs: {', '.join(known) or '-'}")
            raise typer.Exit(2)
        def docs_link(r) -> str | None:
            path = layout.reports / "data_docs" / r.source_id / r.interval / page_name(r.run_id)
            return path.as_uri() if path.is_file() else None

        page = build_report(con, run, docs_link=docs_link)
    finally:
        con.close()
    target = out or layout.reports / ("quality-" + page_name(run))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    console.print(f"数据质量报告已写入 {target}")
