"""Raw Kafka bytes in; a typed event or a `DeadLetter` with its reason out. Never raises.

Bad input is data (docs/architecture.md): every way a payload can break the
contract (not JSON, over 64 KiB, unknown `type`, a missing or mistyped field,
a non-positive quantity, a negative price, a topic it does not belong on, a raw
card number anywhere: `events.card_guard`)
becomes a `DeadLetter` naming the rule and where in the payload it broke
(`events.reasons` classifies it). Which types each topic carries comes from the
event registry (`events.registry`).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from events.card_guard import CARD_NUMBER_REFUSED, contains_card_number, mask_card_numbers
from events.dead_letter import DeadLetter
from events.models import Event
from events.reasons import EMPTY_PAYLOAD
from events.registry import INPUT_TOPICS, REGISTRY
from events.topics import Topic

MAX_EVENT_BYTES = 64 * 1024

EVENT_TYPES: dict[Topic, Any] = {topic: REGISTRY.union(topic) for topic in INPUT_TOPICS}
"""Each input topic's tagged union of models (one struct for a topic with one type)."""
# msgspec treats the tag of a lone struct as optional; the contract does not, so topics with one
# type check that `type` is there (they are low-volume: labels). Topics with more types decode a
# tagged union, where msgspec itself requires it.
_SINGLE_TYPE_TOPICS = frozenset(topic for topic in INPUT_TOPICS if len(REGISTRY.of_topic(topic)) == 1)
_DECODERS: dict[Topic, msgspec.json.Decoder[Any]] = {
    topic: msgspec.json.Decoder(union) for topic, union in EVENT_TYPES.items()
}


def decode(topic: Topic, raw: bytes | None, *, source_topic: str, partition: int, offset: int) -> Event | DeadLetter:
    """Validate `raw` against the events of `topic`.

    `source_topic`, `partition` and `offset` only label the dead letter.

    >>> raw = b'{"event_id":"e1","type":"receipt","ts":"2026-11-22T01:00:00Z",'
    >>> raw += b'"schema_version":1,"sku":"SKU-1","location_id":"S1","qty":4}'
    >>> decode(Topic.INVENTORY, raw, source_topic="omni.inventory", partition=0, offset=7).qty
    4
    >>> bad = decode(Topic.INVENTORY, raw.replace(b'"qty":4', b'"qty":0'), source_topic="omni.inventory",
    ...              partition=0, offset=8)
    >>> bad.error, bad.reason
    ('Expected `int` >= 1 - at `$.qty`', <Reason.INVALID_FIELD: 'invalid_field'>)
    """
    if not raw:
        error = EMPTY_PAYLOAD
    elif len(raw) > MAX_EVENT_BYTES:
        error = f"Payload of {len(raw)} bytes exceeds the {MAX_EVENT_BYTES}-byte limit"
    elif contains_card_number(raw):  # never kept, logged or streamed: the DLQ keeps it masked
        return DeadLetter.of(source_topic, partition, offset, CARD_NUMBER_REFUSED, mask_card_numbers(raw))
    else:
        try:
            event: Event = _DECODERS[topic].decode(raw)
            if topic not in _SINGLE_TYPE_TOPICS or "type" in orjson.loads(raw):
                return event
            error = "Object missing required field `type`"
        except (msgspec.ValidationError, msgspec.DecodeError, orjson.JSONDecodeError) as ex:
            error = str(ex)
        except UnicodeDecodeError as ex:  # invalid UTF-8 inside a string the model keeps
            error = f"Invalid UTF-8: {ex.reason} at byte {ex.start}"
    return DeadLetter.of(source_topic, partition, offset, error, raw)
