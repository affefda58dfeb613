"""Incremental extraction from department systems into raw Parquet partitions.

One partition per source and data interval (``lake/raw/source=<id>/interval=<key>``,
on local disk or object storage: ``warehouse.lake``), written whole (a temporary file
renamed into place, or one completed upload), so a re-run replaces its own partition
and a killed run leaves no half-written file behind.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, unquote

import pyarrow as pa

from exchange.exceptions import ExtractError, SourceConfigError
from exchange.sources.columns import BUSINESS_KEY, NUMERIC, RAW_COLUMNS, select_list
from exchange.sources.interval import Interval, iso
from exchange.sources.registry import Source
from warehouse.datadir import Layout
from warehouse.duck import connect, literal
from warehouse.lake import Lake


@dataclass(frozen=True)
class ExtractResult:
    source_id: str
    interval: str
    path: str  # lake location of the raw partition (local path or s3:// URI)
    rows: int
    lower: str | None  # inclusive lower bound used (None = from the beginning)
    upper: str  # exclusive upper bound


def lower_bound(interval: Interval, watermark: str | None) -> str | None:
    """Start of the interval, or the watermark when it is earlier (a gap); None on the first run."""
    if watermark is None:
        return None
    return min(iso(interval.start), watermark)


def extract(source: Source, interval: Interval, layout: Layout, *, watermark: str | None,
            lower: str | None = None, rerun: bool = False) -> ExtractResult:
    """Pull rows with ``lower <= cursor < interval.end`` into this interval's raw partition.

    A re-run of an interval that was loaded before (``rerun``) uses the lower bound
    that load used, so it pulls the same range; otherwise the bound comes from the
    watermark.
    """
    lo = lower if rerun else lower_bound(interval, watermark)
    lower, upper = lo, iso(interval.end)
    uri = source.uri(layout.root)
    if source.kind == "sql":
        table = _extract_sql(source, uri, lower, upper)
    elif source.kind == "rest":
        table = _extract_rest(source, uri, lower, upper)
    elif source.kind == "files":
        table = _extract_files(source, uri, interval, lower, upper)
    else:  # the registry validates kinds; this guards hand-built Source objects
        raise SourceConfigError(f"unknown kind {source.kind!r}", source_id=source.id)
    table = _with_meta(table, source, interval)
    lake = Lake.from_env(layout)
    dest = lake.raw(source.id, interval.key)
    lake.write_table(table, dest)
    return ExtractResult(source.id, interval.key, dest, table.num_rows, lower, upper)


def _where(cursor: str, lower: str | None, upper: str) -> str:
    cond = [f"TRY_CAST(\"{cursor}\" AS TIMESTAMP) < TIMESTAMP '{upper}'"]
    if lower is not None:
        cond.append(f"TRY_CAST(\"{cursor}\" AS TIMESTAMP) >= TIMESTAMP '{lower}'")
    return " AND ".join(cond)


def _extract_sql(source: Source, uri: str, lower: str | None, upper: str) -> pa.Table:
    """SQLite or PostgreSQL through DuckDB's scanners: set-based, not row by row."""
    table = source.options.get("table", source.dataset)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table):
        raise SourceConfigError(f"table name {table!r} is not a plain identifier", source_id=source.id)
    parsed = urlparse(uri)
    con = connect(extensions=("sqlite_scanner", "postgres_scanner"))
    try:
        if parsed.scheme == "sqlite":
            path = unquote(parsed.path)
            if not Path(path).exists():
                raise ExtractError(source.id, f"SQLite database {path} does not exist (simulate the departments first)")
            con.execute(f"ATTACH {literal(path)} AS src (TYPE sqlite, READ_ONLY)")
            rel = f"src.{table}"
        elif parsed.scheme in ("postgres", "postgresql"):
            con.execute(f"ATTACH {literal(uri)} AS src (TYPE postgres, READ_ONLY)")
            rel = f"src.public.{table}"
        else:
            raise SourceConfigError(f"SQL source URI must be sqlite:// or postgresql://, got {parsed.scheme}://",
                                    source_id=source.id)
        sql = f"SELECT {select_list(source.dataset)} FROM {rel} WHERE {_where(source.cursor, lower, upper)}"
        return con.execute(sql).fetch_arrow_table()
    except ExtractError:
        raise
    except Exception as exc:  # duckdb raises many types; all mean the source could not be read
        raise ExtractError(source.id, f"{type(exc).__name__}: {exc}") from exc
    finally:
        con.close()


def _extract_rest(source: Source, base_url: str, lower: str | None, upper: str) -> pa.Table:
    import httpx

    endpoint = source.options.get("endpoint")
    if not endpoint:
        raise SourceConfigError("rest source needs an `endpoint`", source_id=source.id)
    page_size = int(source.options.get("page_size", "5000"))
    params: dict[str, str | int] = {"updated_before": upper.replace(" ", "T"), "page_size": page_size}
    if lower is not None:
        params["updated_since"] = lower.replace(" ", "T")
    cols = RAW_COLUMNS[source.dataset]
    numeric = NUMERIC.get(source.dataset, frozenset())
    data: dict[str, list] = {c: [] for c in cols}
    page: int | None = 1
    try:
        with httpx.Client(base_url=base_url, timeout=60.0) as client:
            while page is not None:
                resp = client.get(endpoint, params={**params, "page": page})
                resp.raise_for_status()
                body = resp.json()
                for item in body["items"]:
                    for c in cols:
                        v = item.get(c)
                        if c in numeric:
                            data[c].append(_to_float(v))
                        else:
                            data[c].append(None if v is None else str(v))
                page = body.get("next_page")
    except httpx.HTTPError as exc:
        raise ExtractError(source.id, f"REST API {base_url}{endpoint}: {exc}") from exc
    except (KeyError, ValueError) as exc:
        raise ExtractError(source.id, f"REST API {base_url}{endpoint} answered an unexpected body: {exc}") from exc
    return pa.table({c: pa.array(data[c], type=pa.float64() if c in numeric else pa.string()) for c in cols})


def _to_float(v: object) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


_DROP_DATE = re.compile(r"_(\d{8})\.")


def drop_files(source: Source, folder: Path, interval: Interval, lower: str | None) -> list[Path]:
    """Drops whose date lies in ``[lower date, end)``; all drops before ``end`` on a first run."""
    if not folder.is_dir():
        if source.options.get("allow_missing") == "True":  # an inbox nobody has written to yet
            return []
        raise ExtractError(source.id, f"drop folder {folder} does not exist (simulate the departments first)")
    lo = dt.datetime.strptime(lower, "%Y-%m-%d %H:%M:%S").date() if lower else dt.date.min
    hi = interval.end
    out = []
    for path in sorted(folder.glob(source.options.get("pattern", "*"))):
        m = _DROP_DATE.search(path.name)
        if not m:
            continue
        day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
        if lo <= day and dt.datetime.combine(day, dt.time()) < hi:
            out.append(path)
    return out


def _extract_files(source: Source, uri: str, interval: Interval, lower: str | None, upper: str) -> pa.Table:
    folder = Path(uri)
    files = drop_files(source, folder, interval, lower)
    fmt = source.options.get("format", "csv")
    cols = RAW_COLUMNS[source.dataset]
    parts: list[pa.Table] = []
    for path in files:
        if fmt == "csv":
            parts.append(_read_csv(source, path))
        elif fmt == "xlsx":
            parts.append(_read_xlsx(source, path))
        elif fmt == "jsonl":
            parts.append(_read_jsonl(source, path))
        else:
            raise SourceConfigError(f"unknown file format {fmt!r}", source_id=source.id)
    if not parts:
        return pa.table({c: pa.array([], type=pa.float64() if c in NUMERIC.get(source.dataset, ()) else pa.string())
                         for c in cols})
    con = connect()
    try:
        con.register("drops", pa.concat_tables(parts, promote_options="permissive"))
        return con.execute(
            f"SELECT {select_list(source.dataset)} FROM drops WHERE {_where(source.cursor, lower, upper)}"
        ).fetch_arrow_table()
    finally:
        con.close()


def _read_csv(source: Source, path: Path) -> pa.Table:
    """Read a drop in its declared encoding; undecodable bytes become U+FFFD so quality can quarantine the row."""
    import pyarrow.csv as pacsv

    encoding = source.options.get("encoding", "utf-8")
    text = path.read_bytes().decode(encoding, errors="replace")
    header = text.split("\n", 1)[0].strip().lstrip("\ufeff").split(",")
    missing = [c for c in RAW_COLUMNS[source.dataset] if c not in header]
    if missing:
        raise ExtractError(source.id, f"{path.name}: header lacks columns {missing} (found {header})")
    return pacsv.read_csv(
        io.BytesIO(text.encode("utf-8")),
        read_options=pacsv.ReadOptions(use_threads=True),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                             strings_can_be_null=False),
    )


def _read_jsonl(source: Source, path: Path) -> pa.Table:
    """JSON lines, one record an object; every raw column as text (missing keys are empty)."""
    import json

    cols = RAW_COLUMNS[source.dataset]
    data: dict[str, list] = {c: [] for c in cols}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise ExtractError(source.id, f"{path.name} line {n}: not JSON ({exc})") from exc
        if not isinstance(rec, dict):
            raise ExtractError(source.id, f"{path.name} line {n}: not a JSON object")
        for c in cols:
            v = rec.get(c)
            data[c].append("" if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    return pa.table({c: pa.array(data[c], pa.string()) for c in cols})


def _read_xlsx(source: Source, path: Path) -> pa.Table:
    con = connect(extensions=("excel",))
    try:
        t = con.execute("SELECT * FROM read_xlsx(?, all_varchar = true)", [str(path)]).fetch_arrow_table()
    except Exception as exc:  # a corrupt workbook: say which file
        raise ExtractError(source.id, f"{path.name}: cannot read workbook: {exc}") from exc
    finally:
        con.close()
    missing = [c for c in RAW_COLUMNS[source.dataset] if c not in t.column_names]
    if missing:
        raise ExtractError(source.id, f"{path.name}: header lacks columns {missing} (found {t.column_names})")
    return t


def _with_meta(table: pa.Table, source: Source, interval: Interval) -> pa.Table:
    key = table.column(BUSINESS_KEY[source.dataset]).cast(pa.string())
    n = table.num_rows
    return (table.append_column("_record_key", key)
            .append_column("_source_id", pa.array([source.id] * n, pa.string()))
            .append_column("_interval", pa.array([interval.key] * n, pa.string())))
