"""Records each recommendation answer the API served to `omni.rec_served`: the feedback loop's input.

The recommend flow joins these records with the clicks, carts and purchases
that follow, to train the ranker and count each variant's CTR and conversion.
Publishing never fails or slows a request: a record only joins the current
batch, and a batch goes to librdkafka's buffer (`produce`, bounded by
`rec_served_queue_max` records) when it is full or `linger_s` after its first
record; `poll(0)` serves delivery callbacks without waiting. When the broker
is down the buffer fills and batches are dropped and counted, not waited for;
batches that cannot be delivered within `message.timeout.ms` count as failed.

Why batches: one Kafka message per answer cost the API about a sixth of its
CPU per request (librdkafka's per-message work and a delivery callback into
Python) and the broker as much again, on the same cores that serve requests.
A batch is one message whose value is a JSON array of answer records
(`events.rec_served`, the format the flow reads back). The broker is reached
only through `state.rec_served_log.RecServedLog`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from events.rec_served import served_batch
from state.rec_served_log import RecServedLog

BATCH_RECORDS = 200
"""Answers per message at most: about 0.3 MB of JSON, well under Kafka's 1 MB message limit."""


class ServedPublisher:
    """Non-blocking producer of served answers, with counts of records queued, delivered, dropped, failed.

    Parameters
    ----------
    brokers
        Kafka bootstrap servers.
    topic
        The full name of the `rec_served` topic.
    queue_max
        Records buffered for the broker before new ones are dropped.
    linger_s
        How long the first answer of a batch waits for others before the batch is sent.
    """

    def __init__(
        self,
        brokers: str,
        topic: str,
        queue_max: int = 100_000,
        linger_s: float = 0.05,
        security: dict[str, str] | None = None,
    ) -> None:
        self.brokers = brokers
        self.topic = topic
        self.queue_max = queue_max
        self.linger_s = linger_s
        self.counts: dict[str, int] = dict.fromkeys(("queued", "delivered", "dropped", "failed"), 0)
        self.served_by_variant: dict[str, int] = {}
        self._batch: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._log = RecServedLog(brokers, topic, queue_max // BATCH_RECORDS, security)

    def publish(self, value: bytes, variant: str) -> None:
        """Queue one served answer (a JSON object); never raises, never waits."""
        self.served_by_variant[variant] = self.served_by_variant.get(variant, 0) + 1
        self.counts["queued"] += 1
        batch = self._batch
        batch.append(value)
        if len(batch) >= BATCH_RECORDS:
            self.send()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.linger_s, self.send)
            except RuntimeError:  # no event loop (a tool, a test): send at once
                self.send()

    def send(self) -> None:
        """Append the current batch to the log now (the linger timer calls this)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._batch = self._batch, []
        if not batch:
            return
        records = len(batch)
        if not self._log.append(served_batch(batch), lambda ok: self._delivered(ok, records)):
            self.counts["dropped"] += records  # the broker is behind or away: the answers were served anyway

    def _delivered(self, ok: bool, records: int) -> None:
        self.counts["delivered" if ok else "failed"] += records

    def flush(self, timeout_s: float) -> int:
        """Send the open batch and wait up to `timeout_s` for queued messages; returns how many are undelivered."""
        self.send()
        return self._log.flush(timeout_s)

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
