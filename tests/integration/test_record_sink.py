"""`flows.sinks.RecordSink` with a real Redis and broker: records that name their destination need no sink branch.

A record type carrying an `events.outputs.Destination` is produced to its topic keyed by its key
field, and, when mirrored, added once to the Redis stream of the topic's name; the contract's feed
records (suggestions, triggers, availability changes) go where they always went.
"""

from __future__ import annotations

import time
from typing import ClassVar

import msgspec
import orjson
import redis
from confluent_kafka import Consumer, TopicPartition

from events.availability import AvailabilityChange
from events.outputs import Destination
from events.suggestions import TransferSuggestion
from events.topics import Topic
from events.triggers import Trigger, TriggerKind
from flows.sinks import RecordSink, TopicRecord
from omnistream.settings import Settings
from state import keys
from state.stream_writer import RECORD_FIELD


class Credit(msgspec.Struct, frozen=True, kw_only=True):
    """A record type the sink has never heard of: it only says where it goes."""

    DESTINATION: ClassVar[Destination] = Destination(Topic.ATTRIBUTION, "order_id", mirrored=True)

    order_id: str
    share: float


TRIGGER = Trigger(trigger_id="cart_abandoned:C1:1", kind=TriggerKind.CART_ABANDONED, customer_id="C1",
                  due_at="2026-12-01T10:00:00.000Z", reasons=["cart left"], facts={"sku": "A"},
                  source_event_ids=["e1"], ts="2026-12-01T10:00:00.000Z")  # fmt: skip
TRANSFER = TransferSuggestion(suggestion_id="transfer:A:S1:S2", status="open", version=3, sku="A",
                              ts="2026-12-01T10:00:00.000Z", from_location="S1", to_location="S2", qty=4,
                              expected_stockout_avoided=2.5, value=10.0, cost=3.0, from_cover_days=40.0,
                              to_cover_days=1.5, reason="S2 runs out first")  # fmt: skip
FLIP = AvailabilityChange(sku="A", location_id="S2", sellable=False, available=0, version=9, ts=1764583200.0)


def _topic(settings: Settings, topic: Topic) -> list[tuple[str, bytes]]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": f"sink-{topic}",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(settings.topic(topic), p, 0) for p in range(settings.topic.partitions)])
    found: list[tuple[str, bytes]] = []
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 3.0:
        message = consumer.poll(0.2)
        if message is None or message.error():
            continue
        found.append((message.key().decode(), message.value()))
        idle_since = time.monotonic()
    consumer.close()
    return found


def _stream(client: redis.Redis, topic: Topic) -> list[bytes]:
    return [fields[RECORD_FIELD.encode()] for _, fields in client.xrange(keys.topic_stream(topic))]


def test_records_go_where_they_say_and_a_new_record_type_needs_no_sink_change(
    settings: Settings, redis_client: redis.Redis
) -> None:
    partition = RecordSink("sinktest", settings).build("out", 0, 1)
    credit = Credit(order_id="O-1", share=0.5)
    ledger = TopicRecord(Topic.LOYALTY, "C1", b'{"entry_id": "x"}')
    try:
        partition.write_batch([TRIGGER, TRANSFER, FLIP, credit, ledger])
        partition.write_batch([TRIGGER, credit])  # a replay: the streams add each id once, Kafka gets it again
    finally:
        partition.close()

    assert _topic(settings, Topic.SUGGESTIONS) == [(TRANSFER.suggestion_id, msgspec.json.encode(TRANSFER))]
    assert _topic(settings, Topic.AVAILABILITY) == [("A", msgspec.json.encode(FLIP))]
    assert _topic(settings, Topic.TRIGGERS) == [(TRIGGER.trigger_id, msgspec.json.encode(TRIGGER))] * 2
    assert _topic(settings, Topic.ATTRIBUTION) == [("O-1", b'{"order_id":"O-1","share":0.5}')] * 2
    assert _topic(settings, Topic.LOYALTY) == [("C1", ledger.body)]
    assert [orjson.loads(body)["trigger_id"] for body in _stream(redis_client, Topic.TRIGGERS)] == [TRIGGER.trigger_id]
    assert _stream(redis_client, Topic.ATTRIBUTION) == [b'{"order_id":"O-1","share":0.5}']
    assert _stream(redis_client, Topic.SUGGESTIONS) == []  # not mirrored
