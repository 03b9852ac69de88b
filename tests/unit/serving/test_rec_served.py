"""Served answers leave the API in batches: one Kafka message per batch, every answer counted.

The producer is replaced by a recorder (what is handed to librdkafka is the
unit's output); the integration tests send batches through a real broker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from serving.rec_served import BATCH_RECORDS, ServedPublisher


class RecordingProducer:
    """Takes `capacity` messages, then raises BufferError as librdkafka's full queue does."""

    def __init__(self, capacity: int = 1_000) -> None:
        self.capacity = capacity
        self.messages: list[bytes] = []

    def produce(self, topic: str, value: bytes, **_: Any) -> None:
        if len(self.messages) >= self.capacity:
            raise BufferError("queue full")
        self.messages.append(value)

    def poll(self, _: float) -> int:
        return 0

    def flush(self, _: float) -> int:
        return 0


def publisher_recording(linger_s: float = 0.02, capacity: int = 1_000) -> tuple[ServedPublisher, RecordingProducer]:
    publisher = ServedPublisher("127.0.0.1:1", "omni.rec_served", linger_s=linger_s)
    producer = publisher._log._producer = RecordingProducer(capacity)  # type: ignore[assignment]
    return publisher, producer


def answer(n: int) -> bytes:
    return orjson.dumps({"request_id": f"r{n}", "variant": "blend", "actor": f"u:U-{n}", "ts": 1.0, "items": []})


def test_answers_within_the_linger_time_leave_as_one_message() -> None:
    publisher, producer = publisher_recording(linger_s=0.02)

    async def serve() -> tuple[int, int]:
        for n in range(5):
            publisher.publish(answer(n), "blend")
        before = len(producer.messages)
        await asyncio.sleep(0.1)
        return before, len(producer.messages)

    before, after = asyncio.run(serve())

    assert (before, after) == (0, 1)
    assert [doc["request_id"] for doc in orjson.loads(producer.messages[0])] == [f"r{n}" for n in range(5)]
    assert publisher.counts["queued"] == 5
    assert publisher.served_by_variant == {"blend": 5}


def test_a_full_batch_is_sent_without_waiting_for_the_linger_time() -> None:
    publisher, producer = publisher_recording(linger_s=60.0)

    async def serve() -> None:
        for n in range(BATCH_RECORDS + 1):
            publisher.publish(answer(n), "blend")

    asyncio.run(serve())

    assert len(producer.messages) == 1  # the first BATCH_RECORDS; the last answer waits for its batch
    assert len(orjson.loads(producer.messages[0])) == BATCH_RECORDS
    publisher.flush(0.0)
    assert len(producer.messages) == 2


def test_a_batch_the_buffer_cannot_take_is_dropped_and_counted_per_answer() -> None:
    publisher, producer = publisher_recording(capacity=1)

    for n in range(3):
        publisher.publish(answer(n), "blend")  # no event loop: each answer is sent as it comes

    assert publisher.counts["queued"] == 3
    assert publisher.counts["dropped"] == 2
    assert len(producer.messages) == 1
