"""The flows' sink: versioned state, alerts and dead letters to Redis and Kafka.

One sink takes every record a flow produces, so each batch costs one Redis
pipeline round trip whatever its mix (docs/performance.md: the Redis client is the
largest per-event cost).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import Producer

from events.alerts import Alert
from events.availability import AvailabilityChange
from events.dead_letter import DeadLetter
from events.orders import OrderLineState, ReservationState
from events.outputs import Destination, destination_of
from events.stock import SkuStock
from events.suggestions import Suggestion
from events.topics import Topic
from events.triggers import Trigger
from flows.heartbeat import Heartbeat
from flows.metrics import ALERTS, DEAD_LETTERS, END_TO_END_LAG, REDIS_WRITE_SECONDS, STATE_WRITES, observe_many
from omnistream.settings import Settings
from operators.customers.lifecycle import SEGMENTS, STAGES
from state import keys
from state.connection import connect
from state.customer_writer import CustomerDoc, CustomerWriter
from state.doc_writer import DocWriter, FencedDoc
from state.order_writer import OrderWriter
from state.pipeline_scripts import LuaScript, run_pipeline
from state.reservations import decided_doc
from state.stock_writer import StockWriter
from state.stream_writer import StreamWriter


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """A record already encoded for an output topic (`omni.loyalty` ledger entries, `omni.attribution` credits).

    At least once, like alerts: `key` keeps one entity's records in order on one partition,
    and the body carries an id derived from its cause, so consumers drop the repeats a
    recovery replay re-sends. A typed record says where it goes by itself instead
    (`events.outputs.Destination`: suggestions, triggers, availability changes).
    """

    topic: Topic
    key: str
    body: bytes


FlowRecord = (
    SkuStock
    | FencedDoc
    | Alert
    | DeadLetter
    | OrderLineState
    | ReservationState
    | Suggestion
    | CustomerDoc
    | Trigger
    | AvailabilityChange
    | TopicRecord
)
_ENCODER = msgspec.json.Encoder()
log = logging.getLogger(__name__)


def _backoff() -> Iterator[float]:
    """0.1 s doubling to 5 s, forever."""
    delay_s = 0.1
    while True:
        yield delay_s
        delay_s = min(5.0, delay_s * 2)


class _RecordSinkPartition(StatelessSinkPartition[FlowRecord]):
    def __init__(self, flow_name: str, settings: Settings, generation: str, worker_index: int = 0) -> None:
        self._flow = flow_name
        self._worker = worker_index
        self._written = 0
        self._letters_by_reason: Counter[str] = Counter()
        self._last_lag_s: float | None = None  # the newest batch's median event-time lag
        self._lag = END_TO_END_LAG.labels(flow_name)
        client = connect(settings.redis.url, timeout_s=10.0)
        self._client = client
        self._beats = Heartbeat(client, flow_name, worker_index)  # built here, on the worker's thread
        self._stock = StockWriter(client, generation)
        self._docs = DocWriter(client, generation)
        self._orders = OrderWriter(client, generation, settings.orders.doc_ttl_s)
        self._hold_ttl_s = settings.reservations.doc_ttl_s
        self._alerts = StreamWriter(client, keys.alerts_stream(), generation=generation)
        self._dead_letters = StreamWriter(client, keys.dlq_stream(), generation=generation)
        self._customers = CustomerWriter(client, SEGMENTS, generation, exclusive=[stage.value for stage in STAGES])
        self._generation = generation
        self._mirrors: dict[Topic, StreamWriter] = {}  # Redis streams of mirrored topics, made on first use
        self._scripts: tuple[LuaScript, ...] = (*self._stock.scripts, *self._docs.scripts, *self._orders.scripts,
                                                *self._alerts.scripts, *self._dead_letters.scripts,
                                                *self._customers.scripts)  # fmt: skip
        # No linger: the batch's alerts and dead letters are all produced before the Redis write, so
        # they go out at once and their acknowledgement arrives while Redis works; with a linger they
        # waited for the flush after it, adding a broker round trip to every batch that has any
        # (docs/performance.md, "Inventory end-to-end lag").
        self._producer = Producer({**settings.kafka.client_config(), "enable.idempotence": True, "linger.ms": 0})
        self._alerts_topic = settings.topic(Topic.ALERTS)
        self._dlq_topic = settings.topic(Topic.DLQ)
        self._topic_names = {topic: settings.topic(topic) for topic in Topic}
        self._destinations: dict[type, Destination | None] = {}  # each record type's, looked up once

    def _destination(self, record_type: type) -> Destination | None:
        try:
            return self._destinations[record_type]
        except KeyError:
            found = self._destinations[record_type] = destination_of(record_type)
            if found is not None and found.mirrored and found.topic not in self._mirrors:
                mirror = StreamWriter(self._client, keys.topic_stream(found.topic), generation=self._generation)
                self._mirrors[found.topic] = mirror
                self._scripts = (*self._scripts, *mirror.scripts)
            return found

    def write_batch(self, items: list[FlowRecord]) -> None:
        stocks: list[SkuStock] = []
        docs: list[FencedDoc] = []
        lines: list[OrderLineState] = []
        alerts: list[tuple[str, bytes]] = []
        letters: list[tuple[str, bytes]] = []
        customers: list[CustomerDoc] = []
        mirrored: dict[Topic, list[tuple[str, bytes]]] = {}
        alert_kinds: Counter[tuple[str, str]] = Counter()
        letter_reasons: Counter[tuple[str, str]] = Counter()
        produce = self._producer.produce
        produced = 0
        for item in items:
            if type(item) is TopicRecord:
                produce(self._topic_names[item.topic], item.body, key=item.key)
                produced += 1
            elif type(item) is SkuStock:
                stocks.append(item)
            elif type(item) is FencedDoc:
                docs.append(item)
            elif type(item) is OrderLineState:
                lines.append(item)
            elif type(item) is ReservationState:
                docs.append(decided_doc(item, self._hold_ttl_s))
            elif type(item) is CustomerDoc:
                customers.append(item)
            elif type(item) is Alert:
                alerts.append((item.alert_id, orjson.dumps(item)))
                alert_kinds[item.kind, item.severity.value] += 1
            elif type(item) is DeadLetter:
                letters.append((item.dlq_id, orjson.dumps(item)))
                letter_reasons[item.source_topic, item.reason] += 1
            else:  # a record that says where it goes (`events.outputs`): suggestions, triggers, availability, ...
                destination = self._destination(type(item))
                assert destination is not None, f"unexpected record {type(item).__name__}: it names no destination"
                key, body = destination.key_of(item), _ENCODER.encode(item)
                produce(self._topic_names[destination.topic], body, key=key)
                produced += 1
                if destination.mirrored:
                    mirrored.setdefault(destination.topic, []).append((key, body))

        # Kafka and Redis both, before returning: once write_batch returns, the
        # epoch may be committed, and an undelivered record would be lost
        # (at-least-once; the ids let consumers drop the repeats a recovery
        # replay re-sends). The records are handed to the producer first and
        # waited for last, so the broker's acknowledgement overlaps the Redis
        # round trip instead of adding to every batch's latency.
        for record_id, body in alerts:
            produce(self._alerts_topic, body, key=record_id)
        for record_id, body in letters:
            produce(self._dlq_topic, body, key=record_id)

        started = time.perf_counter()
        applied, n_state = self._write_redis(stocks, docs, lines, alerts, letters, customers, mirrored)
        written_at = time.time()
        REDIS_WRITE_SECONDS.labels(self._flow).observe(time.perf_counter() - started)
        if alerts or letters or produced or len(self._producer):
            self._flush_kafka()

        lags: list[float] = []
        if n_state:
            STATE_WRITES.labels(self._flow, "applied").inc(applied)
            STATE_WRITES.labels(self._flow, "stale").inc(n_state - applied)
            # One pass over the buckets per batch, not a locked `observe` per record (flows.metrics.observe_many).
            lags = [written_at - stock.as_of for stock in stocks]
            lags += [written_at - doc.as_of for doc in docs if doc.as_of is not None]
            lags += [written_at - doc.as_of for doc in customers if doc.as_of is not None]
            observe_many(self._lag, [lag if lag > 0.0 else 0.0 for lag in lags])
        for (kind, severity), n in alert_kinds.items():
            ALERTS.labels(self._flow, kind, severity).inc(n)
        for (topic, reason), n in letter_reasons.items():
            DEAD_LETTERS.labels(self._flow, topic, reason).inc(n)
            self._letters_by_reason[str(reason)] += n  # a StrEnum: JSON keys must be plain str
        self._written += len(items)
        # The median record's event-time lag: robust to the odd late event (large) and early one (negative).
        # A batch with no state (dead letters only) keeps the last lag known, rather than reporting none.
        if lags:
            self._last_lag_s = statistics.median(lags)
        self._heartbeat(written_at, self._last_lag_s)

    def _heartbeat(self, written_at: float, lag_s: float | None) -> None:
        """Tell the console what this worker wrote (`flows.heartbeat` writes it once a second with the Kafka lag)."""
        self._beats.update(last_write_at=written_at, event_lag_s=None if lag_s is None else max(0.0, lag_s),
                           records=self._written, dead_letters=dict(self._letters_by_reason))  # fmt: skip

    def _write_redis(
        self,
        stocks: list[SkuStock],
        docs: list[FencedDoc],
        lines: list[OrderLineState],
        alerts: list[tuple[str, bytes]],
        letters: list[tuple[str, bytes]],
        customers: list[CustomerDoc],
        mirrored: dict[Topic, list[tuple[str, bytes]]],
    ) -> tuple[int, int]:
        """Returns how many fenced state writes were applied, and how many were sent."""

        # Every write is idempotent (fenced or added once), so a batch is simply
        # retried until Redis is back: the flow waits instead of crashing or losing it.
        def queue_all(
            pipe: redis.client.Pipeline,
        ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
            stock_queued = self._stock.queue(pipe, stocks)
            docs_queued = self._docs.queue_counted(pipe, docs)
            lines_queued = self._orders.queue(pipe, lines) if lines else (0, 0)
            customers_queued = self._customers.queue(pipe, customers) if customers else (0, 0)
            self._alerts.queue(pipe, alerts)
            self._dead_letters.queue(pipe, letters)
            for topic, records in mirrored.items():
                self._mirrors[topic].queue(pipe, records)
            return stock_queued, docs_queued, lines_queued, customers_queued

        for delay_s in _backoff():
            try:
                queued, replies = run_pipeline(self._client, queue_all, self._scripts)
                (stock_replies, n_stock), (doc_replies, n_docs), (line_replies, n_lines), customer_counts = queued
                customer_replies, n_customers = customer_counts
                applied = self._stock.settle(replies[:stock_replies])
                # each document, order-line or customer reply counts the writes it applied (flag calls: 0)
                end = stock_replies + doc_replies + line_replies + customer_replies
                applied += sum(int(r) for r in replies[stock_replies:end])
                return applied, n_stock + n_docs + n_lines + n_customers
            except (redis.ConnectionError, redis.TimeoutError) as ex:
                log.warning("flow %s: Redis unavailable (%s); retrying the batch in %.1f s", self._flow, ex, delay_s)
                time.sleep(delay_s)
        raise AssertionError("unreachable")

    def _flush_kafka(self) -> None:
        for delay_s in _backoff():
            if self._producer.flush(10.0) == 0:
                return
            log.warning("flow %s: Kafka has not acknowledged alerts/dead letters; waiting %.1f s", self._flow, delay_s)
            time.sleep(delay_s)

    def close(self) -> None:
        self._beats.close()
        self._producer.flush()
        self._client.close()


class RecordSink(DynamicSink[FlowRecord]):
    """Writes `SkuStock`, `FencedDoc`, customer documents, order lines and holds (fenced), `Alert`, `DeadLetter`,
    `TopicRecord` records of a flow, and any record type that names its `events.outputs.Destination`.

    A record with a destination (suggestions, triggers, availability changes) goes to its
    topic keyed by its key field, and, when mirrored (triggers), once to the Redis stream of
    the same name. Suggestions go to `omni.suggestions` only; their Redis side is the flow's
    fenced documents.

    Delivery: state writes are exactly-once in effect (absolute values behind
    a version fence); alerts and dead letters reach each Redis stream once
    (added only if their id is new) and their Kafka topics at least once,
    keyed by `alert_id` / `dlq_id` so consumers can drop repeats after a
    recovery replay.
    """

    def __init__(self, flow_name: str, settings: Settings, generation: str = "") -> None:
        self.flow_name = flow_name
        self.settings = settings
        self.generation = generation

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RecordSinkPartition:
        return _RecordSinkPartition(self.flow_name, self.settings, self.generation, worker_index)


def is_dead_letter(item: Any) -> bool:
    return type(item) is DeadLetter
