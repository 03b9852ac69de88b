"""JSON Schema of every input event, per topic, generated from the models of the event registry."""

from __future__ import annotations

from typing import Any

import msgspec

from events.registry import INPUT_TOPICS, REGISTRY
from events.topics import Topic


def json_schema(topic: Topic | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one topic's events, or of all input topics keyed by topic."""
    if topic is not None:
        schema = msgspec.json.schema(REGISTRY.union(topic))
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"{topic.value} events (Omnistream contract v1)"
        return schema
    return {t.value: json_schema(t) for t in INPUT_TOPICS}
