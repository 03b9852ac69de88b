"""Kafka message keys per CONTRACT.md, derived from a raw payload.

The key decides the partition, and so which worker sees an entity's events in
order: catalog and inventory by `sku`, clickstream by `user_id` (else
`session_id`), POS by `store_id`, labels by `txn_id` (else `order_id`). The
fields come from the event registry (`events.registry`), per topic and, where the
contract keys a type differently, per type.
"""

from __future__ import annotations

import orjson

from events.registry import KEY_FIELDS, key_fields
from events.topics import Topic

__all__ = ["KEY_FIELDS", "key_for"]


def key_for(topic: Topic, value: bytes) -> bytes | None:
    """The contract's key of `value` on `topic`, or None when the payload does not say.

    A payload that is not a JSON object, or lacks the key fields, gets no key: it
    is headed for the DLQ anyway and any partition will do.

    >>> key_for(Topic.CLICKSTREAM, b'{"user_id": null, "session_id": "S-1"}')
    b'S-1'
    >>> key_for(Topic.POS, b'not json') is None
    True
    """
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    for field in key_fields(topic, event.get("type")):
        candidate = event.get(field)
        if isinstance(candidate, str) and candidate:
            return candidate.encode()
    return None
