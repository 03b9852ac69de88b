"""The served-recommendations log's writer: batches of served answers appended to `omni.rec_served` in Kafka.

Why here, in `state/`: this is the storage side of the feedback loop, the one
place the API's process writes to the broker, as `state/` readers are the one
place it reaches Redis. `serving.rec_served` decides what to record and when
(batching, linger, counts) and calls `append`; it holds no Kafka client.
Kafka, not Redis, because the records are a log the recommend flow consumes
with its other inputs, in order and from its recovery offsets; the record
format is `events.rec_served`.

Appending never fails or waits: a batch goes to librdkafka's buffer (bounded)
and `poll(0)` serves delivery callbacks without blocking. When the broker is
down the buffer fills and `append` says the batch was not taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, Producer

log = logging.getLogger(__name__)


class RecServedLog:
    """Appends messages (each a `served_batch`) to the served-recommendations topic.

    Parameters
    ----------
    brokers
        Kafka bootstrap servers.
    topic
        The full name of the `rec_served` topic.
    max_messages
        Messages buffered for the broker before `append` refuses more.
    """

    def __init__(self, brokers: str, topic: str, max_messages: int, security: dict[str, str] | None = None) -> None:
        self.topic = topic
        self._producer = Producer(
            {
                "bootstrap.servers": brokers,
                **(security or {}),  # authentication and TLS (`KafkaSettings.security_config`)
                "linger.ms": 5,
                "queue.buffering.max.messages": max(1, max_messages),
                # Answers repeat their field names and SKUs: lz4 shrinks a batch about fivefold, at a few
                # percent of one core at thousands of answers a second, and the broker stores that much less.
                "compression.type": "lz4",
                # An answer's feedback value fades within the feedback window; don't hold it for longer.
                "message.timeout.ms": 30_000,
                "socket.connection.setup.timeout.ms": 3_000,
                "log_level": 2,  # an outage shows in the callers' drop and failure counts, not a log line per retry
            }
        )

    def append(self, message: bytes, delivered: Callable[[bool], None]) -> bool:
        """Hand `message` to the client; False when it was not taken (buffer full, client broken). Never raises.

        `delivered(ok)` is called later, from `append` or `flush`, once the broker stored it or gave up.
        """
        taken = True
        try:
            self._producer.produce(self.topic, message, on_delivery=lambda error, _: delivered(_ok(error)))
        except BufferError:
            taken = False  # the broker is behind or away
        except Exception:  # a broken client must not turn into failed requests
            taken = False
            log.exception("rec_served: produce failed")
        self._producer.poll(0)
        return taken

    def flush(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for buffered messages; returns how many are undelivered."""
        remaining: int = self._producer.flush(timeout_s)
        return remaining


def _ok(error: KafkaError | None) -> bool:
    return error is None
