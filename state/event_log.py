"""Publishes input events from the API to their Kafka topic, and waits until the broker has them.

The API asks the flows for things by publishing events (a `reservation`):
the inventory flow stays the single writer of stock and decides in event
order. Unlike the served-recommendations log (`state.rec_served_log`), the
caller waits for the broker's acknowledgement: an answer of 202 promises the
event is in the log. A background thread serves the client's delivery
callbacks, so a request waits on an asyncio future, never on the loop.
"""

from __future__ import annotations

import asyncio
import threading

from confluent_kafka import KafkaError, KafkaException, Producer


class PublishFailed(Exception):
    """The broker did not take the event (down, or not within the timeout)."""


class EventLog:
    """Idempotent producer of events to Kafka, awaitable per event.

    Parameters
    ----------
    brokers
        Kafka bootstrap servers.
    timeout_s
        How long a publish may wait for the broker before it fails.
    """

    def __init__(self, brokers: str, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self._producer = Producer({
            "bootstrap.servers": brokers,
            "enable.idempotence": True,
            "linger.ms": 1,
            "message.timeout.ms": int(timeout_s * 1000),
            "socket.connection.setup.timeout.ms": 3_000,
            "log_level": 2,
        })  # fmt: skip
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="event-log-poller", daemon=True)
        self._poller.start()

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Append `value` under `key` to `topic`; returns once the broker acknowledged it, else `PublishFailed`."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[KafkaError | None] = loop.create_future()

        def delivered(error: KafkaError | None, _: object) -> None:
            loop.call_soon_threadsafe(_settle, done, error)

        try:
            self._producer.produce(topic, value, key=key, on_delivery=delivered)
        except (BufferError, KafkaException) as ex:
            raise PublishFailed(str(ex)) from None
        try:
            error = await asyncio.wait_for(done, self.timeout_s + 1.0)
        except TimeoutError:
            raise PublishFailed("the broker did not acknowledge in time") from None
        if error is not None:
            raise PublishFailed(error.str())

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    def close(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        self._poller.join(timeout_s)
        self._producer.flush(timeout_s)


def _settle(done: asyncio.Future[KafkaError | None], error: KafkaError | None) -> None:
    if not done.done():
        done.set_result(error)
