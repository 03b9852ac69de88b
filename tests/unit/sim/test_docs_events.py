"""docs/events.md stays true to the event registry: a row and a section per type, examples that decode, every field."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import orjson
import pytest

from events.dead_letter import DeadLetter
from events.decode import decode
from events.reasons import Reason
from events.registry import INPUT_TOPICS, REGISTRY, EventType
from events.topics import Topic

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"
TOPIC_HEADING = re.compile(r"^## `omni\.(\w+)`")
TYPE_HEADING = re.compile(r"^### `(\w+)`")
TABLE_ROW = re.compile(r"^\| `(\w+)` \| `omni\.\w+` \|")
REASON_ROW = re.compile(r"^\| `(\w+)` \| ")


def sections() -> dict[Topic, str]:
    """The text of each topic's section."""
    found: dict[Topic, list[str]] = {}
    current: list[str] | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            match = TOPIC_HEADING.match(line)
            current = found.setdefault(Topic(match.group(1)), []) if match else None
        elif current is not None:
            current.append(line)
    return {topic: "\n".join(lines) for topic, lines in found.items()}


def section_titled(title: str) -> list[str]:
    """The lines under the heading `title` (any level), up to the next heading."""
    lines = DOC.read_text().splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return lines[start:end]


def examples() -> list[tuple[Topic, str, bytes]]:
    """(topic, type heading, example JSON) for each example on the page."""
    out = []
    for topic, text in sections().items():
        heading = None
        for block in re.split(r"^```", text, flags=re.MULTILINE):
            for line in block.splitlines():
                if match := TYPE_HEADING.match(line):
                    heading = match.group(1)
            if block.startswith("json\n"):
                out.append((topic, heading or "", block.removeprefix("json\n").encode()))
    return out


def table_row(entry: EventType) -> str:
    keys = ", else ".join(f"`{name}`" for name in entry.key_fields)
    return f"| `{entry.name}` | `omni.{entry.topic.value}` | {keys} | {entry.summary} |"


def test_every_input_topic_has_a_section_and_every_registered_type_a_heading_in_it() -> None:
    text = sections()
    headings = {
        topic: [m.group(1) for line in body.splitlines() if (m := TYPE_HEADING.match(line))]
        for topic, body in text.items()
    }

    assert list(text) == list(INPUT_TOPICS)
    assert headings == {topic: [entry.name for entry in REGISTRY.of_topic(topic)] for topic in INPUT_TOPICS}


def test_every_registered_type_has_one_example() -> None:
    documented = sorted((topic, heading) for topic, heading, _ in examples())
    expected = sorted((entry.topic, entry.name) for entry in REGISTRY.types)
    assert documented == expected


def test_the_table_at_a_glance_is_the_registry_row_for_row() -> None:
    rows = [line for line in section_titled("## Event types at a glance") if TABLE_ROW.match(line)]

    assert rows == [table_row(entry) for entry in REGISTRY.types]


def test_the_dead_letter_reasons_table_lists_every_reason_code() -> None:
    rows = [m.group(1) for line in section_titled("### Dead-letter reasons") if (m := REASON_ROW.match(line))]

    assert rows == [reason.value for reason in Reason]


@pytest.mark.parametrize(("topic", "heading", "example"), examples(), ids=lambda v: v if isinstance(v, str) else None)
def test_example_decodes_as_the_type_it_illustrates(topic: Topic, heading: str, example: bytes) -> None:
    event = decode(topic, orjson.dumps(orjson.loads(example)), source_topic="docs", partition=0, offset=0)
    assert not isinstance(event, DeadLetter), event
    assert REGISTRY.by_model[type(event)].name == heading


def test_every_model_field_is_named_in_its_topic_section() -> None:
    text = sections()
    missing = [
        (entry.topic.value, entry.name, field.name)
        for entry in REGISTRY.types
        for field in msgspec.structs.fields(entry.model)
        if f"`{field.name}`" not in text[entry.topic] and field.name not in ("event_id", "ts", "schema_version")
    ]
    assert missing == []
