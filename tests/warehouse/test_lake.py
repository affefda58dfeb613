"""The lake on S3-compatible storage (a real moto server): same partitions, library and replace semantics as on disk."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from exchange.departments import BASE_DATE, simulate
from tests.pipeline_helpers import library_hash, run_steps
from warehouse.datadir import Layout
from warehouse.exceptions import LakeConfigError
from warehouse.lake import LAKE_URL_ENV, Lake

SOURCES = ("gongan_population", "minzheng_marriages", "zrzy_property")  # SQL, GBK CSV and XLSX sources
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "very-secret"}


def _simulated(root) -> Layout:
    layout = Layout(root).ensure()
    simulate(layout, persons=400, seed=5, day=0)
    return layout


def test_lake_url_selects_local_or_s3(tmp_path):
    layout = Layout(tmp_path / "var")
    default = Lake.from_env(layout, {})
    assert default.url == str(layout.lake) and not default.remote
    assert default.raw("s", "k") == str(layout.raw_partition("s", "k") / "data.parquet")
    assert default.quarantine("s", "k") == str(layout.quarantine_partition("s", "k") / "data.parquet")
    elsewhere = Lake.from_env(layout, {LAKE_URL_ENV: str(tmp_path / "lake2")})
    assert elsewhere.url == str(tmp_path / "lake2") and not elsewhere.remote
    s3 = Lake.from_env(layout, {LAKE_URL_ENV: "s3://hub-lake/prod/", "ONEWINDOW_S3_ENDPOINT": "http://minio:9000",
                                **CREDENTIALS})
    assert s3.remote and s3.url == "s3://hub-lake/prod" and s3.bucket == "hub-lake"
    assert s3.raw("gongan_population", "20261101") == \
        "s3://hub-lake/prod/raw/source=gongan_population/interval=20261101/data.parquet"
    assert (s3.s3.host, s3.s3.use_ssl, s3.s3.region) == ("minio:9000", False, "us-east-1")
    assert "very-secret" not in repr(s3)
    aws = Lake.from_env(layout, {LAKE_URL_ENV: "s3://hub-lake", "ONEWINDOW_S3_REGION": "cn-north-1", **CREDENTIALS})
    assert aws.url == "s3://hub-lake" and aws.s3.host is None and aws.s3.use_ssl and aws.s3.region == "cn-north-1"


@pytest.mark.parametrize(("env", "variable"), [
    ({LAKE_URL_ENV: "s3://Bad_Bucket/x", **CREDENTIALS}, LAKE_URL_ENV),
    ({LAKE_URL_ENV: "gs://bucket/x"}, LAKE_URL_ENV),
    ({LAKE_URL_ENV: "s3://hub-lake", "AWS_ACCESS_KEY_ID": "k"}, "AWS_SECRET_ACCESS_KEY"),
    ({LAKE_URL_ENV: "s3://hub-lake", "AWS_SECRET_ACCESS_KEY": "s"}, "AWS_ACCESS_KEY_ID"),
    ({LAKE_URL_ENV: "s3://hub-lake", "ONEWINDOW_S3_ENDPOINT": "minio:9000", **CREDENTIALS}, "ONEWINDOW_S3_ENDPOINT"),
    ({LAKE_URL_ENV: "s3://hub-lake", "ONEWINDOW_S3_ENDPOINT": "http://minio:9000/x", **CREDENTIALS},
     "ONEWINDOW_S3_ENDPOINT"),
])
def test_bad_lake_settings_name_the_variable(tmp_path, env, variable):
    with pytest.raises(LakeConfigError) as err:
        Lake.from_env(Layout(tmp_path), env)
    assert err.value.variable == variable and variable in str(err.value)
    assert not err.value.retryable


def _objects(lake: Lake) -> list[str]:
    return [f.removeprefix(lake.url + "/") for f in lake.files()]


def _table(lake: Lake, location: str) -> pa.Table:
    with lake.local_file(location) as path:
        return pq.read_table(path)


@pytest.mark.service
@pytest.mark.slow
def test_pipeline_on_an_s3_lake_matches_the_local_lake(tmp_path, s3_lake_env, monkeypatch):
    local, remote = _simulated(tmp_path / "local"), _simulated(tmp_path / "remote")
    with monkeypatch.context() as m:
        m.delenv(LAKE_URL_ENV)
        for s in SOURCES:
            run_steps(local, s, BASE_DATE)
    runs = {s: run_steps(remote, s, BASE_DATE) for s in SOURCES}

    assert library_hash(remote) == library_hash(local)
    assert not list(remote.lake.rglob("*.parquet"))  # nothing of the lake on the worker's disk
    lake, disk = Lake.from_env(remote), Lake.from_env(local, {})
    key = runs[SOURCES[0]]["extracted"]["interval"]
    expected = sorted(
        f"{part}/source={s}/interval={key}/{name}" for s in SOURCES
        for part, name in (("raw", "data.parquet"), ("quarantine", "data.parquet"), ("checked", "passed.parquet"),
                           ("checked", "quarantine.parquet"), ("checked", "validation.json")))
    assert _objects(lake) == expected  # one object per partition file, no temporary objects left
    for s in SOURCES:
        assert runs[s]["extracted"]["raw_path"] == lake.raw(s, key)
        assert runs[s]["checked"]["passed_path"] == f"{lake.checked(s, key)}/passed.parquet"
        assert _table(lake, lake.raw(s, key)).equals(pq.read_table(disk.raw(s, key)))
        assert _table(lake, lake.quarantine(s, key)).equals(pq.read_table(disk.quarantine(s, key)))
        with lake.local_file(f"{lake.checked(s, key)}/validation.json") as v:
            assert json.loads(v.read_text(encoding="utf-8"))["raw_parquet"] == lake.raw(s, key)

    # a re-run replaces its own partitions: the same objects, the same library
    before = library_hash(remote)
    again = run_steps(remote, "gongan_population", BASE_DATE)
    assert again["loaded"]["certificates_new"] == 0 and again["loaded"]["certificates_changed"] == 0
    assert _objects(lake) == expected and library_hash(remote) == before
    assert _table(lake, lake.raw("gongan_population", key)).equals(pq.read_table(disk.raw("gongan_population", key)))


@pytest.mark.service
def test_an_interrupted_upload_leaves_the_previous_object(tmp_path, s3_lake_env, monkeypatch):
    import warehouse.lake as lake_module

    layout = Layout(tmp_path / "var").ensure()
    lake = Lake.from_env(layout)
    location = lake.raw("gongan_population", "20261101")
    old = pa.table({"id_number": ["11010519491231002X"], "name": ["张三"]})
    lake.write_table(old, location)

    def half_then_fail(src, dst, length=0):
        dst.write(src.read(64))
        raise KeyboardInterrupt("the worker was told to stop half-way through the upload")

    monkeypatch.setattr(lake_module.shutil, "copyfileobj", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        lake.write_table(pa.table({"id_number": ["340524198001010013"] * 5000, "name": ["李四"] * 5000}), location)
    monkeypatch.undo()
    assert _table(lake, location).equals(old)
    assert lake.files() == [location]  # the temporary object is gone too


@pytest.mark.service
def test_lake_commands_create_the_bucket_and_list_partitions(tmp_path, s3_server, monkeypatch):
    from exchange.cli import app

    for k, v in s3_server.lake_env("s3://lake-cli-test/hub").items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(tmp_path / "var"))
    first = CliRunner().invoke(app, ["lake", "init"])
    assert first.exit_code == 0, first.output
    assert "bucket lake-cli-test created" in first.output and "write, read and delete" in first.output
    again = CliRunner().invoke(app, ["lake", "init"])
    assert again.exit_code == 0 and "bucket lake-cli-test exists" in again.output
    lake = Lake.from_env(Layout(tmp_path / "var"))
    lake.write_table(pa.table({"a": [1]}), lake.raw("s1", "20261101"))
    listing = CliRunner().invoke(app, ["lake", "list", "raw"])
    assert listing.exit_code == 0 and listing.output.split() == [lake.raw("s1", "20261101")]
    monkeypatch.setenv(LAKE_URL_ENV, "s3://Not_A_Bucket")
    bad = CliRunner().invoke(app, ["lake", "init"])
    assert bad.exit_code == 2 and "ONEWINDOW_LAKE_URL" in bad.output


def test_the_local_lake_writes_in_place(tmp_path):
    layout = Layout(tmp_path / "var").ensure()
    lake = Lake.from_env(layout, {})
    location = lake.raw("s", "k")
    lake.write_table(pa.table({"a": [1, 2]}), location)
    lake.write_table(pa.table({"a": [3]}), location)
    assert pq.read_table(location).column("a").to_pylist() == [3]
    assert lake.files() == [location]
    with lake.local_file(location) as path:
        assert str(path) == location  # no copy on local disk
    with lake.staging(lake.checked("s", "k")) as folder:
        assert str(folder) == lake.checked("s", "k")
    lake.copy(location, lake.quarantine("s", "k"))
    assert pq.read_table(lake.quarantine("s", "k")).column("a").to_pylist() == [3]
