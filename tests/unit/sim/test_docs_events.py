"""docs/events.md stays true: its examples decode as the event they illustrate, and it names every field."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import msgspec
import orjson
import pytest

from events.dead_letter import DeadLetter
from events.decode import EVENT_TYPES, decode
from events.topics import Topic

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"
TOPIC_HEADING = re.compile(r"^## `omni\.(\w+)`")
TYPE_HEADING = re.compile(r"^### `(\w+)`")


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


def models(topic: Topic) -> list[type[msgspec.Struct]]:
    union = EVENT_TYPES[topic]
    return list(typing.get_args(union)) or [union]


def tag(model: type[msgspec.Struct]) -> str:
    return str(model.__struct_config__.tag)


def test_every_input_topic_and_event_type_has_one_example() -> None:
    documented = sorted((topic, heading) for topic, heading, _ in examples())
    expected = sorted((topic, tag(model)) for topic in EVENT_TYPES for model in models(topic))
    assert documented == expected


@pytest.mark.parametrize(("topic", "heading", "example"), examples(), ids=lambda v: v if isinstance(v, str) else None)
def test_example_decodes_as_the_type_it_illustrates(topic: Topic, heading: str, example: bytes) -> None:
    event = decode(topic, orjson.dumps(orjson.loads(example)), source_topic="docs", partition=0, offset=0)
    assert not isinstance(event, DeadLetter), event
    assert tag(type(event)) == heading


def test_every_model_field_is_named_in_its_topic_section() -> None:
    text = sections()
    missing = [
        (topic.value, tag(model), field.name)
        for topic in EVENT_TYPES
        for model in models(topic)
        for field in msgspec.structs.fields(model)
        if f"`{field.name}`" not in text[topic] and field.name not in ("event_id", "ts", "schema_version")
    ]
    assert missing == []
