"""The first step of every flow: a batch of raw Kafka records in, what the flow routes out.

Every flow starts the same way: a Kafka error becomes a dead letter (or is
skipped and counted when another flow owns the topic's dead letters,
`flows.dead_letters`), the record's topic is looked up, the payload is decoded
against the contract (`events.decode.decode`), each decoded event is counted in
`omnistream_flow_events_total` by topic and type, once per batch. What a flow
then makes of each event (movements, keyed groups, signals) is its own
business: `BatchDecoder` does the common part and hands each event to the
flow's `DecodedBatch`, a fresh one per batch.

A fresh `DecodedBatch` per batch, not state on the decoder: Bytewax runs one
mapper for every worker thread of a process, so per-batch state must be local
to the call.

This is the hot path (docs/performance.md budgets an event at ~25 us): per
event the decoder pays one dict look-up, the decode, one counter increment and
one method call into the flow; everything resolvable per topic is resolved once
in the constructor.

How the flows plug in:

- inventory (`flows.inventory.StockMovements`): owns the dead letters of all
  three of its topics, so it decodes every event (no pre-filter) and turns
  inventory events into movements, passes till events on, and expands
  purchases into reservations.
- fraud (flows/fraud_stages.py `Decoder`, batches `FraudBatch`):
  `wanted={CLICKSTREAM: b'"purchase"', INVENTORY: b'"adjustment"'}` (it
  owns neither topic's dead letters, so skipping unwanted events undecoded
  loses nothing), `raw_topics={DLQ}` with `add_raw` turning a dead-letter
  record into a `DeadLetterSeen` ops signal and returning 0 (dead letters are
  not input events of its own; one dated past the batch's bound is skipped
  and counted); `add` routes payments and till actions to
  the card shards, labels to the directory shards and shrink adjustments and
  till traffic to the ops desk; it keeps its dead letters (malformed labels)
  for the sink, and `output()` returns the card, directory, ops and sink
  `ShardBatch`es. Malformed `pos`/`clickstream`/`inventory` events are
  counted as skipped here. A Kafka error on `dlq` (a topic no flow owns) is
  counted as skipped too: the ops signal it would have given is lost, and
  the count says so (its own loop ignored it).
- recommend (flows/recommend_stages.py `Decoder`, batches `RecBatch`):
  `raw_topics={REC_SERVED}` with `add_raw` calling `served_records(record.value)`,
  adding each answer to the shopper groups, keeping a rejected record (or its
  answers dated past the batch's bound) as a dead letter (`DeadLetter.of(...)`:
  it owns `rec_served`), and returning how many
  answers it held (counted as events of type `rec_served`); `add` routes catalog
  events (`operators.recs.catalog.CATALOG_EVENTS`: upserts and price changes)
  and `interactions_of(event)` to the catalog groups; `output()` returns its
  dead letters, then the catalog and shopper groups. A Kafka error on
  `clickstream` or `pos` (whose dead letters it does not own) is counted as
  skipped, where its own loop ignored it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from events.dead_letter import DeadLetter
from events.decode import decode
from events.models import Event, event_type
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.dead_letters import owns_dead_letters
from flows.kafka_source import KafkaRecord
from flows.metrics import EVENTS_IN, SKIPPED

Out = TypeVar("Out")


def ahead_of_clock(record: KafkaRecord, ts: float) -> DeadLetter:
    """The dead letter of an event dated further ahead of the wall clock than its flow allows.

    A producer with a wrong clock (a till set years ahead) would drag a flow's event-time clocks
    forward: every hold of a SKU lapsed, every timer of a customer due, every payment waiting for
    its label presumed genuine, every loyalty point expired, every trending list decayed away.
    Every flow's state runs on event time, so every flow refuses such events at its decoder
    (`Settings.max_future_s`, set by `flows.wiring.decoded_input` through
    `BatchDecoder.refuse_future`; the customers flow refuses them in its own batch,
    `CustomersSettings.max_future_s`). The bound is read from the wall clock when a batch is
    decoded, so a refused event replayed after a recovery is refused again unless the clock has
    since caught up with it.
    """
    error = f"Event time {rfc3339_ms(ts)} is ahead of the wall clock by more than the allowed skew"
    return DeadLetter.of(record.topic, record.partition, record.offset, error, record.value)


def _latest(max_future_s: float | None) -> datetime | None:
    """The latest event time a batch decoded now accepts (None: any; also for a bound past year 9999)."""
    if max_future_s is None:
        return None
    try:
        return datetime.now(UTC) + timedelta(seconds=max_future_s)
    except OverflowError:
        return None


class DecodedBatch(Protocol[Out]):
    """The flow-specific half of decoding one batch: what the flow makes of each record."""

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        """Take one valid event, read from `record` on `topic`."""

    def add_dead_letter(self, letter: DeadLetter) -> None:
        """Take one dead letter of a topic this flow owns."""

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        """Take one record of a `raw_topics` topic, undecoded; returns how many input events it held.

        `latest_s` is the latest event time (epoch seconds) the batch accepts (`math.inf` without
        `BatchDecoder.refuse_future`): a record read raw is dated by its reader, which refuses what
        lies beyond it as the decoder refuses a decoded event (`ahead_of_clock`).
        """
        ...

    def output(self) -> list[Out]:
        """Everything the batch produced, in the shape the next step takes."""
        ...


class _TopicPlan:
    """What the decoder does with records of one topic, resolved once (enum look-ups are slow per event)."""

    __slots__ = ("marker", "owned", "raw", "special", "topic", "value")

    def __init__(self, flow: str, topic: Topic, marker: bytes | None, raw: bool) -> None:
        self.topic = topic
        self.value = topic.value
        self.owned = owns_dead_letters(flow, topic)
        self.marker = marker
        self.raw = raw
        # Only topics with a pre-filter or raw reading take the slower branch.
        self.special = marker is not None or raw


class BatchDecoder(Generic[Out]):
    """Kafka records to a flow's routed output; never raises.

    `source_topics` maps each topic name read to its contract topic.
    `new_batch` makes the flow's `DecodedBatch` for one batch. `wanted` is an
    optional cheap pre-filter on the raw bytes: a topic's records that do not
    contain its marker (e.g. `b'"purchase"'`) are passed over undecoded and
    uncounted, a false positive costing only a decode; it is refused for a
    topic whose dead letters the flow owns, whose malformed events it must see.
    Records of `raw_topics` go to `DecodedBatch.add_raw` undecoded. After `refuse_future`, an event
    dated further ahead of the wall clock (read once per batch) is refused like a malformed one
    (`ahead_of_clock`): a dead letter where the flow owns the topic's, skipped and counted elsewhere.
    """

    def __init__(
        self,
        flow: str,
        source_topics: Mapping[str, Topic],
        new_batch: Callable[[], DecodedBatch[Out]],
        *,
        wanted: Mapping[Topic, bytes] | None = None,
        raw_topics: Collection[Topic] = (),
    ) -> None:
        wanted = wanted or {}
        for topic in wanted:
            if owns_dead_letters(flow, topic):
                raise ValueError(f"flow {flow} owns the dead letters of {topic.value}: it cannot pre-filter them")
        self.flow = flow
        self.max_future_s: float | None = None  # no bound until `refuse_future` (every flow's, by its wiring)
        self.source_topics = dict(source_topics)
        self._new_batch = new_batch
        self._plans = {name: _TopicPlan(flow, topic, wanted.get(topic), topic in raw_topics)
                       for name, topic in source_topics.items()}  # fmt: skip

    def refuse_future(self, max_future_s: float) -> None:
        """Refuse events dated more than `max_future_s` ahead of the wall clock from now on (`ahead_of_clock`)."""
        self.max_future_s = max_future_s

    def decode_batch(self, records: list[KafkaRecord]) -> list[Out]:
        latest = _latest(self.max_future_s)
        latest_s = latest.timestamp() if latest is not None else math.inf
        batch = self._new_batch()
        add = batch.add
        seen: Counter[tuple[str, str]] = Counter()
        skipped: Counter[str] = Counter()
        plans = self._plans
        for record in records:
            plan = plans[record.topic]  # one subscript per record, cheaper than a `.get` call
            if plan.special or record.error is not None:
                if record.error is not None:
                    if plan.owned:
                        batch.add_dead_letter(DeadLetter.of(record.topic, record.partition, record.offset,
                                                            f"Kafka error: {record.error}", record.value))  # fmt: skip
                    else:
                        skipped[plan.value] += 1
                    continue
                if plan.raw:
                    n = batch.add_raw(plan.topic, record, latest_s)
                    if n:
                        seen[plan.value, plan.value] += n
                    continue
                if plan.marker is not None and (record.value is None or plan.marker not in record.value):
                    continue
            event = decode(plan.topic, record.value, source_topic=record.topic, partition=record.partition,
                           offset=record.offset)  # fmt: skip
            if type(event) is DeadLetter:
                if plan.owned:
                    batch.add_dead_letter(event)
                else:
                    skipped[plan.value] += 1
                continue
            if latest is not None and event.ts > latest:  # type: ignore[operator]  # aware: one comparison
                if plan.owned:
                    batch.add_dead_letter(ahead_of_clock(record, event.ts.timestamp()))  # type: ignore[union-attr]
                else:
                    skipped[plan.value] += 1
                continue
            seen[plan.value, event_type(event)] += 1  # type: ignore[arg-type]
            add(plan.topic, event, record)  # type: ignore[arg-type]
        flow = self.flow
        for (topic_name, type_name), n in seen.items():
            EVENTS_IN.labels(flow, topic_name, type_name).inc(n)
        for topic_name, n in skipped.items():
            SKIPPED.labels(flow, topic_name).inc(n)
        return batch.output()
