"""The columnar snapshot index: rows read lazily from Arrow give what the tables hold."""

from __future__ import annotations

import mmap
import os

import duckdb
import pytest

from exchange.api.core.snapshot import SnapshotIndex

SCHEMA = """
CREATE TABLE subjects (subject_code VARCHAR, code_type VARCHAR, name VARCHAR, kind VARCHAR, sex VARCHAR,
    birth_date DATE, address VARCHAR, division_code VARCHAR, legal_rep_code VARCHAR, source_id VARCHAR,
    updated_at TIMESTAMP);
CREATE TABLE certificates (cert_key VARCHAR, licence_type_code VARCHAR, licence_type_name VARCHAR,
    cert_number VARCHAR, holder_code VARCHAR, holder_code_type VARCHAR, holder_name VARCHAR,
    issuer_name VARCHAR, issuer_code VARCHAR, issue_date DATE, valid_from DATE, valid_until DATE,
    status VARCHAR, extension JSON, flags VARCHAR[], source_id VARCHAR, row_hash VARCHAR, version INTEGER,
    changed_interval VARCHAR);
CREATE TABLE licences (licence_id VARCHAR, base_id VARCHAR, cert_key VARCHAR, version INTEGER, token VARCHAR,
    issued_at TIMESTAMP, supersedes VARCHAR, issuer_code VARCHAR, licence_type_code VARCHAR,
    holder_code VARCHAR);
INSERT INTO subjects VALUES
    ('P1', '111', '张三', 'person', '男', DATE '1980-01-02', '杭州市"西湖"区', '330106', NULL, 'gongan',
     TIMESTAMP '2026-11-01 08:09:10.75'),
    ('P3', '111', '王五', 'person', '女', NULL, NULL, NULL, NULL, 'gongan', NULL);
INSERT INTO certificates VALUES
    ('T2:B:P1', 'T2', '结婚证', 'B', 'P1', '111', '张三', '民政局', 'I2', DATE '2001-02-03', DATE '2001-02-03',
     NULL, '04', '{"spouse": "李四"}', [], 'minzheng', 'h2', 1, 'i1'),
    ('T1:A:P1', 'T1', '居民身份证', 'A', 'P1', '111', '张三', '公安局', 'I1', DATE '2020-05-06',
     DATE '2020-05-06', DATE '2040-05-06', '01', NULL, ['check_char'], 'gongan', 'h1', 2, 'i1'),
    ('T1:C:P2', 'T1', '居民身份证', 'C', 'P2', '111', '李四', '公安局', 'I1', NULL, NULL, NULL, '01', NULL,
     NULL, 'gongan', 'h3', 1, 'i1');
INSERT INTO licences VALUES
    ('L-A-1', 'L-A', 'T1:A:P1', 1, 'tok.a1.sig', TIMESTAMP '2026-01-01 00:00:00', NULL, 'I1', 'T1', 'P1'),
    ('L-A-2', 'L-A', 'T1:A:P1', 2, 'tok.a2.sig', TIMESTAMP '2026-02-01 12:30:45.5', 'L-A-1', 'I1', 'T1', 'P1'),
    ('L-B-1', 'L-B', 'T2:B:P1', 1, 'tok.b1.sig', TIMESTAMP '2026-01-01 00:00:00', NULL, 'I2', 'T2', 'P1'),
    ('L-X-1', 'L-X', 'T9:X:P9', 1, 'tok.x1.sig', TIMESTAMP '2026-01-01 00:00:00', NULL, 'I9', 'T9', 'P9'),
    ('L-X-3', 'L-X', 'T9:X:P9', 3, 'tok.x3.sig', NULL, 'L-X-1', 'I9', 'T9', 'P9');
"""


def _snapshot(tmp_path):
    """The SCHEMA snapshot opened read-only, and an empty spill folder beside it."""
    path = tmp_path / "snap.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(SCHEMA)
    spill = tmp_path / "spill"
    spill.mkdir()
    return duckdb.connect(str(path), read_only=True), spill


@pytest.fixture(params=["in_memory", "mapped", "in_memory-compressed", "mapped-compressed", "mapped-colliding"])
def index(request, tmp_path, monkeypatch):
    from exchange.api.core import snapshot

    if request.param.endswith("-colliding"):  # every key shares one fingerprint: found by its stored key
        monkeypatch.setattr(snapshot, "fingerprint_sql", lambda column: "0::UBIGINT")
        monkeypatch.setattr(snapshot, "fingerprint", lambda raw: 0)
    conn, spill = _snapshot(tmp_path)
    where, _, rows = request.param.removesuffix("-colliding").partition("-")
    idx = SnapshotIndex.load(conn, spill_dir=spill if where == "mapped" else None, rows=rows or "auto")
    conn.close()  # the index does not need the connection after loading
    assert os.listdir(spill) == []  # the mapped files are unlinked at once
    assert set(idx.row_modes.values()) == {rows or "plain"}
    if request.param.endswith("-colliding"):
        assert len(idx._licence_index.candidates("L-A-1")) == 5 and len(idx._holder_index.candidates("P1")) == 2
    return idx


def test_counts_and_subjects(index):
    assert index.counts() == {"subjects": 2, "certificates": 3, "licences": 5}
    assert index.subject("P1") == {
        "subject_code": "P1", "code_type": "111", "name": "张三", "kind": "person", "sex": "男",
        "birth_date": "1980-01-02", "address": '杭州市"西湖"区', "division_code": "330106",
        "legal_rep_code": None, "source_id": "gongan", "updated_at": "2026-11-01 08:09:10"}
    assert index.subject("P3")["birth_date"] is None
    assert index.subject("P2") is None and index.subject("nobody") is None


def test_certificates_of_holder_in_order_with_newest_licence(index):
    certs = index.certificates_of("P1")
    assert [c["cert_key"] for c in certs] == ["T1:A:P1", "T2:B:P1"]  # ordered by licence type
    first = certs[0]
    assert first["licence_id"] == "L-A-2" and first["licence_version"] == 2
    assert first["flags"] == ["check_char"] and first["extension"] is None
    assert first["issue_date"] == "2020-05-06" and first["valid_until"] == "2040-05-06"
    assert first["version"] == 2 and first["row_hash"] == "h1" and first["changed_interval"] == "i1"
    assert certs[1]["extension"] == '{"spouse": "李四"}'  # JSON text, as the table holds it
    assert certs[1]["licence_id"] == "L-B-1" and certs[1]["flags"] == []
    only = index.certificates_of("P2")
    assert len(only) == 1 and only[0]["licence_id"] is None and only[0]["licence_version"] is None
    assert only[0]["flags"] is None
    assert index.certificates_of("P3") == [] and index.certificates_of("") == []
    assert index.example_holder() in {"P1", "P2"}


def test_certificate_by_key(index):
    cert = index.certificate("T2:B:P1")
    assert cert["status"] == "04" and "licence_id" not in cert
    assert index.certificate("T0:none") is None


def test_licences_newest_and_status(index):
    row = index.licence("L-A-1")
    assert row == {"licence_id": "L-A-1", "base_id": "L-A", "cert_key": "T1:A:P1", "version": 1,
                   "token": "tok.a1.sig", "issued_at": "2026-01-01 00:00:00", "supersedes": None,
                   "issuer_code": "I1", "licence_type_code": "T1", "holder_code": "P1"}
    assert index.licence("L-A-2")["issued_at"] == "2026-02-01 12:30:45"
    assert index.newest_licence_id("T1:A:P1") == "L-A-2"
    assert index.licence_status("L-A-1") == "01" and index.licence_status("L-B-1") == "04"
    # a licence whose certificate is gone: still served, its newest version still known
    assert index.licence("L-X-1")["token"] == "tok.x1.sig"
    assert index.newest_licence_id("T9:X:P9") == "L-X-3"
    assert index.licence_status("L-X-1") is None
    assert index.licence("L-none") is None and index.licence_status("L-none") is None
    assert index.newest_licence_id("T0:none") is None


def test_licence_read_agrees_with_licence_newest_and_status(index):
    for licence_id, cert_key in (("L-A-1", "T1:A:P1"), ("L-A-2", "T1:A:P1"), ("L-B-1", "T2:B:P1"),
                                 ("L-X-1", "T9:X:P9"), ("L-X-3", "T9:X:P9")):
        newest = index.newest_licence_id(cert_key)
        assert index.licence_read(licence_id) == (index.licence(licence_id), newest != licence_id,
                                                  index.licence_status(licence_id))
    assert index.licence_read("L-A-1")[1:] == (True, "01")
    assert index.licence_read("L-X-3")[1:] == (False, None)
    assert index.licence_read("L-none") is None


@pytest.mark.parametrize("kind", ["string", "large_string"])
def test_text_column_reads_every_value_across_chunks_slices_and_nulls(kind):
    import pyarrow as pa

    from exchange.api.core.snapshot import _Text

    values = ["", "a", None, "中文 \"引号\"", "x" * 5000, "😀", None, "last"]
    typ = pa.string() if kind == "string" else pa.large_string()
    whole = pa.array(values, type=typ)
    column = pa.chunked_array([whole.slice(0, 3), pa.array([], type=typ), whole.slice(3, 1), whole.slice(4)])
    text = _Text(column)
    assert [text.text(i) for i in range(len(values))] == values
    assert text.view(4).tobytes() == b"x" * 5000 and text.view(2) is None
    assert text.view(3) == "中文 \"引号\"".encode()  # a view compares as bytes (unsigned), not as signed chars
    with pytest.raises(TypeError):
        _Text(pa.chunked_array([pa.array([1, 2])]))


@pytest.mark.parametrize("kind", ["string", "large_string"])
@pytest.mark.parametrize("chunk_sizes", [[40], [3, 0, 1, 16, 5, 15], [16, 16, 8], [1] * 40])
def test_blocks_read_every_value_whatever_the_chunking(kind, chunk_sizes):
    import io

    import pyarrow as pa

    from exchange.api.core.snapshot import _BLOCK_ROWS, _Blocks

    values = (["", "a", None, "中文 \"引号\"", "x" * 5000, "😀", None, "last"] * 5)[:sum(chunk_sizes)]
    typ = pa.string() if kind == "string" else pa.large_string()
    whole = pa.array(values, type=typ)
    chunks, start = [], 0
    for size in chunk_sizes:  # slices: each chunk has a non-zero offset into shared buffers
        chunks.append(whole.slice(start, size))
        start += size
    sink = io.BytesIO()
    ends = _Blocks.write(iter(chunks), sink)
    assert len(ends[0]) == -(-len(values) // _BLOCK_ROWS)  # one block per _BLOCK_ROWS values
    blocks = _Blocks(sink.getvalue(), *ends)
    assert [blocks.text(i) for i in range(len(values))] == values
    assert blocks.view(4).tobytes() == b"x" * 5000 and blocks.view(2) is None
    assert len(sink.getvalue()) < len("".join(v or "" for v in values).encode())  # compressed


def test_blocks_of_no_values_and_non_strings():
    import io

    import pyarrow as pa

    from exchange.api.core.snapshot import _Blocks

    sink = io.BytesIO()
    ends = _Blocks.write(iter([pa.array([], type=pa.string())]), sink)
    assert _Blocks(sink.getvalue(), *ends).num_values == 0
    with pytest.raises(TypeError):
        _Blocks.write(iter([pa.array([1, 2])]), io.BytesIO())


def test_auto_keeps_rows_compressed_when_plain_text_would_not_fit(tmp_path, monkeypatch, caplog):
    import shutil
    from collections import namedtuple

    from exchange.api.core import snapshot

    conn, spill = _snapshot(tmp_path)
    real = shutil.disk_usage
    usage = namedtuple("usage", "total used free")
    # half of 1,200 bytes free: the certificates' 3 rows (~400 bytes each) do not fit as plain text,
    # the subjects' 2 do
    monkeypatch.setattr(snapshot.shutil, "disk_usage", lambda d: usage(10**9, 0, 1_200))
    idx = SnapshotIndex.load(conn, spill_dir=spill, rows="auto")
    assert idx.row_modes["certificates"] == "compressed" and idx.row_modes["subjects"] == "plain"
    assert "kept compressed" in caplog.text
    assert idx.certificate("T2:B:P1")["status"] == "04" and idx.licence("L-A-1")["token"] == "tok.a1.sig"
    monkeypatch.setattr(snapshot.shutil, "disk_usage", real)
    assert set(SnapshotIndex.load(conn, spill_dir=spill, rows="auto").row_modes.values()) == {"plain"}


def test_unknown_rows_mode_is_a_clear_error(monkeypatch):
    from exchange.api.core.snapshot import INDEX_ROWS_ENV, index_rows_mode

    monkeypatch.setenv(INDEX_ROWS_ENV, "zip")
    with pytest.raises(ValueError, match="ONEWINDOW_INDEX_ROWS='zip': expected one of auto, plain, compressed"):
        index_rows_mode()
    monkeypatch.setenv(INDEX_ROWS_ENV, " Compressed ")
    assert index_rows_mode() == "compressed"


def test_fingerprint_in_python_is_duckdbs():
    from exchange.api.core.snapshot import fingerprint, fingerprint_sql

    keys = ["", "x", "1.2.156.3005.2.11100000000013338W001.11330100002496126K.2018.001.Y", "中文 😀", "P1"]
    with duckdb.connect() as conn:
        got = [conn.execute(f"SELECT {fingerprint_sql('?')}", [k]).fetchone()[0] for k in keys]
        assert conn.execute(f"SELECT {fingerprint_sql('NULL')}").fetchone()[0] is None
    assert got == [fingerprint(k.encode()) for k in keys]
    assert all(0 <= f < 2**64 for f in got) and len(set(got)) == len(keys)


def test_key_index_never_answers_another_key_that_shares_a_fingerprint(monkeypatch):
    import numpy as np
    import pyarrow as pa

    from exchange.api.core import snapshot
    from exchange.api.core.snapshot import _KeyIndex, _Text

    keys = ["a", "b", None, "c", "b", "中", "dd"]
    text = _Text(pa.chunked_array([pa.array(keys)]))
    for weak in (lambda raw: 0, lambda raw: len(raw) % 2):  # every key collides; keys of a parity collide
        monkeypatch.setattr(snapshot, "fingerprint", weak)
        index = _KeyIndex(np.array([0 if k is None else weak(k.encode()) for k in keys], dtype=np.uint64), text)
        assert [index.get(k) for k in ("a", "c", "中", "dd")] == [0, 3, 5, 6]
        assert index.get("b") == 4  # a repeated key: its last row, as a dict of the column would say
        assert index.get("d") is None and index.get("") is None and index.get("\ud800") is None
    monkeypatch.setattr(snapshot, "fingerprint", lambda raw: 7)
    rows = np.array([3, 0])  # entries pointing at rows: entry 0 is row 3 ("c"), entry 1 row 0 ("a")
    index = _KeyIndex(np.array([7, 7], dtype=np.uint64), text, rows=rows)
    assert (index.get("c"), index.get("a"), index.get("b")) == (0, 1, None)
    assert index.first_key() == "c" and len(index) == 2
    assert _KeyIndex(np.zeros(0, dtype=np.uint64), text).first_key() is None


def _big_snapshot(tmp_path, certificates=4_000):
    """A snapshot whose licence rows fill many pages (long tokens), and a spill folder."""
    path = tmp_path / "big.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(SCHEMA.split("INSERT", 1)[0])
        conn.execute(f"""INSERT INTO licences SELECT 'L-' || i, 'L-' || i, 'C' || i, 1, repeat('t', 2000) || i,
                         NULL, NULL, 'I1', 'T1', 'P' || i FROM range({certificates}) r(i)""")
    spill = tmp_path / "spill"
    spill.mkdir()
    return duckdb.connect(str(path), read_only=True), spill


def _index_mappings() -> list[tuple[int, int]]:
    """(size, resident) in bytes of this process's mappings of unlinked index files."""
    out, current = [], None
    with open("/proc/self/smaps", encoding="utf-8") as fh:
        for line in fh:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                current = None
                if ".index-" in line and "(deleted)" in line:
                    current = [0, 0]
                    out.append(current)
            elif current is not None and head[0] in ("Size:", "Rss:"):
                current[0 if head[0] == "Size:" else 1] = int(head[1]) * 1024
    return [tuple(m) for m in out]


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc/self/smaps")
@pytest.mark.parametrize("rows", ["plain", "compressed"])
def test_warm_load_maps_every_page_of_the_index_files_and_cold_only_those_read(tmp_path, rows):
    import gc

    conn, spill = _big_snapshot(tmp_path)
    before = set(_index_mappings())
    cold = SnapshotIndex.load(conn, spill_dir=spill, rows=rows, warm="off")
    assert cold.warm == {"mode": "off", "warmed_bytes": 0, "skipped_bytes": cold.warm["skipped_bytes"],
                         "seconds": 0.0, "populated": False} and cold.warm["skipped_bytes"] > 100_000
    mapped = [m for m in _index_mappings() if m not in before]
    big = max(size for size, _ in mapped)
    assert big > 100_000
    # cold: the largest file (the licence rows: plain in the keys file, or the blocks) is mostly not resident
    assert sum(res for size, res in mapped if size == big) < big / 2
    del cold
    gc.collect()
    warm = SnapshotIndex.load(conn, spill_dir=spill, rows=rows, warm="on")
    assert warm.warm["mode"] == "on" and warm.warm["skipped_bytes"] == 0 and warm.warm["populated"]
    mapped = [m for m in _index_mappings() if m not in before]
    mapped_bytes = sum(size for size, _ in mapped)  # whole pages
    assert 0 <= mapped_bytes - warm.warm["warmed_bytes"] < len(mapped) * mmap.PAGESIZE
    assert all(res == size for size, res in mapped), mapped  # every page of every file resident
    assert warm.licence("L-3999")["token"] == "t" * 2000 + "3999"


def test_auto_warm_reads_in_only_what_fits_half_the_available_memory(tmp_path, monkeypatch, caplog):
    from exchange.api.core import snapshot

    conn, spill = _big_snapshot(tmp_path)
    monkeypatch.setattr(snapshot, "_available_memory", lambda: 1 << 40)
    roomy = SnapshotIndex.load(conn, spill_dir=spill, rows="compressed", warm="auto")
    total = roomy.warm["warmed_bytes"]
    assert roomy.warm["skipped_bytes"] == 0 and total > 100_000
    monkeypatch.setattr(snapshot, "_available_memory", lambda: total)  # a budget of half of it
    tight = SnapshotIndex.load(conn, spill_dir=spill, rows="compressed", warm="auto")
    assert 0 < tight.warm["skipped_bytes"] and tight.warm["warmed_bytes"] <= total // 2
    assert tight.warm["warmed_bytes"] + tight.warm["skipped_bytes"] == total
    assert "not read in (auto" in caplog.text
    assert tight.licence("L-17")["token"].endswith("17")  # served either way
    monkeypatch.setattr(snapshot, "_available_memory", lambda: None)  # no /proc/meminfo: nothing read in
    assert SnapshotIndex.load(conn, spill_dir=spill, rows="compressed", warm="auto").warm["warmed_bytes"] == 0
    assert SnapshotIndex.load(conn, spill_dir=None, warm="on").warm is None  # in memory: nothing mapped


def test_warm_falls_back_to_read_ahead_without_populate(tmp_path, monkeypatch):
    from exchange.api.core import snapshot

    monkeypatch.setattr(snapshot, "_MADV_POPULATE_READ", -1)  # EINVAL, as on a kernel before 5.14
    conn, spill = _big_snapshot(tmp_path)
    idx = SnapshotIndex.load(conn, spill_dir=spill, rows="plain", warm="on")
    assert idx.warm["warmed_bytes"] > 100_000 and idx.warm["populated"] is False
    assert idx.licence("L-5")["token"].endswith("5")


def test_unknown_warm_mode_is_a_clear_error(monkeypatch):
    from exchange.api.core.snapshot import INDEX_WARM_ENV, index_warm_mode

    monkeypatch.setenv(INDEX_WARM_ENV, "hot")
    with pytest.raises(ValueError, match="ONEWINDOW_INDEX_WARM='hot': expected one of auto, on, off"):
        index_warm_mode()
    monkeypatch.setenv(INDEX_WARM_ENV, " OFF ")
    assert index_warm_mode() == "off"
