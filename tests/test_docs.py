"""Documentation is tested: README starts with the two commands, every CLI command has help, every route a summary."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from exchange.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_readme_starts_with_make_demo_and_make_test():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```(?:bash)?\n(.*?)```", text, re.S).group(1)
    commands = [ln.split("#")[0].strip() for ln in first_block.splitlines() if ln.strip()]
    assert commands == ["make demo", "make test"]


def test_makefile_targets_named_in_readme_exist():
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in set(re.findall(r"`make ([a-z-]+)`", readme)):
        assert re.search(rf"^{target}:", makefile, re.M), f"README names `make {target}` but the Makefile lacks it"


def _commands(group, prefix=()):
    import typer.main

    click_group = typer.main.get_command(group)
    stack = [(prefix, click_group)]
    while stack:
        path, cmd = stack.pop()
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append((path + (name,), sub))


def test_every_cli_command_has_help_text():
    for path, cmd in _commands(app):
        assert (cmd.help or "").strip(), f"`onewindow {' '.join(path)}` has no help text"


def test_cli_help_runs_and_lists_required_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("departments", "pipeline", "serve", "demo", "bench"):
        assert name in result.output
    for sub, names in (("departments", ("simulate",)), ("pipeline", ("run",))):
        out = CliRunner().invoke(app, [sub, "--help"]).output
        assert all(n in out for n in names)


def test_simulate_command_writes_under_the_data_dir_flag(tmp_path, monkeypatch):
    from warehouse.datadir import ENV_VAR

    monkeypatch.delenv(ENV_VAR, raising=False)  # the --data-dir flag sets it; restored after the test
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "d"), "departments", "simulate",
                                      "--persons", "200", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "departments" / "manifest.json").exists()
    assert (tmp_path / "d" / "departments" / "gongan" / "population.sqlite").exists()


def test_every_route_has_a_summary(tmp_path):
    from exchange.api.main import create_app
    from warehouse.datadir import Layout

    spec = create_app(Layout(tmp_path)).openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method.upper()} {path} lacks a summary"
