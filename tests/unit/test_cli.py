"""The `omnistream` command, for what needs no services: schema output and clear one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnistream.cli import app

INVENTORY_TYPES = {"receipt", "adjustment", "transfer_out", "transfer_in", "count", "fulfilment", "order_cancel"}


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
