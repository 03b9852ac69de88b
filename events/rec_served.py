"""The served-recommendations log (`omni.rec_served`): one record per answer the API served, declared once.

The API writes these records (`serving.routes.recommendations` builds them,
`state.rec_served_log` appends them) and the recommend flow reads them back
(`operators.recs.experiments.served_records`) to join each answer with the
clicks, carts and purchases that follow. One Kafka message carries a batch: a
JSON array of records (`served_batch`); a lone record is read as a batch of one.

`items` are the served SKUs in order with the feature values the ranker learns
from; `context` says what was asked (for analysis; the flow does not need it).
Unknown fields are ignored, so a newer API may add some.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec


class ServedItem(msgspec.Struct, frozen=True):
    """One SKU of an answer, with its features (each source's normalised score)."""

    sku: str
    features: dict[str, float] = msgspec.field(default_factory=dict)


class ServedContext(msgspec.Struct, frozen=True, kw_only=True):
    """What the request asked: the page's SKU, the location, the channel, how many; and each item's reason."""

    sku: str | None = None
    location_id: str | None = None
    channel: str | None = None
    k: int | None = None
    reasons: list[str] = msgspec.field(default_factory=list)


class RecServed(msgspec.Struct, frozen=True, kw_only=True):
    """One answer the API served: which request, which experiment arm, whose, when (epoch seconds), what."""

    request_id: str
    variant: str
    actor: str
    ts: float
    items: list[ServedItem]
    context: ServedContext | None = None


_ENCODER = msgspec.json.Encoder()
_RECORD = msgspec.json.Decoder(RecServed)
_MESSAGE = msgspec.json.Decoder(list[msgspec.Raw] | RecServed)
NOT_A_RECORD = "Not a served-recommendation record"
AHEAD_OF_CLOCK = "Served-recommendation record dated ahead of the wall clock by more than the allowed skew"


def encode_served(record: RecServed) -> bytes:
    """One record as JSON (an element of a batch).

    >>> encode_served(RecServed(request_id="r1", variant="blend", actor="u:U-1", ts=5.0, items=[ServedItem("A")]))
    b'{"request_id":"r1","variant":"blend","actor":"u:U-1","ts":5.0,"items":[{"sku":"A","features":{}}],"context":null}'
    """
    return _ENCODER.encode(record)


def served_batch(encoded: Sequence[bytes]) -> bytes:
    """One message carrying `encoded` records (each from `encode_served`): a JSON array.

    >>> served_batch([b'{"a":1}', b'{"b":2}'])
    b'[{"a":1},{"b":2}]'
    """
    return b"[" + b",".join(encoded) + b"]"


def decode_served(
    raw: bytes | None, latest_s: float = math.inf
) -> tuple[list[RecServed], tuple[str, bytes | None] | None]:
    """The records of one message, and (reason, bytes) of what in it is not a record (None when all are).

    Bad elements of a batch are set aside together (one dead letter per message),
    so one bad answer does not take its batch with it. A record dated after
    `latest_s` (epoch seconds: the reader's bound on event time) is set aside too.

    >>> good = b'{"request_id": "r1", "variant": "blend", "actor": "u:U-1", "ts": 5.0, "items": []}'
    >>> records, rejected = decode_served(b"[" + good + b", 7]")
    >>> [r.request_id for r in records], rejected
    (['r1'], ('1 of 2 elements of the batch are not served-recommendation records', b'[7]'))
    >>> decode_served(b"{oops")
    ([], ('Not a served-recommendation record', b'{oops'))
    >>> records, rejected = decode_served(b"[" + good + b", 7]", latest_s=4.0)
    >>> records, rejected[0]
    ([], '1 of 2 elements of the batch are not served-recommendation records; 1 is dated too far ahead')
    """
    try:
        message = _MESSAGE.decode(raw or b"")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return [], (NOT_A_RECORD, raw)
    if type(message) is RecServed:
        if message.ts > latest_s:
            return [], (AHEAD_OF_CLOCK, raw)
        return [message], None
    records: list[RecServed] = []
    bad: list[bytes] = []
    ahead = 0
    for element in message:
        try:
            record = _RECORD.decode(element)
        except (msgspec.DecodeError, msgspec.ValidationError):
            bad.append(bytes(element))
            continue
        if record.ts > latest_s:
            ahead += 1
            bad.append(bytes(element))
            continue
        records.append(record)
    if not bad:
        return records, None
    total, malformed = len(records) + len(bad), len(bad) - ahead
    if not malformed:
        reason = f"{ahead} of {total} records of the batch are dated ahead of the wall clock beyond the allowed skew"
    else:
        reason = f"{malformed} of {total} elements of the batch are not served-recommendation records"
        if ahead:
            reason += f"; {ahead} {'is' if ahead == 1 else 'are'} dated too far ahead"
    return records, (reason, served_batch(bad))
