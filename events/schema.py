"""JSON Schema of every input event, per topic, generated from the models."""

from __future__ import annotations

from typing import Any

import msgspec

from events.decode import EVENT_TYPES
from events.topics import Topic


def json_schema(topic: Topic | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one topic's events, or of all topics keyed by topic."""
    if topic is not None:
        schema = msgspec.json.schema(EVENT_TYPES[topic])
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"{topic.value} events (Omnistream contract v1)"
        return schema
    return {t.value: json_schema(t) for t in EVENT_TYPES}
