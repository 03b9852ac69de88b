"""The `omnistream` command, for what needs no services: schema output and clear one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from omnistream.cli import app

INVENTORY_TYPES = {"receipt", "adjustment", "transfer_out", "transfer_in", "count", "fulfilment", "order_cancel",
                   "reservation"}  # fmt: skip
README = Path(__file__).resolve().parents[2] / "README.md"

# Every command and its options as the README and `--help` document them: a command or option lost
# (or added) when the CLI is reorganised shows up here.
DOCUMENTED_COMMANDS: dict[str, tuple[list[str], set[str]]] = {
    "up": ([], {"--simulate", "--rate", "--api", "--no-api"}),
    "broker": ([], {"--port"}),
    "topics create": ([], {"--partitions"}),
    "flow": (["name"], {"--processes", "--workers", "--recovery", "--no-recovery"}),
    "serve": ([], {"--host", "--port", "--workers", "--no-auth", "--ssl-certfile", "--ssl-keyfile"}),
    "simulate": ([], {"--rate", "--duration", "--events", "--seed", "--out-dir", "--api", "--api-key"}),
    "replay": (["file"], {"--topic", "--rate"}),
    "schema": ([], {"--topic", "--out"}),
    "keys create": ([], {"--role", "--name", "--rate"}),
    "keys list": ([], set()),
    "keys revoke": (["key_id"], set()),
}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # The developer's own OMNISTREAM_* variables must not change what these tests see.
    for name in [n for n in os.environ if n.startswith("OMNISTREAM_")]:
        monkeypatch.delenv(name)
    return CliRunner()


def test_schema_prints_json_with_every_inventory_event_type(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema"])

    assert result.exit_code == 0, result.output
    schemas = json.loads(result.stdout)
    assert {"catalog", "clickstream", "pos", "inventory", "labels"} <= set(schemas)
    assert set(schemas["inventory"]["discriminator"]["mapping"]) == INVENTORY_TYPES


def test_schema_of_one_topic_accepts_the_full_topic_name(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema", "--topic", "omni.inventory"])

    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["discriminator"]["mapping"]) == INVENTORY_TYPES


def test_schema_writes_the_file_given_with_out(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "inventory.schema.json"

    result = runner.invoke(app, ["schema", "--topic", "inventory", "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["$schema"].startswith("https://json-schema.org/")


def test_schema_of_an_output_topic_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema", "--topic", "alerts"])

    assert result.exit_code != 0
    assert "output topic" in result.stderr
    assert "Traceback" not in result.output


def test_bad_environment_value_stops_with_one_line_naming_the_variable(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema"], env={"OMNISTREAM_API_PORT": "abc"})

    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "OMNISTREAM_API_PORT" in lines[0]
    assert result.stdout == ""


def test_unknown_flow_name_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["flow", "no_such_flow"])

    assert result.exit_code != 0
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("omnistream: unknown flow 'no_such_flow'; known flows:")
    assert "inventory" in line


def test_replay_of_a_missing_file_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"

    result = runner.invoke(app, ["replay", str(missing), "--topic", "inventory"])

    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [f"omnistream: no such file: {missing}"]


def test_replay_to_an_unknown_topic_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "e1"}\n')

    result = runner.invoke(app, ["replay", str(events), "--topic", "nope"])

    assert result.exit_code != 0
    assert "unknown topic 'nope'" in result.stderr
    assert "Traceback" not in result.output


def _leaf_commands(group: Any, ctx: Any, path: str = "") -> dict[str, Any]:
    """Every runnable command under click group `group`, by its path (`topics create`)."""
    found = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        full = f"{path} {name}".strip()
        if hasattr(command, "list_commands"):
            found |= _leaf_commands(command, command.make_context(name, [], parent=ctx, resilient_parsing=True), full)
        else:
            found[full] = command
    return found


def test_every_command_is_registered_with_its_documented_arguments_and_options() -> None:
    cli = typer.main.get_command(app)
    commands = _leaf_commands(cli, cli.make_context("omnistream", [], resilient_parsing=True))

    assert set(commands) == set(DOCUMENTED_COMMANDS)
    for path, (arguments, options) in DOCUMENTED_COMMANDS.items():
        params = commands[path].params
        assert [p.name for p in params if p.param_type_name == "argument"] == arguments, path
        declared = {opt for p in params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)}
        assert declared - {"--help"} == options, path


def _readme_command_lines() -> list[list[str]]:
    """The command lines of the README's CLI section, optional parts (`[--rate 200]`) included."""
    section = README.read_text(encoding="utf-8").split("## The CLI", 1)[1].split("```console", 1)[1]
    block = section.split("```", 1)[0]
    lines = [line.split("#", 1)[0].replace("[", " ").replace("]", " ").split() for line in block.splitlines()]
    return [argv for argv in lines if argv]


def test_every_command_line_the_readme_shows_parses_with_the_cli() -> None:
    cli = typer.main.get_command(app)
    lines = _readme_command_lines()

    groups = ("topics", "keys")
    assert {" ".join(argv[1:3]) if argv[1] in groups else argv[1] for argv in lines} == set(DOCUMENTED_COMMANDS)
    for argv in lines:
        assert argv[0] == "omnistream"
        ctx = cli.make_context("omnistream", [], resilient_parsing=True)
        command, rest = cli, argv[1:]
        while hasattr(command, "get_command"):
            command = command.get_command(ctx, rest.pop(0))
            ctx = command.make_context("omnistream", [], parent=ctx, resilient_parsing=True)
        command.make_context("omnistream", rest, parent=ctx)  # raises a usage error if the line does not parse


def test_the_cli_runs_as_a_module_the_way_up_starts_its_simulator() -> None:
    # `omnistream up --simulate` starts `python -m omnistream.cli simulate ...` with this interpreter.
    result = subprocess.run([sys.executable, "-m", "omnistream.cli", "simulate", "--help"],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert re.search(r"--rate\b", result.stdout)
