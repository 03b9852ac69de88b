"""README's configuration tables list every setting, as the variable that sets it, with its real default.

`omnistream.settings.Settings` is the source of truth; the README is where operators look.
A field added without a row, a row left behind by a removed field, a default changed in
code but not in the table, or a row under another group's heading fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from omnistream.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Configuration"
UNSET = "(unset)"
"""How the table writes the default of a setting that is None unless given."""


def env_name(field: str, info: FieldInfo) -> str:
    """The environment variable pydantic-settings reads for the flat name `field` (its alias, else prefix + name)."""
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    if alias:
        return alias.upper()
    return (str(Settings.model_config.get("env_prefix", "")) + field).upper()


def group_of(field: str) -> str:
    """`settings.fraud` for the flat name `fraud_shards`, `settings` for a top-level one (`workers`)."""
    if field in Settings.model_fields:
        return "settings"
    return "settings." + next(group for group in Settings.model_fields if field.startswith(f"{group}_"))


def documented_default(value: object) -> str:
    """A default as the table writes it: `false`, `30.0`, `omni.`, or `(unset)` for None."""
    if value is None:
        return UNSET
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def configuration_rows(markdown: str) -> dict[str, tuple[str, str]]:
    """{variable: (default, meaning)} of the table rows in the Configuration section.

    >>> configuration_rows("## Configuration\\n| variable | default | meaning |\\n|---|---|---|\\n"
    ...                    "| `OMNISTREAM_A` | `1` | One. |\\n## API\\n| `OMNISTREAM_B` | `2` | Not here. |\\n")
    {'OMNISTREAM_A': ('1', 'One.')}
    """
    return {name: (default, meaning) for name, (_, default, meaning) in grouped_rows(markdown).items()}


def grouped_rows(markdown: str) -> dict[str, tuple[str, str, str]]:
    """{variable: (heading, default, meaning)}: the heading is the `settings...` named by the ### above the row.

    >>> grouped_rows("## Configuration\\n### `settings.kafka`: the broker\\n| `OMNISTREAM_KAFKA_X` | `1` | One. |\\n"
    ...              "### `settings`: shared\\n| `OMNISTREAM_Y` | `2` | Two. |\\n")
    {'OMNISTREAM_KAFKA_X': ('settings.kafka', '1', 'One.'), 'OMNISTREAM_Y': ('settings', '2', 'Two.')}
    """
    text = "\n" + markdown
    start = text.find(f"\n{SECTION}\n")
    if start < 0:
        return {}
    end = text.find("\n## ", start + len(SECTION) + 1)
    section = text[start : end if end >= 0 else len(text)]
    rows: dict[str, tuple[str, str, str]] = {}
    heading = ""
    for line in section.splitlines():
        named = re.match(r"### `(settings(?:\.[a-z]+)?)`", line)
        if named:
            heading = named.group(1)
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        name = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        if name:
            if name.group(1) in rows:
                raise AssertionError(f"{name.group(1)} has two rows in the configuration table")
            rows[name.group(1)] = (heading, cells[1].replace("`", ""), " | ".join(cells[2:]))
    return rows


@pytest.fixture(scope="module")
def rows() -> dict[str, tuple[str, str]]:
    found = configuration_rows(README.read_text())
    assert found, f"README.md has no configuration table under {SECTION!r}"
    return found


def test_every_setting_has_a_row(rows: dict[str, tuple[str, str]]) -> None:
    missing = [env_name(field, info) for field, info in Settings.flat_fields().items()]
    missing = [name for name in missing if name not in rows]
    assert not missing, f"README.md's configuration table lacks {missing}"


def test_every_row_is_a_setting(rows: dict[str, tuple[str, str]]) -> None:
    known = {env_name(field, info) for field, info in Settings.flat_fields().items()}
    stale = sorted(set(rows) - known)
    assert not stale, f"README.md documents variables that no setting reads: {stale}"


def test_rows_give_the_default_and_a_meaning(rows: dict[str, tuple[str, str]]) -> None:
    for field, info in Settings.flat_fields().items():
        name = env_name(field, info)
        if name not in rows:
            continue  # reported by test_every_setting_has_a_row
        default, meaning = rows[name]
        assert default == documented_default(info.default), (
            f"{name}: README says the default is {default!r}, the code {documented_default(info.default)!r}"
        )
        assert len(meaning) > 10, f"{name}: say in a line what it does"


def test_rows_stand_under_their_group_heading() -> None:
    """A reader looking for `settings.fraud.shards` finds OMNISTREAM_FRAUD_SHARDS under `settings.fraud`."""
    rows = grouped_rows(README.read_text())
    misplaced = {
        name: (rows[name][0], group_of(field))
        for field, info in Settings.flat_fields().items()
        if (name := env_name(field, info)) in rows and rows[name][0] != group_of(field)
    }
    assert not misplaced, f"README.md rows under another group's heading (heading, group): {misplaced}"


def test_a_missing_row_is_detected() -> None:
    """The parser sees only the Configuration section, so a variable elsewhere does not count."""
    text = README.read_text()
    name = env_name("log_level", Settings.flat_fields()["log_level"])
    assert name in configuration_rows(text)
    without = "\n".join(line for line in text.splitlines() if not line.startswith(f"| `{name}`"))
    assert name not in configuration_rows(without + f"\n## Elsewhere\n| `{name}` | `WARNING` | Moved. |\n")
