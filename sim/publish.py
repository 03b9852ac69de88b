"""Getting simulated records out: into Kafka at a controlled rate, or into JSONL files.

JSONL format (one file per topic, `<topic>.jsonl`, e.g. `pos.jsonl`): each line
is one raw message value, exactly the bytes published, when those bytes are
valid UTF-8 without a line break (`\\n` or `\\r`) and do not start with
`base64:`. Every other value (binary garbage, a payload with a raw newline,
one that happens to start with the marker) is written as `base64:` followed by
its standard base64 encoding. An empty line is an empty payload. So any
payload round-trips, a hand-written file of one JSON event per line is valid
input as it is, and a line that is not JSON is published as-is (and
dead-lettered by the flows, as the contract says). Keys are not stored: they
are derived from the payload (`key_for`), as a producer following the contract
would.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, Message, Producer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from events.topics import Topic
from sim.keys import key_for
from sim.record import SimRecord

__all__ = [
    "KafkaPublisher",
    "PublishError",
    "decode_line",
    "encode_line",
    "jsonl_records",
    "key_for",
    "read_jsonl",
    "write_jsonl",
]

BASE64_MARKER = b"base64:"
_POLL_EVERY = 1000


class PublishError(RuntimeError):
    """Some records were not acknowledged by the brokers."""


# Batches of up to 100 ms: the local broker (Tansu, in memory) keeps every record batch and
# each fetch costs more the more it holds. Offering 6.3k events/s for 45 s with one consumer
# tailing, its own latency reached p99 1.5 s with 5-ms batches, 0.4 s with 20-ms ones and
# stayed at 18 ms with 100-ms ones (docs/benchmark-history.md). Apache Kafka is indifferent.
DEFAULT_LINGER_MS = 100


class KafkaPublisher:
    """Publishes simulated records to Kafka, fast or at a steady rate.

    Delivery is at-least-once with an idempotent producer: librdkafka's own
    retries never duplicate a message, so the only duplicates in a topic are
    the ones the simulator put there on purpose (`SimRecord.duplicate`).

    Parameters
    ----------
    brokers
        Bootstrap servers, `host:port` each (a comma-separated string is accepted too).
    config
        Extra librdkafka settings, overriding the throughput-tuned defaults.
    """

    def __init__(self, brokers: list[str] | str, config: dict[str, Any] | None = None) -> None:
        self.brokers = brokers
        self.config = config
        self._producer = Producer(
            {
                "bootstrap.servers": brokers if isinstance(brokers, str) else ",".join(brokers),
                "client.id": "omnistream-sim",
                "enable.idempotence": True,  # retries never duplicate: only the simulator's own duplicates exist
                "linger.ms": DEFAULT_LINGER_MS,
                "batch.num.messages": 10_000,
                "batch.size": 1_000_000,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
                "queue.buffering.max.kbytes": 512 * 1024,
                "message.max.bytes": 1_000_000,  # oversized test payloads are ~66 KiB
                **(config or {}),
            }
        )
        self._failures: list[KafkaError] = []

    def publish(
        self,
        records: Iterable[SimRecord],
        topic_names: dict[Topic, str],
        rate: float | None = None,
        progress: bool | Callable[[int], None] = False,
        total: int | None = None,
        flush_timeout_s: float = 60.0,
    ) -> dict[Topic, int]:
        """Produce every record to its topic's full name; returns how many went to each topic.

        `topic_names` maps each topic of `records` to its full name (`Topic.named(prefix)`).

        `rate` paces publishing at that many records per second (a token bucket
        with 0.1 s of burst); None or 0 publishes as fast as the brokers take them.
        `progress` True shows a rich progress bar (`total` sizes it when `records`
        has no length); a callable instead is called with each batch of newly
        produced records, for a caller's own display. Waits for every delivery
        report and raises `PublishError` if any record failed.
        """
        counts: dict[Topic, int] = {}
        names = topic_names
        produce, poll = self._producer.produce, self._producer.poll
        pacer = _TokenBucket(rate) if rate else None
        if total is None and isinstance(records, Sized):
            total = len(records)
        with _progress_bar(progress, total) as advance:
            sent = 0
            for record in records:
                if pacer is not None:
                    pacer.take()
                topic = record.topic
                while True:
                    try:
                        produce(names[topic], record.value, record.key, on_delivery=self._on_delivery)
                        break
                    except BufferError:
                        poll(0.05)  # the local queue is full: let librdkafka drain it
                counts[topic] = counts.get(topic, 0) + 1
                sent += 1
                if sent % _POLL_EVERY == 0:
                    poll(0)
                    advance(_POLL_EVERY)
            remaining = self._producer.flush(flush_timeout_s)
            advance(sent % _POLL_EVERY)
        if remaining:
            raise PublishError(f"{remaining} records still undelivered after {flush_timeout_s} s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishError(f"{len(failures)} records failed; first: {failures[0]}")
        return counts

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(error)


class _TokenBucket:
    """Paces a loop to `rate` operations per second, allowing 0.1 s worth of burst.

    When the bucket runs dry it sleeps until 10 ms worth of tokens are back: one
    sleep per batch, not per record, since a sleep costs more than a record
    (~60 us) and would cap the rate below what was asked.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate * 0.1)
        self._batch = max(1.0, rate * 0.01)
        self._tokens = self.capacity
        self._last = time.monotonic()

    def take(self) -> None:
        """Spend one token, sleeping first when none is left."""
        self._tokens -= 1.0
        if self._tokens >= 0.0:
            return
        self._refill()
        if self._tokens < 0.0:
            time.sleep((self._batch - self._tokens) / self.rate)
            self._refill()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now


@contextmanager
def _progress_bar(progress: bool | Callable[[int], None], total: int | None) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`: a rich bar's, the caller's own callback, or a no-op."""
    if callable(progress):
        yield progress
    elif progress:
        columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns) as bar:
            task = bar.add_task("publish", total=total)
            yield lambda n: bar.advance(task, n)
    else:
        yield lambda n: None


# --- JSONL ------------------------------------------------------------------


def encode_line(value: bytes) -> bytes:
    """One JSONL line (without its newline) for the raw message `value`.

    >>> encode_line(b'{"type":"sale"}')
    b'{"type":"sale"}'
    >>> encode_line(b'\\xff\\n')
    b'base64:/wo='
    """
    if b"\n" in value or b"\r" in value or value.startswith(BASE64_MARKER):
        return BASE64_MARKER + base64.b64encode(value)
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return BASE64_MARKER + base64.b64encode(value)
    return value


def decode_line(line: bytes) -> bytes:
    """The raw message value of one JSONL line (its line break already removed)."""
    if line.startswith(BASE64_MARKER):
        return base64.b64decode(line[len(BASE64_MARKER) :], validate=True)
    return line


def write_jsonl(records: Iterable[SimRecord], directory: str | Path) -> dict[Topic, int]:
    """Write each record's value to `<directory>/<topic>.jsonl`, in order; returns lines per topic.

    Files of topics that get records are truncated first; others are left alone.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[Topic, BinaryIO] = {}
    counts: dict[Topic, int] = {}
    with ExitStack() as open_files:
        for record in records:
            topic = record.topic
            out = files.get(topic)
            if out is None:
                out = files[topic] = open_files.enter_context(open(directory / f"{topic.value}.jsonl", "wb"))
            out.write(encode_line(record.value) + b"\n")
            counts[topic] = counts.get(topic, 0) + 1
    return counts


def read_jsonl(path: str | Path) -> Iterator[bytes]:
    """The raw message values of a JSONL file, one per line, in order.

    A trailing `\\r` (a file saved on Windows) is dropped: a value that itself
    ends in `\\r` is always written base64-encoded, so nothing is lost.
    """
    with open(path, "rb") as lines:
        for line in lines:
            if line.endswith(b"\n"):
                line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
            yield decode_line(line)


def jsonl_records(path: str | Path, topic: Topic) -> Iterator[SimRecord]:
    """A JSONL file as records of `topic`, keyed per the contract: what `omnistream replay` publishes."""
    for value in read_jsonl(path):
        yield SimRecord(topic, key_for(topic, value), value)
