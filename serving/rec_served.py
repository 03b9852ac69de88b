"""Publishes each recommendation answer the API served to `omni.rec_served`: the feedback loop's input.

The recommend flow joins these records with the clicks, carts and purchases
that follow, to train the ranker and count each variant's CTR and conversion.
Publishing never fails or slows a request: `produce` only queues the record
in librdkafka's buffer (bounded by `rec_served_queue_max`) and `poll(0)`
serves delivery callbacks without waiting. When the broker is down the
buffer fills and records are dropped and counted, not waited for; records
that cannot be delivered within `message.timeout.ms` are counted as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from confluent_kafka import KafkaError, Producer
from prometheus_client.core import CounterMetricFamily, Metric

log = logging.getLogger(__name__)


class ServedPublisher:
    """Non-blocking producer of served answers, with counts of what was queued, delivered, dropped, failed.

    Parameters
    ----------
    brokers
        Kafka bootstrap servers.
    topic
        The full name of the `rec_served` topic.
    queue_max
        Records buffered for the broker before new ones are dropped.
    """

    def __init__(self, brokers: str, topic: str, queue_max: int = 100_000) -> None:
        self.brokers = brokers
        self.topic = topic
        self.queue_max = queue_max
        self.counts: dict[str, int] = dict.fromkeys(("queued", "delivered", "dropped", "failed"), 0)
        self.served_by_variant: dict[str, int] = {}
        self._producer = Producer(
            {
                "bootstrap.servers": brokers,
                "linger.ms": 5,
                "queue.buffering.max.messages": queue_max,
                # An answer's feedback value fades within the feedback window; don't hold it for longer.
                "message.timeout.ms": 30_000,
                "socket.connection.setup.timeout.ms": 3_000,
                "log_level": 2,  # an outage shows in the drop and failure counts, not as a log line per retry
            }
        )

    def publish(self, key: str, value: bytes, variant: str) -> None:
        """Queue one served answer; never raises, never waits."""
        self.served_by_variant[variant] = self.served_by_variant.get(variant, 0) + 1
        try:
            self._producer.produce(self.topic, value, key=key, on_delivery=self._delivered)
            self.counts["queued"] += 1
        except BufferError:
            self.counts["dropped"] += 1  # the broker is behind or away: the answer was served anyway
        except Exception:  # a broken client must not turn into failed requests
            self.counts["dropped"] += 1
            log.exception("rec_served: produce failed")
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, _: Any) -> None:
        self.counts["failed" if error is not None else "delivered"] += 1

    def flush(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for queued records; returns how many are still undelivered."""
        remaining: int = self._producer.flush(timeout_s)
        return remaining

    def collect(self) -> Iterator[Metric]:
        """Prometheus families (registered in the API's registry)."""
        records = CounterMetricFamily(
            "omnistream_api_rec_served_records",
            "Served-answer records for the feedback topic, by outcome (queued, delivered, dropped, failed).",
            labels=["outcome"],
        )
        for outcome, count in self.counts.items():
            records.add_metric([outcome], count)
        yield records
        answers = CounterMetricFamily(
            "omnistream_api_rec_answers", "Recommendation answers served, by experiment variant.", labels=["variant"]
        )
        for variant, count in list(self.served_by_variant.items()):
            answers.add_metric([variant], count)
        yield answers
