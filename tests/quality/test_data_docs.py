"""GX Data Docs: one page per run, earlier runs kept, nothing loaded from the internet."""

from __future__ import annotations

import json
import re
from pathlib import Path

import quality
from quality.data_docs import page_name, strip_remote_assets
from tests.quality.factories import make_person_row, write_batch

REMOTE = re.compile(r"<(?:link|script|img)\b[^>]*(?:href|src)=\"https?://", re.I)


def test_each_run_keeps_its_own_page(tmp_path: Path) -> None:
    docs = tmp_path / "reports" / "data_docs" / "gongan_population" / "20261101T000000-20261102T000000"
    raw = write_batch([make_person_row(), make_person_row(name="")], "persons", tmp_path / "raw.parquet")
    first = quality.check_batch(raw, "persons", run_id="manual__2026-11-01T00:00:00", out_dir=tmp_path / "a",
                                docs_dir=docs)
    first_page = docs / page_name("manual__2026-11-01T00:00:00")
    before = first_page.read_text(encoding="utf-8")
    raw2 = write_batch([make_person_row()], "persons", tmp_path / "raw2.parquet")
    quality.check_batch(raw2, "persons", run_id="scheduled__2026-11-02", out_dir=tmp_path / "b", docs_dir=docs)

    pages = sorted(p.name for p in docs.glob("*.html"))
    assert pages == sorted(["index.html", first_page.name, page_name("scheduled__2026-11-02")])
    assert first_page.read_text(encoding="utf-8") == before  # the earlier run is not overwritten
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert first_page.name in index and page_name("scheduled__2026-11-02") in index
    # GX's own rendering: the suite, the failing expectation, the run name
    assert "onewindow.persons" in before and "manual__2026-11-01T00:00:00" in before
    assert "missing_required:name" in before and "1 unexpected values found" in before
    assert "Failed" in before
    for page in docs.glob("*.html"):
        assert not REMOTE.search(page.read_text(encoding="utf-8")), page
    report = json.loads(first.validation_path.read_text(encoding="utf-8"))
    assert report["gx"]["data_docs"] == str(first_page)


def test_remote_assets_are_stripped_and_local_markup_kept() -> None:
    page = ('<link rel="stylesheet" href="https://cdn.example/x.css"/><style>.a{}</style>'
            '<script src="https://cdn.example/j.js"></script><script>var a=1;</script>'
            '<img src="https://s3.example/logo.png"><a href="https://greatexpectations.io">GX</a>')
    out = strip_remote_assets(page)
    assert out == '<style>.a{}</style><script>var a=1;</script><a href="https://greatexpectations.io">GX</a>'


def test_page_names_are_safe_file_names() -> None:
    assert page_name("manual__2026-11-01T00:00:00+00:00") == "manual__2026-11-01T00_00_00_00_00.html"
    assert page_name("../../etc") == "etc.html"
    assert page_name("///") == "run.html"
