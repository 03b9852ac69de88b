"""A lean Kafka source: explicit partition assignment, offsets kept in Bytewax recovery.

Bytewax's own `KafkaSource` wraps every message in a dataclass with headers,
latency and timestamp; profiling the inventory flow showed that wrapping as
the single largest per-event cost. This source hands on just what the flows
use, as a small tuple.

It also runs one consumer per process instead of one per partition: each
consumer keeps its own fetch request waiting at the broker, and with a dozen
partitions those idle fetches alone kept the local broker at half a core and
added their wait to the end-to-end lag. One consumer asks for every assigned
partition in one request.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar, NamedTuple

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from flows.registry import FLOWS, PROMPT_FLOWS
from omnistream.settings import Settings


def fetch_config(settings: Settings, flow: str = "") -> dict[str, str]:
    """librdkafka settings of `flow`'s consumers that shape lag and the broker's idle work.

    A fetch that finds nothing waits at the broker at most `kafka.fetch_wait_ms` in the flows
    whose answers are awaited at once (`flows.registry.PROMPT_FLOWS`; any flow not named, such
    as a test's): the local broker does not answer it as soon as data arrives, so librdkafka's
    500 ms default showed up directly as end-to-end lag. The other flows wait `kafka.relaxed_fetch_wait_ms`: each idle
    fetch is a request the broker answers, and eight idle flows polling every 10 ms kept the
    local broker at three quarters of a core (docs/performance.md, "Idle flows").

    >>> s = Settings(kafka_brokers="127.0.0.1:9")
    >>> fetch_config(s, "inventory"), fetch_config(s, "demand")
    ({'fetch.wait.max.ms': '10'}, {'fetch.wait.max.ms': '100'})
    """
    relaxed = flow in FLOWS and flow not in PROMPT_FLOWS
    wait = settings.kafka.relaxed_fetch_wait_ms if relaxed else settings.kafka.fetch_wait_ms
    return {"fetch.wait.max.ms": str(wait)}


class KafkaRecord(NamedTuple):
    """One message as read: where it came from, its value, and the broker's error if any."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    error: str | None = None


class _SharedConsumer:
    """One consumer for every partition this process reads, with a buffer per partition.

    Bytewax asks each partition for its next batch in turn (from one thread
    per worker); whichever partition finds its buffer empty polls for all and
    files what arrives under its partition. A lock keeps workers of the same
    process apart.
    """

    _by_config: ClassVar[dict[tuple[tuple[str, str], ...], _SharedConsumer]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, config: dict[str, str], batch_size: int) -> None:
        self._key = tuple(sorted(config.items()))
        self._consumer = Consumer(config)
        self._batch_size = batch_size
        self._buffers: dict[tuple[str, int], list[KafkaRecord]] = {}
        self._at_end: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._users = 0

    @classmethod
    def for_config(cls, config: dict[str, str], batch_size: int) -> _SharedConsumer:
        with cls._registry_lock:
            shared = cls._by_config.get(tuple(sorted(config.items())))
            if shared is None:
                shared = cls(config, batch_size)
                cls._by_config[shared._key] = shared
            shared._users += 1
            return shared

    def assign(self, topic: str, partition: int, offset: int) -> None:
        with self._lock:
            self._buffers[topic, partition] = []
            self._consumer.incremental_assign([TopicPartition(topic, partition, offset)])

    def take(self, topic: str, partition: int, next_offset: int) -> tuple[list[KafkaRecord], bool]:
        """Buffered records of one partition (polling when there are none) and whether it reached its end."""
        part = (topic, partition)
        with self._lock:
            if not self._buffers[part] and part not in self._at_end:
                self._poll(next_offset_hint=(part, next_offset))
            records, self._buffers[part] = self._buffers[part], []
            return records, part in self._at_end

    def _poll(self, next_offset_hint: tuple[tuple[str, int], int]) -> None:
        buffers = self._buffers
        # Timeout 0: librdkafka fetches in the background, this only drains its queue. A wait here
        # would be paid once per partition per Bytewax cycle (a dozen partitions: ~12 ms of lag).
        for msg in self._consumer.consume(self._batch_size, 0):
            # Set on every consumed message; the client types them optional (they are None only on events).
            part: tuple[str, int] = (msg.topic(), msg.partition())  # type: ignore[assignment]
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_end.add(part)
                    continue
                if part not in buffers:  # an error not tied to a partition of ours: file it under the asker
                    part = next_offset_hint[0]
                buffers[part].append(KafkaRecord(part[0], part[1], next_offset_hint[1], msg.value(), str(error)))
                continue
            buffers[part].append(KafkaRecord(part[0], part[1], msg.offset(), msg.value()))  # type: ignore[arg-type]

    def watermarks(self, topic: str, partition: int) -> tuple[int, int] | None:
        """The partition's first and next offsets as the latest fetch response told them (no broker request).

        librdkafka keeps each partition's high watermark from every fetch response, so
        reading it is a local call: the flow health reads it once a second, never per message.
        """
        with self._lock:
            if (topic, partition) not in self._buffers:
                return None
            try:
                low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except Exception:  # closed, or the client does not know the partition yet: unknown, not an error
                return None
        return (max(0, low), high) if high >= 0 else None  # None before the first fetch answered

    def release(self, topic: str, partition: int) -> None:
        with self._lock:
            self._buffers.pop((topic, partition), None)
            self._consumer.incremental_unassign([TopicPartition(topic, partition)])
        with self._registry_lock:
            self._users -= 1
            if self._users == 0:
                self._consumer.close()
                del _SharedConsumer._by_config[self._key]


class SourceProgress(NamedTuple):
    """How far one worker's Kafka partitions are: consumer lag and the last epoch (`source_progress`)."""

    lag: int | None
    """Messages between the partitions' high watermarks and the worker's positions, summed; None while unknown."""
    lag_by_topic: dict[str, int]
    last_snapshot_at: float | None
    """Wall time the worker last closed an epoch (Bytewax snapshots every partition then), None before the first."""
    epochs: int
    """Epochs the worker has closed since it started."""


class _Progress:
    """The partitions each worker thread reads, so its sink can report their lag and epochs (`source_progress`).

    Bytewax runs each worker on a thread of its own, which builds and drives both the
    worker's source partitions and its sink partition; the thread is how the sink finds
    the partitions of its worker (the source is not told the worker's index).
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _by_thread: ClassVar[dict[int, list[_KafkaPartition]]] = {}

    @classmethod
    def register(cls, part: _KafkaPartition) -> None:
        with cls._lock:
            parts = cls._by_thread.setdefault(threading.get_ident(), [])
            parts[:] = [p for p in parts if not p.closed]  # a later run on the same thread: forget the last one's
            parts.append(part)

    @classmethod
    def of(cls, thread_id: int) -> list[_KafkaPartition]:
        with cls._lock:
            return list(cls._by_thread.get(thread_id, ()))


def source_progress(thread_id: int | None = None) -> SourceProgress | None:
    """Lag and epochs of the Kafka partitions the worker on `thread_id` (default: this thread) reads.

    None when that worker reads no partition of a `KafkaPartitions` source. A partition whose
    high watermark is not known yet (no fetch answered) adds nothing to `lag_by_topic`; `lag` is
    None until one is known. Safe to call from another thread (the heartbeat's).
    """
    parts = _Progress.of(threading.get_ident() if thread_id is None else thread_id)
    if not parts:
        return None
    by_topic: dict[str, int] = {}
    known = False
    last_snapshot_at: float | None = None
    epochs = 0
    for part in parts:
        lag = part.lag()
        if lag is not None:
            known = True
            by_topic[part.topic] = by_topic.get(part.topic, 0) + lag
        if part.snapshot_at is not None and (last_snapshot_at is None or part.snapshot_at > last_snapshot_at):
            last_snapshot_at = part.snapshot_at
        epochs = max(epochs, part.snapshots)
    return SourceProgress(sum(by_topic.values()) if known else None, by_topic, last_snapshot_at, epochs)


def unread_partitions(thread_id: int | None = None, unknown: bool = True) -> set[tuple[str, int]] | None:
    """The worker's partitions with messages left to read (or an end not known yet); None without Kafka partitions.

    A partition read to its high watermark holds no one back: the merchandising flow's clock
    waits only for those still behind (`flows.merchandising_stages`). One local call per
    partition (the cached watermarks), made once per decoded batch.
    """
    parts = _Progress.of(threading.get_ident() if thread_id is None else thread_id)
    if not parts:
        return None
    # A partition closed at its end (`stop_at_end`) brings nothing more, whatever its last lag said.
    # `unknown` False: only partitions known to have messages left (a flow that can only act on a
    # batch must not wait for an end it will never hear of without one).
    found = set()
    for part in parts:
        if not part.closed:
            lag = part.lag()
            if lag != 0 and (unknown or lag is not None):
                found.add((part.topic, part.partition))
    return found


def partitions_read_to_end(thread_id: int | None = None) -> set[tuple[str, int]] | None:
    """The worker's partitions read to their high watermark (or closed at their end); None without Kafka partitions.

    The complement of `unread_partitions` among the worker's own: a partition of another worker is
    in neither. The fraud flow's event-time order lets such a partition stop holding others back
    (`operators.fraud.ordering`): a paused stream, not a starved worker.
    """
    parts = _Progress.of(threading.get_ident() if thread_id is None else thread_id)
    if not parts:
        return None
    return {(part.topic, part.partition) for part in parts if part.closed or part.lag() == 0}


class _KafkaPartition(StatefulSourcePartition[KafkaRecord, int]):
    # Everything is built from `resume_state` here, not in the source's
    # constructor: after a recovery the partition restarts at the stored offset.
    def __init__(self, shared: _SharedConsumer, topic: str, partition: int, offset: int) -> None:
        self._shared = shared
        self.topic = topic
        self.partition = partition
        self._topic = topic
        self._partition = partition
        self._next_offset = offset
        self._eof = False
        self.closed = False
        self.snapshot_at: float | None = None
        self.snapshots = 0
        self._final_lag: int | None = None
        shared.assign(topic, partition, offset)
        _Progress.register(self)

    def next_batch(self) -> list[KafkaRecord]:
        if self._eof:
            raise StopIteration()
        batch, self._eof = self._shared.take(self._topic, self._partition, self._next_offset)
        # The offset after the last *message* emitted: an error record consumed nothing, and the offset it
        # carries is the asking partition's next one (`_SharedConsumer._poll`), not a position of this one.
        for record in reversed(batch):
            if record.error is None:
                self._next_offset = record.offset + 1
                break
        return batch  # at its end: emit this batch; stop at the next call

    def snapshot(self) -> int:
        # Called at every epoch's close, with recovery or without: the flow health's "last epoch".
        self.snapshot_at = time.time()
        self.snapshots += 1
        return self._next_offset  # the offset *after* the last one emitted

    def lag(self) -> int | None:
        """Messages between the partition's high watermark and the next one to emit (None while unknown)."""
        if self.closed:
            return self._final_lag
        marks = self._shared.watermarks(self._topic, self._partition)
        if marks is None:
            return None
        low, high = marks
        position = self._next_offset if self._next_offset >= 0 else low  # OFFSET_BEGINNING: nothing emitted yet
        return max(0, high - position)

    def close(self) -> None:
        self._final_lag = self.lag()
        self.closed = True
        self._shared.release(self._topic, self._partition)


class KafkaPartitions(FixedPartitionedSource[KafkaRecord, int]):
    """Every partition of `topics`, each assigned explicitly (no consumer-group join).

    Delivery: with Bytewax recovery, offsets are snapshotted with the flow's
    state, so after a crash input resumes from the last snapshot: each record
    is processed at least once, and the flows' version-fenced writes make the
    effects exactly-once. With `stop_at_end`, each partition stops at the end
    it finds (replays, tests, benchmarks); otherwise it tails forever.
    """

    def __init__(
        self,
        brokers: str,
        topics: list[str],
        *,
        stop_at_end: bool = False,
        batch_size: int = 5000,
        consumer_config: dict[str, str] | None = None,
        security: dict[str, str] | None = None,
    ) -> None:
        self.brokers = brokers
        self.topics = topics
        self.stop_at_end = stop_at_end
        self.batch_size = batch_size
        self.consumer_config = consumer_config or {}  # consumers only: the admin client warns about their properties
        self.security = security or {}  # authentication and TLS, for the admin client and the consumers

    def list_parts(self) -> list[str]:
        admin = AdminClient({"bootstrap.servers": self.brokers, **self.security})
        parts = []
        for topic in self.topics:
            metadata = admin.list_topics(topic, timeout=30).topics[topic]
            if metadata.error is not None:
                raise RuntimeError(f"cannot list partitions of Kafka topic {topic!r}: {metadata.error.str()}")
            parts += [f"{index}-{topic}" for index in metadata.partitions]
        return parts

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _KafkaPartition:
        index, topic = for_part.split("-", 1)
        config = {
            "bootstrap.servers": self.brokers,
            "group.id": "omnistream-unused",  # required by the client; offsets live in recovery
            "enable.auto.commit": "false",
            "enable.partition.eof": str(self.stop_at_end).lower(),
            **self.security,
            **self.consumer_config,
        }
        offset = OFFSET_BEGINNING if resume_state is None else resume_state
        return _KafkaPartition(_SharedConsumer.for_config(config, self.batch_size), topic, int(index), offset)


def kafka_source(settings: Settings, topics: list[str], flow: str = "") -> KafkaPartitions:
    """The input of `flow`: `topics` on `settings`' brokers, tailed or read to the end."""
    return KafkaPartitions(settings.kafka.brokers, topics, stop_at_end=settings.flow.stop_at_end,
                           batch_size=settings.kafka.batch_size, consumer_config=fetch_config(settings, flow),
                           security=settings.kafka.security_config())  # fmt: skip
