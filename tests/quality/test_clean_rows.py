"""Generated valid rows are never quarantined or flagged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import quality
from quality import standards
from tests.quality.factories import DIVISIONS, MAKERS, write_batch

# "锟斤拷" is CJK but is the mark of a GBK round trip gone wrong (mis_encoded_text), never a real name
cjk = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=12).filter(
    lambda s: "锟斤拷" not in s)
dates = st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2026, 10, 31))


def _add_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


@st.composite
def person_rows(draw: st.DrawFn) -> dict:
    birth = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)))
    ric = standards.make_ric(draw(st.sampled_from(DIVISIONS)), birth, draw(st.integers(0, 999)))
    if draw(st.booleans()):
        ric = ric.lower()  # a lower-case x is still the same number
    issue = draw(st.dates(min_value=max(birth, dt.date(1950, 1, 1)), max_value=dt.date(2026, 10, 31)))
    age = issue.year - birth.year - ((issue.month, issue.day) < (birth.month, birth.day))
    term = 5 if age < 16 else 10 if age < 26 else 20 if age < 46 else 0
    until = (draw(st.sampled_from(["", None])) if term == 0
             else _add_years(issue, term).isoformat())  # 居民身份证: validity by age at issue
    name = draw(cjk) + draw(st.sampled_from(["", "·" ])) + draw(cjk)
    assume("锟斤拷" not in name)
    return MAKERS["persons"](id_number=ric, name=name,
                             birth_date=birth.isoformat(), address=draw(cjk),
                             id_card_issue_date=issue.isoformat(), id_card_valid_until=until)


@st.composite
def enterprise_rows(draw: st.DrawFn) -> dict:
    code = standards.make_uscc(draw(st.sampled_from("159")), draw(st.sampled_from("123")),
                               draw(st.sampled_from(DIVISIONS)),
                               draw(st.text("0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=8, max_size=8)))
    return MAKERS["enterprises"](uscc=code, name=draw(cjk), legal_rep_name=draw(cjk),
                                 issue_date=draw(dates).isoformat(),
                                 registered_capital=draw(st.none() | st.floats(0, 1e6)))


def _unique(rows: list[dict], key: str) -> list[dict]:
    seen: dict[str, dict] = {}
    for r in rows:
        seen.setdefault(r[key].upper(), r)
    return list(seen.values())


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.tuples(st.just("persons"), st.lists(person_rows(), min_size=1, max_size=40)),
                 st.tuples(st.just("enterprises"), st.lists(enterprise_rows(), min_size=1, max_size=40))))
def test_valid_rows_all_pass(tmp_path_factory: pytest.TempPathFactory, case: tuple[str, list[dict]]) -> None:
    dataset, rows = case
    rows = _unique(rows, quality.DATASETS[dataset].key)
    tmp: Path = tmp_path_factory.mktemp("clean")
    raw = write_batch(rows, dataset, tmp / "raw.parquet")
    result = quality.check_batch(raw, dataset, run_id="clean", out_dir=tmp / "out")
    import pyarrow.parquet as pq

    reasons = [r["_reasons"] for r in pq.read_table(result.quarantine_path).to_pylist()]
    assert (result.passed, result.quarantined, result.flagged) == (len(rows), 0, 0), reasons
    assert result.gx_success is True
    assert set(result.per_rule.values()) == {0}
