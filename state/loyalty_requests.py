"""The redemption requests' writer: `redemption` events appended to `omni.members`, confirmed before answering.

Why here, in `state/`: the API's process writes to the broker only through `state/` (as it reads
Redis only through `state/` readers). Unlike served recommendations, a redemption request must
not be lost: `publish` returns only once the broker has stored the event (acks=all, idempotent
producer), so a POST that answered has a request the flow will decide. A background thread
serves librdkafka's delivery callbacks; each resolves its request's future on the event loop.
"""

from __future__ import annotations

import asyncio
import threading

from confluent_kafka import KafkaError, Producer


class RequestLog:
    """Appends events to one topic, keyed by entity; `publish` waits for the broker's acknowledgement.

    Parameters
    ----------
    brokers
        Kafka bootstrap servers.
    topic
        The full name of the `members` topic.
    timeout_s
        How long the broker may take to acknowledge before `publish` raises `TimeoutError`.
    """

    def __init__(self, brokers: str, topic: str, timeout_s: float = 5.0) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer = Producer(
            {
                "bootstrap.servers": brokers,
                "linger.ms": 0,
                "acks": "all",
                "enable.idempotence": True,
                "message.timeout.ms": int(timeout_s * 1000),
                "socket.connection.setup.timeout.ms": 3_000,
                "log_level": 2,
            }
        )
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="loyalty-requests", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.02)

    async def publish(self, key: str, value: bytes) -> None:
        """Append `value` under `key`; returns once stored, raises `OSError`/`TimeoutError` otherwise."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[KafkaError | None] = loop.create_future()

        def resolve(error: KafkaError | None) -> None:
            if not done.done():
                done.set_result(error)

        def delivered(error: KafkaError | None, _: object) -> None:
            loop.call_soon_threadsafe(resolve, error)

        try:
            self._producer.produce(self.topic, value, key=key, on_delivery=delivered)
        except BufferError as ex:
            raise ConnectionError(f"the broker is not taking requests: {ex}") from None
        error = await asyncio.wait_for(done, self.timeout_s + 1.0)
        if error is not None:
            raise ConnectionError(f"the broker refused the request: {error.str()}")

    def close(self) -> None:
        self._stop.set()
        self._poller.join(2.0)
        self._producer.flush(2.0)
