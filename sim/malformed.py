"""Payloads that break the contract, in the ways real producers break it.

CONTRACT.md sends every such payload to the dead-letter stream and keeps going.
The simulator mixes them into its traffic so that the DLQ path runs under load
and a test can compare the DLQ count with the exact number injected. Each
malformation derives from a valid event of the same topic, so it looks like a
producer bug rather than noise.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

from events.reasons import Reason
from events.topics import Topic

_Mutation = Callable[[Topic, dict[str, Any], bytes, random.Random], bytes | None]

# Fields that must be >= 1, and fields that must be >= 0 (a price or an amount).
_POSITIVE_FIELDS = ("qty",)
_MONEY_FIELDS = ("price", "total", "cart_value")
# A required field per topic beyond the envelope, to drop.
_REQUIRED_FIELD = {
    Topic.CATALOG: "sku",
    Topic.CLICKSTREAM: "session_id",
    Topic.POS: "txn_id",
    Topic.INVENTORY: "location_id",
}
_FOREIGN_TYPE = {
    Topic.CATALOG: "sale",
    Topic.CLICKSTREAM: "receipt",
    Topic.POS: "purchase",
    Topic.INVENTORY: "product_upsert",
    Topic.LABELS: "page_view",
    Topic.CUSTOMERS: "sale",
    Topic.MEMBERS: "sale",
    Topic.WEATHER: "sale",
}


def _dump(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def _not_json(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    # A producer cut off mid-write.
    return raw[: max(1, len(raw) // 2)]


def _binary(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    # Bytes from another system on the wrong topic: not UTF-8, with line breaks inside.
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(8)


def _empty(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    return b""


def _missing_event_id(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    del event["event_id"]
    return _dump(event)


def _missing_field(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes | None:
    if topic is Topic.LABELS:
        # A label must name what it judges.
        event.pop("txn_id", None)
        event.pop("order_id", None)
        return _dump(event)
    name = _REQUIRED_FIELD.get(topic)
    if event.get("type") == "order_cancel":
        name = "order_id"  # its sku and location are optional (a whole-order cancel names neither)
    if name is None or name not in event:
        return None
    del event[name]
    return _dump(event)


def _non_positive_qty(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes | None:
    bad = rng.choice((0, -1, -rng.randint(2, 50)))
    if event.get("type") == "adjustment":
        event["qty"] = 0  # signed, but never zero
    elif event.get("type") == "count":
        event["on_hand"] = -rng.randint(1, 20)
    elif "qty" in event:
        event["qty"] = bad
    elif event.get("items"):
        event["items"][0]["qty"] = bad
    else:
        return None
    return _dump(event)


def _negative_price(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes | None:
    if event.get("items"):
        event["items"][0]["unit_price"] = -round(rng.uniform(0.01, 50.0), 2)
        return _dump(event)
    for name in _MONEY_FIELDS:
        if name in event:
            event[name] = -round(rng.uniform(0.01, 50.0), 2)
            return _dump(event)
    return None


def _unknown_type(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    event["type"] = rng.choice(("teleport", "Sale", "", "product-upsert"))
    return _dump(event)


def _foreign_type(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    # An event type that exists, but on another topic.
    event["type"] = _FOREIGN_TYPE[topic]
    return _dump(event)


def _wrong_field_type(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    field = rng.choice(("event_id", "schema_version", "ts"))
    if field == "event_id":
        event["event_id"] = rng.randint(1, 10**9)
    elif field == "schema_version":
        event["schema_version"] = "1"
    else:
        event["ts"] = {"epoch_ms": 1795305600000}
    return _dump(event)


def _ts_without_offset(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    event["ts"] = event["ts"].rstrip("Z")
    return _dump(event)


def _oversized(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    # Unknown fields are allowed; a payload over 64 KiB is not, whatever it holds.
    event["debug_dump"] = "x" * (65 * 1024)
    return _dump(event)


def _unsupported_version(topic: Topic, event: dict[str, Any], raw: bytes, rng: random.Random) -> bytes:
    event["schema_version"] = 2
    return _dump(event)


MALFORMATIONS: dict[str, _Mutation] = {
    "not_json": _not_json,
    "binary": _binary,
    "empty": _empty,
    "missing_event_id": _missing_event_id,
    "missing_field": _missing_field,
    "non_positive_qty": _non_positive_qty,
    "negative_price": _negative_price,
    "unknown_type": _unknown_type,
    "foreign_type": _foreign_type,
    "wrong_field_type": _wrong_field_type,
    "ts_without_offset": _ts_without_offset,
    "oversized": _oversized,
    "unsupported_version": _unsupported_version,
}
"""Every kind of contract break the simulator injects, by name."""

KINDS: tuple[str, ...] = tuple(MALFORMATIONS)

REASONS: dict[str, Reason] = {
    "not_json": Reason.NOT_JSON,
    "binary": Reason.NOT_JSON,
    "empty": Reason.EMPTY,
    "missing_event_id": Reason.MISSING_FIELD,
    "missing_field": Reason.MISSING_FIELD,
    "non_positive_qty": Reason.INVALID_FIELD,
    "negative_price": Reason.INVALID_FIELD,
    "unknown_type": Reason.UNKNOWN_TYPE,
    "foreign_type": Reason.WRONG_TOPIC,
    "wrong_field_type": Reason.WRONG_TYPE,
    "ts_without_offset": Reason.INVALID_FIELD,
    "oversized": Reason.TOO_LARGE,
    "unsupported_version": Reason.INVALID_FIELD,
}
"""The dead-letter reason (`events.reasons`) each kind of break must get: a dead-letter metric by
reason can be checked against `Workload.malformed_kinds`."""


def corrupt(kind: str, topic: Topic, raw: bytes, rng: random.Random) -> bytes | None:
    """A variant of the valid event `raw` of `topic` that breaks the contract as `kind` says.

    None when `kind` does not apply to this event (no quantity to zero, no price
    to negate); the caller then tries it on a later event.

    >>> raw = b'{"event_id":"e1","type":"receipt","ts":"2026-11-22T01:00:00.000Z",'
    >>> raw += b'"schema_version":1,"sku":"SKU-1","location_id":"WH-01","qty":4}'
    >>> bad = corrupt("ts_without_offset", Topic.INVENTORY, raw, random.Random(3))
    >>> b'"ts":"2026-11-22T01:00:00.000",' in bad  # no offset: the contract needs one
    True
    >>> corrupt("negative_price", Topic.INVENTORY, raw, random.Random(3)) is None
    True
    """
    if kind in ("not_json", "binary", "empty"):
        return MALFORMATIONS[kind](topic, {}, raw, rng)
    return MALFORMATIONS[kind](topic, orjson.loads(raw), raw, rng)
