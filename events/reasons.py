"""Dead-letter reason codes: one stable code per class of failure, for metrics and triage.

A dead letter keeps the full message in `error` (``Expected `int` >= 1 - at `$.qty` ``);
its `reason` is one of the codes below, so the `reason` label of
`omnistream_flow_dead_letters_total` has a handful of values whatever producers
send, and an alert or a dashboard can name a class of breakage.

| code | the payload |
|---|---|
| `empty` | has no bytes |
| `too_large` | is over 64 KiB |
| `card_number` | holds a raw card number (kept masked) |
| `not_utf8` | is not UTF-8 |
| `not_json` | is not JSON (cut off, binary) |
| `unknown_type` | has a `type` no topic carries |
| `wrong_topic` | has a `type` of another topic (from the event registry) |
| `missing_field` | lacks a required field (including `type`) |
| `wrong_type` | has a field, or is itself, of the wrong JSON type (`"qty": "3"`, an array) |
| `invalid_field` | breaks a value rule (quantity < 1, negative price, `ts` without offset, ...) |
| `kafka_error` | could not be read: the consumer reported an error for the record |
| `refused` | decoded, but a flow's own rule refused it (`error` says which) |

`reason_of` classifies the message, so it works for dead letters made anywhere;
tests/unit/events/test_reasons.py holds a message of every class.
"""

from __future__ import annotations

import re
from enum import StrEnum

from events.card_guard import CARD_NUMBER_REFUSED
from events.registry import REGISTRY


class Reason(StrEnum):
    """The class of failure of a dead letter (the table above)."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    CARD_NUMBER = "card_number"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_TOPIC = "wrong_topic"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_FIELD = "invalid_field"
    KAFKA_ERROR = "kafka_error"
    REFUSED = "refused"


EMPTY_PAYLOAD = "Empty payload"
KAFKA_ERROR_PREFIX = "Kafka error: "

# Message shapes, tried in order (msgspec's messages, then `events.decode`'s own).
_CLASSES: tuple[tuple[re.Pattern[str], Reason], ...] = tuple(
    (re.compile(pattern), reason)
    for pattern, reason in (
        (re.escape(EMPTY_PAYLOAD) + "$", Reason.EMPTY),
        (r"Payload of \d+ bytes exceeds", Reason.TOO_LARGE),
        (re.escape(CARD_NUMBER_REFUSED) + "$", Reason.CARD_NUMBER),
        (r"Invalid UTF-8", Reason.NOT_UTF8),
        (r"JSON is malformed|Input data was truncated", Reason.NOT_JSON),
        (r"Object missing required field|Object needs ", Reason.MISSING_FIELD),
        (r"Expected `[^`]+`(, got `[^`]+`)?$", Reason.WRONG_TYPE),
        (r"Expected |Invalid ", Reason.INVALID_FIELD),
        (re.escape(KAFKA_ERROR_PREFIX), Reason.KAFKA_ERROR),
    )
)
_TYPE_TAG = re.compile(r"Invalid value '(.*)'$")


def reason_of(error: str) -> Reason:
    """The reason code of a dead letter's `error` message.

    >>> reason_of("Expected `int` >= 1 - at `$.qty`"), reason_of("Expected `int`, got `str` - at `$.qty`")
    (<Reason.INVALID_FIELD: 'invalid_field'>, <Reason.WRONG_TYPE: 'wrong_type'>)
    >>> reason_of("Invalid value 'receipt' - at `$.type`"), reason_of("Invalid value 'teleport' - at `$.type`")
    (<Reason.WRONG_TOPIC: 'wrong_topic'>, <Reason.UNKNOWN_TYPE: 'unknown_type'>)
    """
    message, _, where = error.partition(" - at ")
    if where == "`$.type`" and (tag := _TYPE_TAG.match(message)) is not None:
        # The topic's own types decode, so a registered type here belongs on another topic.
        return Reason.WRONG_TOPIC if tag.group(1) in REGISTRY.by_name else Reason.UNKNOWN_TYPE
    for pattern, reason in _CLASSES:
        if pattern.match(message):
            return reason
    return Reason.REFUSED
