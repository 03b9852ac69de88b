"""Raw Kafka bytes in; a typed event or a `DeadLetter` with its reason out. Never raises.

Bad input is data (ARCHITECTURE.md): every way a payload can break the
contract (not JSON, over 64 KiB, unknown `type`, a missing or mistyped field,
a non-positive quantity, a negative price, a topic it does not belong on, a raw
card number anywhere: `events.card_guard`)
becomes a `DeadLetter` naming the rule and where in the payload it broke.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from events.card_guard import CARD_NUMBER_REFUSED, contains_card_number, mask_card_numbers
from events.dead_letter import DeadLetter
from events.models import (
    CatalogEvent,
    ClickEvent,
    Event,
    InventoryEvent,
    LabelEvent,
    PosEvent,
)
from events.topics import Topic

MAX_EVENT_BYTES = 64 * 1024

EVENT_TYPES: dict[Topic, Any] = {
    Topic.CATALOG: CatalogEvent,
    Topic.CLICKSTREAM: ClickEvent,
    Topic.POS: PosEvent,
    Topic.INVENTORY: InventoryEvent,
    Topic.LABELS: LabelEvent,
}
_SINGLE_TYPE_TOPICS = frozenset({Topic.CATALOG, Topic.LABELS})  # low-volume topics with one event type
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
    >>> bad = raw.replace(b'"qty":4', b'"qty":0')
    >>> decode(Topic.INVENTORY, bad, source_topic="omni.inventory", partition=0, offset=8).error
    'Expected `int` >= 1 - at `$.qty`'
    """
    if not raw:
        error = "Empty payload"
    elif len(raw) > MAX_EVENT_BYTES:
        error = f"Payload of {len(raw)} bytes exceeds the {MAX_EVENT_BYTES}-byte limit"
    elif contains_card_number(raw):  # never kept, logged or streamed: the DLQ keeps it masked
        return DeadLetter.of(source_topic, partition, offset, CARD_NUMBER_REFUSED, mask_card_numbers(raw))
    else:
        try:
            event: Event = _DECODERS[topic].decode(raw)
            # msgspec treats the tag of a lone struct as optional; the contract does not.
            if topic not in _SINGLE_TYPE_TOPICS or "type" in orjson.loads(raw):
                return event
            error = "Object missing required field `type`"
        except (msgspec.ValidationError, msgspec.DecodeError, orjson.JSONDecodeError) as ex:
            error = str(ex)
        except UnicodeDecodeError as ex:  # invalid UTF-8 inside a string the model keeps
            error = f"Invalid UTF-8: {ex.reason} at byte {ex.start}"
    return DeadLetter.of(source_topic, partition, offset, error, raw)
