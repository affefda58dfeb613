"""docker/: the image and the compose file of the production shape, checked without a Docker engine.

The compose file is parsed with PyYAML (as `docker compose config` would read it, merge keys
included); every build context, Dockerfile COPY source, bind mount and command it names must
exist — in the repository, or in the image (the hub image installs requirements.lock, as the
venv these tests run in does: its `onewindow`, `airflow` and `celery` commands are parsed with
their own CLI parsers); every variable it interpolates is documented.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
HUB_IMAGE = "onewindow-hub"
SERVICES = {"postgres", "redis", "minio", "lake-init", "airflow-init", "airflow-api-server", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "hub-1", "hub-2", "proxy"}
ONE_SHOT = {"lake-init", "airflow-init"}
# executables of the third-party images this file runs (their own documented entry points)
IMAGE_COMMANDS = {"postgres": {"pg_isready"}, "redis": {"sh", "redis-cli"}, "minio/minio": {"server", "mc"},
                  "nginx": {"wget"}}
_INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|FERNET|_AUTH$|_KEY$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


def _strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _interpolated(compose: dict) -> dict[str, set[str]]:
    """Variable -> the operators it is used with ('' plain, ':-' default, ':?' required)."""
    out: dict[str, set[str]] = {}
    for text in _strings(compose):
        for name, op, _ in _INTERPOLATION.findall(text):
            out.setdefault(name, set()).add(op)
    return out


def _placeheld(value: str) -> str:
    """``value`` with each interpolation replaced by ``__VAR__``, so that URLs in it parse."""
    return _INTERPOLATION.sub(lambda m: f"__{m.group(1)}__", value)


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _ours(service: dict) -> bool:
    return str(service.get("image", "")).startswith(HUB_IMAGE + ":")


def _argvs(name: str, service: dict) -> list[list[str]]:
    """Every command line a service runs: its command and its health check."""
    out = []
    if service.get("command"):
        out.append(service["command"])
    test = (service.get("healthcheck") or {}).get("test")
    if test and test[0] == "CMD":
        out.append(test[1:])
    elif test and test[0] == "CMD-SHELL":
        out.append(shlex.split(test[1].replace("$$", "$")))
    return [[str(a) for a in argv] for argv in out]


def test_compose_has_the_production_services(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
            assert service["restart"] == "unless-stopped", name
    assert services["airflow-worker"]["deploy"]["replicas"] == 2
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                 "airflow-worker"):
        env = _environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert urlparse(_placeheld(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])).hostname == "postgres"
        assert urlparse(_placeheld(env["AIRFLOW__CELERY__BROKER_URL"])).hostname == "redis"
        assert env["ONEWINDOW_LAKE_URL"].startswith("s3://") and env["ONEWINDOW_S3_ENDPOINT"] == "http://minio:9000"
        # the library on DuckLake: catalog in the onewindow_catalog database, data files in the lake's bucket
        catalog = urlparse(_placeheld(env["ONEWINDOW_LIBRARY_CATALOG_URL"]))
        assert (catalog.scheme, catalog.hostname, catalog.path, catalog.username) == (
            "postgresql", "postgres", "/onewindow_catalog", "onewindow_catalog")
        lake_bucket = urlparse(_placeheld(env["ONEWINDOW_LAKE_URL"])).netloc
        assert _placeheld(env["ONEWINDOW_LIBRARY_DATA_URL"]) == f"s3://{lake_bucket}/library"
    assert services["hub-1"]["command"] == services["hub-2"]["command"] == [
        "onewindow", "serve", "--host", "0.0.0.0", "--port", "8000"]
    upstreams = re.findall(r"^\s*server (\S+):8000", (DOCKER / "nginx" / "hub.conf").read_text(), re.M)
    assert upstreams == ["hub-1", "hub-2"]
    for name, service in services.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert cond["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
            if cond["condition"] == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy; it has no check"


def test_images_are_pinned_and_the_build_context_exists(compose):
    for name, service in compose["services"].items():
        image = str(service["image"])
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image} is not pinned to a tag"
        if _ours(service):
            build = service["build"]
            context = (DOCKER / build["context"]).resolve()
            assert context == ROOT and (context / build["dockerfile"]).is_file(), name
        else:
            assert "build" not in service, name


def _dockerfile() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.M)
            if not m.group(0).lstrip().startswith("#")]


def test_dockerfile_copies_what_exists_and_installs_the_lock_file():
    instructions = _dockerfile()
    base = [arg for op, arg in instructions if op == "FROM"]
    assert base and all(":" in b and not b.endswith(":latest") for b in base)
    workdir = next(arg for op, arg in instructions if op == "WORKDIR")
    copied = {}
    for op, arg in instructions:
        if op == "COPY":
            *sources, dest = shlex.split(arg)
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                copied[src] = dest
    assert set(copied) >= {"requirements.lock", "pyproject.toml", "dags", "exchange", "warehouse", "quality",
                           "certificates"}
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "pip install --no-cache-dir -r requirements.lock" in runs and "--no-deps -e ." in runs
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(arg for op, arg in instructions if op == "ENV")))
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{workdir}/dags"
    cmd = json.loads(next(arg for op, arg in instructions if op == "CMD"))
    assert cmd[:2] == ["onewindow", "serve"]
    _check_onewindow(cmd)


def test_bind_mounts_exist_and_named_volumes_are_declared(compose):
    required = {n for n, ops in _interpolated(compose).items() if ":?" in ops}
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = _placeheld(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), f"{name}: bind mount {source} is not in docker/"
            elif source.startswith("__"):
                assert source.strip("_") in required, f"{name}: the host path {source} must be a required variable"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared
    init = (DOCKER / "postgres" / "init-databases.sh").read_text()
    postgres_env = _environment(compose["services"]["postgres"])
    for var in re.findall(r'"\$\{?([A-Z_]+)', init):
        assert var in postgres_env, f"init-databases.sh reads {var}, which the postgres service does not get"


def test_every_command_exists_in_the_image(compose):
    airflow_argvs = []
    for name, service in compose["services"].items():
        for argv in _argvs(name, service):
            if not _ours(service):
                family = str(service["image"]).rsplit(":", 1)[0]
                assert argv[0] in IMAGE_COMMANDS[family], f"{name}: {argv[0]} is not a {family} command"
            elif argv[0] == "onewindow":
                _check_onewindow(argv)
            elif argv[0] == "airflow":
                airflow_argvs.append(argv[1:])
            elif argv[0] == "python":
                assert argv[1] == "-c"
                ast.parse(argv[2])
                port = urlparse(re.search(r"'(http://[^']+)'", argv[2]).group(1)).port
                assert str(port) in service.get("command", []), f"{name}: health check on {port}, serving elsewhere"
            elif argv[0] == "celery":
                assert (Path(sys.executable).parent / "celery").exists()
                assert argv[1:3] == ["--app", "airflow.providers.celery.executors.celery_executor.app"]
            else:
                raise AssertionError(f"{name}: unknown command {argv[0]}")
    options = sorted({tuple(k.lower().split("__")[1:3]) for s in compose["services"].values()
                      for k in _environment(s) if k.startswith("AIRFLOW__")})
    result = _airflow_probe(airflow_argvs, options)
    assert result["bad"] == [], f"airflow rejects: {result['bad']}"
    assert result["missing"] == [], f"not Airflow settings: {result['missing']}"
    assert result["celery_app"]


def _check_onewindow(argv: list[str]) -> None:
    import typer.main

    from exchange.cli import app

    cmd, args = typer.main.get_command(app), list(argv[1:])
    while getattr(cmd, "commands", None) is not None:  # a group (typer vendors its own click)
        assert args and args[0] in cmd.commands, f"`{' '.join(argv)}`: no such onewindow command"
        cmd, args = cmd.commands[args[0]], args[1:]
    cmd.make_context(" ".join(argv[:2]), args)  # raises click.UsageError on an unknown or bad option


_PROBE = r"""
import importlib, json, sys
from airflow.cli.cli_parser import get_parser
from airflow.configuration import conf
argvs, options = json.loads(sys.argv[1])
bad = []
for argv in argvs:
    try:
        get_parser().parse_args(argv)
    except SystemExit:
        bad.append(argv)
described = conf.configuration_description  # core and provider options, defaults or not
missing = [o for o in options if o[1] not in described.get(o[0], {}).get("options", {})]
app = getattr(importlib.import_module("airflow.providers.celery.executors.celery_executor"), "app", None)
print("JSON:" + json.dumps({"bad": bad, "missing": missing, "celery_app": app is not None}))
"""


def _airflow_probe(argvs: list[list[str]], options: list[tuple[str, str]]) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(AIRFLOW_HOME=home, AIRFLOW__CORE__LOAD_EXAMPLES="False")
        res = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([argvs, options])], env=env,
                             capture_output=True, text=True, timeout=300)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("JSON:")), None)
    assert line, f"airflow probe failed: {res.stderr[-3000:]}"
    return json.loads(line[len("JSON:"):])


def test_secrets_come_from_the_environment_and_every_variable_is_documented(compose):
    used = _interpolated(compose)
    docs = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    example = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    for name, ops in used.items():
        assert f"`{name}`" in docs, f"${{{name}}} is not documented in docs/production.md"
        assert name in example, f"${{{name}}} is not in docker/.env.example"
        if ":?" in ops:
            assert example[name] == "", f"docker/.env.example holds a value for the secret {name}"
            assert ":-" not in ops, f"{name} is required in one place and defaulted in another"
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if _SECRET_NAME.search(key) and not key.endswith(("_FILE", "_ID", "PUBLIC_KEY")):
                refs = {m[0] for m in _INTERPOLATION.findall(value)}
                assert refs and all(":?" in used[r] for r in refs), f"{name}: {key} must come from a required variable"
            if "://" in value and "@" in value:  # a URL's password, too, comes from a required variable
                password = urlparse(_placeheld(value)).password or ""
                ref = re.fullmatch(r"__([A-Za-z0-9_]+)__", password)
                assert ref and ":?" in used[ref.group(1)], f"{name}: {key} holds a password of its own"
    assert "docker/.env" in (ROOT / ".gitignore").read_text().split()


def test_hub_settings_in_compose_are_read_by_the_hub(compose):
    sources = "\n".join(p.read_text(encoding="utf-8") for pkg in ("exchange", "warehouse", "quality", "certificates")
                        for p in (ROOT / pkg).rglob("*.py"))
    for service in compose["services"].values():
        if not _ours(service):
            continue
        for key in _environment(service):
            if key.startswith("ONEWINDOW_"):
                assert key in sources, f"{key} is set in compose.yaml but no hub code reads it"
            if key.startswith("AIRFLOW_CONN_"):
                conn_id = key.removeprefix("AIRFLOW_CONN_").lower()
                assert f'conn_id = "{conn_id}"' in (ROOT / "exchange" / "sources" / "registry.toml").read_text()


@pytest.mark.postgres
def test_postgres_init_script_creates_one_database_per_owner(pg_server, tmp_path):
    env = {**os.environ, "POSTGRES_USER": "postgres", "PGHOST": "127.0.0.1", "PGPORT": str(pg_server.port),
           "PATH": f"{pg_server.bindir}{os.pathsep}{os.environ['PATH']}",
           "AIRFLOW_DB_PASSWORD": "a'irflow", "ONEWINDOW_STORE_DB_PASSWORD": "st\"ore",
           "ONEWINDOW_CATALOG_DB_PASSWORD": "cat;alog --"}
    res = subprocess.run(["sh", str(DOCKER / "postgres" / "init-databases.sh")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    import psycopg

    with psycopg.connect(pg_server.dsn()) as con:
        owners = dict(con.execute("""SELECT d.datname, r.rolname FROM pg_database d
                                     JOIN pg_roles r ON r.oid = d.datdba""").fetchall())
        assert {db: owners.get(db) for db in ("airflow", "onewindow_store", "onewindow_catalog")} == {
            "airflow": "airflow", "onewindow_store": "onewindow_store", "onewindow_catalog": "onewindow_catalog"}
        stored = dict(con.execute("SELECT rolname, rolpassword IS NOT NULL FROM pg_authid WHERE rolcanlogin").fetchall())
        assert stored["airflow"] and stored["onewindow_store"] and stored["onewindow_catalog"]
    missing = subprocess.run(["sh", str(DOCKER / "postgres" / "init-databases.sh")],
                             env={k: v for k, v in env.items() if k != "ONEWINDOW_CATALOG_DB_PASSWORD"},
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "ONEWINDOW_CATALOG_DB_PASSWORD" in missing.stderr
