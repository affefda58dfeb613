"""GX Data Docs for one validation run, kept per run and readable offline.

Each checkpoint run renders its validation result with GX's own Data Docs renderer
(``ValidationResultsPageRenderer`` + ``DefaultJinjaPageView``, what a Data Docs site
builder does for one validation) into ``<docs_dir>/<run>.html``; earlier runs' pages
are never touched, and ``index.html`` lists every page in the folder.

GX's page template loads Bootstrap, jQuery, Vega and fonts from public CDNs.  The
hub serves nothing from the internet, so those remote ``<link>``/``<script>``/``<img>``
tags are removed; GX's own stylesheet is inlined in the page and keeps it readable.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import uuid
from pathlib import Path
from typing import Any

_REMOTE_ASSET = re.compile(
    r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*/?>"
    r"|<script\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>"
    r"|<img\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*/?>",
    re.I | re.S)
_SAFE = re.compile(r"[^0-9A-Za-z._-]+")


def page_name(run_id: str) -> str:
    """File name of a run's page: the run id with anything unsafe in a path replaced."""
    stem = _SAFE.sub("_", run_id).strip("._")
    return f"{stem or 'run'}.html"


def strip_remote_assets(page: str) -> str:
    """Remove every tag that would load an asset from the internet."""
    return _REMOTE_ASSET.sub("", page)


def render_validation(validation_result: Any) -> str:
    """GX Data Docs HTML for one ``ExpectationSuiteValidationResult``, without remote assets."""
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
    from great_expectations.render.view.view import DefaultJinjaPageView

    rendered = ValidationResultsPageRenderer().render(validation_result)
    page = DefaultJinjaPageView().render(rendered, show_how_to_buttons=False)
    return strip_remote_assets(page)


def _write_atomically(text: str, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_run_page(validation_result: Any, docs_dir: Path, run_id: str) -> Path:
    """Write this run's Data Docs page (replacing only a page of the same run) and the index."""
    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    target = docs_dir / page_name(run_id)
    _write_atomically(render_validation(validation_result), target)
    write_index(docs_dir)
    return target


def write_index(docs_dir: Path) -> Path:
    """``index.html``: every run page in ``docs_dir``, newest first."""
    pages = sorted((p for p in docs_dir.glob("*.html") if p.name != "index.html"),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    rows = "\n".join(
        f'<li><a href="{html.escape(p.name)}">{html.escape(p.stem)}</a> '
        f'<small>{dt.datetime.fromtimestamp(p.stat().st_mtime):%Y-%m-%d %H:%M:%S}</small></li>'
        for p in pages)
    page = (f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            f"<title>数据质量校验文档（GX Data Docs）— {html.escape(docs_dir.name)}</title></head>"
            f"<body><h1>数据质量校验文档（GX Data Docs）</h1>"
            f"<p>每次校验运行一页，历次运行均保留。</p><ul>\n{rows}\n</ul></body></html>")
    index = docs_dir / "index.html"
    _write_atomically(page, index)
    return index
