"""The fraud flow's steps: the decoder and the keyed stages' Bytewax logic (wiring in `flows/fraud.py`).

Each stage's logic is a thin adapter: the shard's state and what it does with a batch are
pure classes of `operators.fraud.shards`; here they are fed the batch's items, their
results are routed on as `ShardBatch`es (`FraudStage` names where each goes) and counted in
the flow's metrics, and the scorer's results become the Redis documents the API reads.

Nothing here connects to anything when built: the rules file is the only thing read.
"""

from __future__ import annotations

import math
import pickle
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from typing import Any, TypeVar

import msgspec
import orjson
from bytewax.operators import StatefulBatchLogic

from events.alerts import Alert
from events.dead_letter import DeadLetter
from events.models import Adjustment, Event, FraudLabel, Sale
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord, partitions_read_to_end, unread_partitions
from flows.keyed import RouterPerThread
from flows.metrics import (
    DUPLICATES,
    FRAUD_DECISIONS,
    FRAUD_LABELS,
    FRAUD_LATE_JOINED,
    FRAUD_MODEL_UPDATES,
    FRAUD_SCORES,
    LATE_EVENTS,
    SKIPPED,
    StateEntities,
    observe_many,
)
from flows.rules_watch import RulesWatch, rules_watch
from omnistream.settings import Settings
from operators.fraud.budget import DecisionBudget
from operators.fraud.ordering import EventTimeOrder
from operators.fraud.payments import Payment, payment_of, till_action_of
from operators.fraud.pending import PendingPayments
from operators.fraud.records import (
    Arrivals,
    DeadLetterSeen,
    LabelSeen,
    OpsSignal,
    SaleSeen,
    Scoring,
    ShardVerdicts,
    ShrinkSeen,
    StoreLabel,
    TrafficSeen,
)
from operators.fraud.rules import RuleBook
from operators.fraud.scorer import FraudScore, FraudScorer
from operators.fraud.shards import (
    CardShard,
    DirectoryShard,
    FraudAlertDesk,
    OperationsDesk,
    RegisterShard,
    ScorerBatch,
    ScorerShard,
    ShopperShard,
)
from operators.keyed_shards import ShardBatch, ShardRouter
from state import keys
from state.doc_writer import FencedDoc
from state.fraud_reader import parse_time

FLOW = "fraud"


class FraudStage(StrEnum):
    """Where a `ShardBatch` of the fraud flow goes; the values name the stages' Bytewax keys (`card:3`, `ops`)."""

    ORDER = "order"
    """Payments and labels, held until the input's watermark passes them (`operators.fraud.ordering`)."""
    CARDS = "card"
    SHOPPERS = "user"
    DIRECTORY = "directory"
    REGISTERS = "store"
    SCORER = "scorer"
    FRAUD_ALERTS = "fraud_alerts"
    OPS = "ops"
    SINK = "sink"
    """Records for the sink (documents, alerts, dead letters): not a keyed stage."""


Routed = ShardBatch[FraudStage, Any]
_RETAIN = StatefulBatchLogic.RETAIN
# Metric children resolved once: `labels()` costs more than the increment (docs/performance.md).
_DUPLICATES = DUPLICATES.labels(FLOW)
_SCORES = FRAUD_SCORES.labels(FLOW)
_DECISIONS = {decision: FRAUD_DECISIONS.labels(FLOW, decision) for decision in ("allow", "review", "block")}
_LABELS = {outcome: FRAUD_LABELS.labels(FLOW, outcome) for outcome in ("fraud", "legit", "unmatched",
                                                                       "presumed_legit")}  # fmt: skip
_ENTITIES = StateEntities(FLOW)
_LATE = LATE_EVENTS.labels(FLOW)
_LATE_JOINED = FRAUD_LATE_JOINED.labels(FLOW)


def ungroup(batch: Routed) -> list[Any]:
    """The records of a `FraudStage.SINK` batch, one by one for the sink."""
    return batch.items


# --------------------------------------------------------------------------------------------- decode


class FraudBatch:
    """One batch of decoded records as the fraud flow routes them (a `flows.decoding.DecodedBatch`).

    Payments, till actions and labels go to the ordering step with the newest event time read
    from each partition (from there, in event-time order, payments to their card's shard and
    labels to their payment's directory shard); shrink adjustments, till traffic and dead-letter
    records go to the ops desk, and malformed labels to the sink as dead letters (this flow owns
    them, `flows.dead_letters`); malformed events of the other topics are skipped and counted
    by `BatchDecoder`, as the inventory flow dead-letters them.
    """

    __slots__ = ("entries", "letters", "marks", "ops", "router")

    def __init__(self, router: ShardRouter[FraudStage, Any]) -> None:
        self.router = router
        self.entries: list[tuple[float, str, Scoring | LabelSeen]] = []
        self.marks: dict[str, float] = {}
        self.ops: list[OpsSignal] = []
        self.letters: list[DeadLetter] = []

    def _mark(self, record: KafkaRecord, ts: float) -> None:
        part = f"{record.topic}/{record.partition}"
        if ts > self.marks.get(part, -math.inf):
            self.marks[part] = ts

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        if topic is _LABEL_TOPIC:
            label: FraudLabel = event  # type: ignore[assignment]
            ts = label.ts.timestamp()
            self.entries.append((ts, label.event_id, LabelSeen(label, record.topic, record.partition, record.offset)))
            self._mark(record, ts)
            return
        sold: Sale | Adjustment = event  # type: ignore[assignment]  # every pos, clickstream and inventory event
        ts = sold.ts.timestamp()
        if topic is _INVENTORY_TOPIC:
            if type(event) is Adjustment and event.reason == "shrink" and event.qty < 0:
                self.ops.append(ShrinkSeen(event.location_id, -event.qty, ts))
            return
        payment = payment_of(event)
        action = till_action_of(event) if topic is _POS_TOPIC else None
        if payment is None and action is None:
            return
        self.entries.append((ts, sold.event_id, Scoring(payment, action, sold.event_id, ts)))
        self._mark(record, ts)
        self.ops.append(SaleSeen(event.store_id, event.register_id, ts) if type(event) is Sale else TrafficSeen(ts))

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        """A `dlq` record: an ops signal of where and when a dead letter was made; not an input event of ours.

        One dated past `latest_s` is skipped and counted: its time would move the dead-letter watch's
        clock past every real dead letter to come, and no burst would be seen again.
        """
        signal = _dead_letter_signal(record.value) if record.value is not None else None
        if signal is not None:
            if signal.ts > latest_s:
                SKIPPED.labels(FLOW, topic.value).inc()
                return 0
            self.ops.append(signal)
        return 0

    def output(self) -> list[Routed]:
        """Payments and labels to the ordering step, then the ops signals and the dead letters."""
        router = self.router
        if self.marks:
            router.add_to_single(FraudStage.ORDER, Arrivals(self.entries, self.marks))
        router.add_all_to_single(FraudStage.OPS, self.ops)
        router.add_all_to_single(FraudStage.SINK, self.letters)
        return router.drain()


_LABEL_TOPIC, _INVENTORY_TOPIC, _POS_TOPIC = Topic.LABELS, Topic.INVENTORY, Topic.POS
# Clickstream and inventory events this flow has no use for are passed over undecoded: it owns
# neither topic's dead letters, so nothing is lost by not looking at them.
_WANTED = {Topic.CLICKSTREAM: b'"purchase"', Topic.INVENTORY: b'"adjustment"'}


class Decoder(BatchDecoder[Routed]):
    """Raw Kafka messages to `ShardBatch`es: payments per card shard, labels per directory shard, ops signals.

    `BatchDecoder` with a `FraudBatch` per batch, `dlq` read raw and a pre-filter on the raw
    bytes for `clickstream` (purchases) and `inventory` (adjustments): the other events of
    those topics are not this flow's business (a false positive only costs a decode). A Kafka
    error on `dlq`, a topic no flow dead-letters, is counted as skipped like one on `pos`: the
    ops signal it would have given is lost, and the count says so. Routing is per worker
    thread (`flows.keyed.RouterPerThread`).
    """

    def __init__(
        self, source_topics: dict[str, Topic], shards: int, stage_shards: Mapping[FraudStage, int] | None = None
    ) -> None:
        super().__init__(FLOW, source_topics, self._new_batch, wanted=_WANTED, raw_topics={Topic.DLQ})
        self.shards = shards
        self._routers: RouterPerThread[FraudStage, Any] = RouterPerThread(shards, stage_shards)

    def _new_batch(self) -> FraudBatch:
        return FraudBatch(self._routers.get())


def _dead_letter_signal(value: bytes) -> DeadLetterSeen | None:
    """The source topic and time of a dead-letter record, or None for a record that is not one."""
    try:
        record = orjson.loads(value)
        return DeadLetterSeen(str(record["source_topic"]), parse_time(str(record["ts"])))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------- stages

S = TypeVar("S")


class _Logic(StatefulBatchLogic[list[Any], Routed, bytes]):
    """A keyed shard's logic: `shard` (an `operators.fraud.shards` object) is pickled whole at every snapshot."""

    def __init__(self, shard: Any, settings: Settings) -> None:
        self.shard = shard
        self.router: ShardRouter[FraudStage, Any] = ShardRouter(settings.fraud.shards,
                                                                stage_shards=stage_shards(settings))  # fmt: skip

    def snapshot(self) -> bytes:
        return pickle.dumps(self.shard, protocol=pickle.HIGHEST_PROTOCOL)

    ordered = True
    """Whether the items carry a `sequence` (payments, labels) to be handled in; ops signals and verdicts do not."""

    def _items(self, groups: list[list[Any]]) -> list[Any]:
        """The batch's items in event-time order (`sequence`): groups from several upstream shards interleave."""
        if len(groups) == 1:
            return groups[0]
        items = [item for group in groups for item in group]
        if self.ordered:
            items.sort(key=_SEQUENCE)
        return items

    def _sink(self, records: list[Any]) -> None:
        self.router.add_all_to_single(FraudStage.SINK, records)

    def _pass_on(self, stage: FraudStage, labels: list[LabelSeen]) -> None:
        """Labels on to `stage` by their payment id, unchanged.

        Labels take the payments' way through every stage up to the scorer (cards, shoppers,
        directory, registers), so that nothing read after a payment reaches a stage before it.
        """
        if labels:
            self.router.add_many(stage, [seen.payment_id for seen in labels], labels)


def _split(items: list[Any]) -> tuple[list[Any], list[LabelSeen]]:
    """A stage's own items and the labels passing through it, each in the order they came."""
    labels = [item for item in items if type(item) is LabelSeen]
    if not labels:
        return items, labels
    return [item for item in items if type(item) is not LabelSeen], labels


_SEQUENCE = attrgetter("sequence")


def stage_shards(settings: Settings) -> dict[FraudStage, int]:
    """Stages whose shard count is not `OMNISTREAM_FRAUD_SHARDS`: the scorer's is `OMNISTREAM_FRAUD_SCORER_SHARDS`."""
    return {FraudStage.SCORER: settings.fraud.scorer_shards}


def _resume(resume: bytes | None, make: Callable[[], S]) -> S:
    return pickle.loads(resume) if resume is not None else make()


def _ended_partitions() -> frozenset[str] | None:
    """This worker's Kafka partitions read to their end, named as `Arrivals.marks` names them; None without Kafka."""
    ended = partitions_read_to_end()
    if ended is None:
        return None
    return frozenset(f"{topic}/{partition}" for topic, partition in ended)


def _sole_reader(settings: Settings) -> bool:
    """Whether one worker reads every input partition: then none it has not heard of can deliver unseen."""
    return settings.workers == 1 and settings.processes == 1 and not settings.cluster.address_template


class OrderStage:
    """Builds the `order` step (one key): payments and labels on in event-time order, numbered."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _Logic:
        s = self.settings
        order = _resume(resume, lambda: EventTimeOrder(s.fraud.order_idle_s, s.fraud.order_idle_batches,
                                                              s.fraud.order_quiet_s))  # fmt: skip
        order.resumed(time.monotonic())
        return _OrderLogic(order, s)


class _OrderLogic(_Logic):
    shard: EventTimeOrder
    from_kafka = False
    """Whether this worker reads Kafka partitions (it knows which are read to their end): seen at a batch."""

    def __init__(self, shard: EventTimeOrder, settings: Settings) -> None:
        super().__init__(shard, settings)
        self.sole_reader = _sole_reader(settings)

    def _ended(self) -> tuple[frozenset[str], bool]:
        """This worker's partitions read to their end, and whether that is every input partition.

        Only when this worker reads every input partition: with several, a worker that has read its
        own to their end may be ahead of one that has not started yet, whose partitions it cannot see
        (a cluster test delivered events late so); there the batch-counting idle rule stays alone.
        """
        if not self.sole_reader:
            return frozenset(), False
        ended = _ended_partitions()
        self.from_kafka = ended is not None
        if ended is None:
            return frozenset(), False
        return ended, unread_partitions() == set()

    def on_batch(self, groups: list[list[Arrivals]]) -> tuple[list[Routed], bool]:
        now, late = time.monotonic(), self.shard.late
        ended, all_ended = self._ended()
        released: list[Any] = []
        for arrivals in self._items_of(groups):
            released += self.shard.offer(arrivals.entries, arrivals.marks, now, ended, all_ended)
        return self._route(released, late), _RETAIN

    def _items_of(self, groups: list[list[Arrivals]]) -> list[Arrivals]:
        return [arrivals for group in groups for arrivals in group]

    def on_notify(self) -> tuple[list[Routed], bool]:
        late = self.shard.late
        return self._route(self.shard.due(time.monotonic(), *self._ended()), late), _RETAIN

    def on_eof(self) -> tuple[list[Routed], bool]:
        late = self.shard.late
        return self._route(self.shard.flush(), late), _RETAIN

    def notify_at(self) -> datetime | None:
        """When the input has been quiet for `quiet_s`; sooner when read from Kafka: a partition read
        to its end stops holding back after `idle_s` (`EventTimeOrder.due`), so look again by then."""
        order = self.shard
        if not order.held:
            return None
        now = time.monotonic()
        wake = min(order.last_batch_at + order.quiet_s, order.next_check())
        if self.from_kafka:
            wake = min(wake, now + order.idle_s / 2)
        return datetime.now(UTC) + timedelta(seconds=max(0.0, wake - now))

    def _route(self, released: list[Any], late_before: int) -> list[Routed]:
        if self.shard.late > late_before:
            _LATE.inc(self.shard.late - late_before)
        if not released:
            return []
        router = self.router
        sequence = self.shard.sequence - len(released)
        cards: list[str] = []
        payments: list[Scoring] = []
        label_ids: list[str] = []
        labels: list[LabelSeen] = []
        for item in released:
            if type(item) is Scoring:
                item.sequence = sequence
                payment = item.payment
                cards.append(payment.card_token if payment is not None and payment.card_token else item.payment_id)
                payments.append(item)
            else:
                seen: LabelSeen = item
                label_ids.append(seen.payment_id)
                labels.append(msgspec.structs.replace(seen, sequence=sequence))
            sequence += 1
        router.add_many(FraudStage.CARDS, cards, payments)
        router.add_many(FraudStage.CARDS, label_ids, labels)  # the payments' way: none overtakes another
        return router.drain()


class CardStage:
    """Builds the `cards` step: drops producer retries, adds card-velocity features; on to the shopper shards."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _Logic:
        s = self.settings
        return _CardLogic(_resume(resume, lambda: CardShard(s.fraud.max_entities, s.fraud.dedup_ids)), s)


class _CardLogic(_Logic):
    shard: CardShard

    def on_batch(self, groups: list[list[Scoring | LabelSeen]]) -> tuple[list[Routed], bool]:
        items, labels = _split(self._items(groups))
        self._pass_on(FraudStage.SHOPPERS, labels)
        kept = self.shard.learn_many(items)
        if len(kept) < len(items):
            _DUPLICATES.inc(len(items) - len(kept))
        _ENTITIES.report("cards", self.shard, len(self.shard.cards))
        shoppers = [item.payment.user_id if item.payment is not None and item.payment.user_id else item.payment_id
                     for item in kept]  # fmt: skip
        self.router.add_many(FraudStage.SHOPPERS, shoppers, kept)
        return self.router.drain(), _RETAIN


class ShopperStage:
    """Builds the `shoppers` step: adds the shopper's history; on to the store shards."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _Logic:
        return _ShopperLogic(_resume(resume, lambda: ShopperShard(self.settings.fraud.max_entities)), self.settings)


class _ShopperLogic(_Logic):
    shard: ShopperShard

    def on_batch(self, groups: list[list[Scoring | LabelSeen]]) -> tuple[list[Routed], bool]:
        items, labels = _split(self._items(groups))
        self._pass_on(FraudStage.DIRECTORY, labels)
        self.shard.learn_many(items)
        _ENTITIES.report("shoppers", self.shard, len(self.shard.shoppers))
        self.router.add_many(FraudStage.DIRECTORY, [item.payment_id for item in items], items)
        return self.router.drain(), _RETAIN


class DirectoryStage:
    """Builds the `directory` step (keyed by payment id): each payment's store, for its label to find."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _Logic:
        s = self.settings
        shard = _resume(resume, lambda: DirectoryShard(s.fraud.label_horizon_s, 4 * s.fraud.label_max_pending))
        return _DirectoryLogic(shard, s)


class _DirectoryLogic(_Logic):
    shard: DirectoryShard

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        payments, labels, store_labels = self.shard.learn_many(self._items(groups))
        _ENTITIES.report("payment_stores", self.shard, len(self.shard.directory))
        router = self.router
        router.add_many(FraudStage.REGISTERS, [_store_key(item) for item in payments], payments)
        router.add_many(FraudStage.REGISTERS, [label.store_id for label in store_labels], store_labels)
        self._pass_on(FraudStage.REGISTERS, labels)
        return router.drain(), _RETAIN


def _store_key(item: Scoring) -> str:
    """The store a payment or till action is keyed on in the `registers` step (its payment id without one)."""
    payment, action = item.payment, item.action
    if payment is not None and payment.store_id:
        return payment.store_id
    return action.store_id if action is not None else item.payment_id


class _RulesLogic(_Logic):
    """A shard that reads the rules file in force (`watch.current()`: a reloaded file swaps in live)."""

    watch: RulesWatch

    def configure(self, settings: Settings) -> None:
        """Anything else the logic takes from the settings (called once it is built)."""


class _RulesStage:
    """Builds a stage whose shard reads the rules file: registers, scorer and fraud alerts share this wiring.

    Each watches the file through `flows.rules_watch.rules_watch` (one watch per file and settings in a
    process); a new shard starts with the rules in force, a recovered one is handed them at its next batch.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def logic(self) -> type[_RulesLogic]:
        """The stage's logic class."""
        raise NotImplementedError

    def fresh(self, rules: RuleBook) -> Any:
        """A new shard of this stage, under `rules`."""
        raise NotImplementedError

    def __call__(self, resume: bytes | None) -> _Logic:
        s = self.settings
        watch = rules_watch(s.fraud.rules_path, s.fraud.rules_check_s, s.fraud.review_threshold,
                            s.fraud.block_threshold)  # fmt: skip
        logic = self.logic()(_resume(resume, lambda: self.fresh(watch.current())), s)
        logic.watch = watch
        logic.configure(s)
        return logic


class RegisterStage(_RulesStage):
    """Builds the `registers` step: cashier behaviour for sales, refund-abuse alerts; payments on to the scorer."""

    def logic(self) -> type[_RulesLogic]:
        return _RegisterLogic

    def fresh(self, rules: RuleBook) -> RegisterShard:
        return RegisterShard(rules, self.settings.fraud.alert_quiet_s, self.settings.fraud.max_entities)


class _RegisterLogic(_RulesLogic):
    shard: RegisterShard

    def on_batch(self, groups: list[list[Scoring | StoreLabel | LabelSeen]]) -> tuple[list[Routed], bool]:
        items, labels = _split(self._items(groups))
        self._pass_on(FraudStage.SCORER, labels)
        to_score, alerts = self.shard.learn_many(items, self.watch.current())
        _ENTITIES.report("stores", self.shard, len(self.shard.stores))
        self.router.add_many(FraudStage.SCORER, [item.payment_id for item in to_score], to_score)
        self._sink(alerts)
        return self.router.drain(), _RETAIN


class ScorerStage(_RulesStage):
    """Builds the `scorer` step: scores payments in one batch, learns labels and normal traffic."""

    def logic(self) -> type[_RulesLogic]:
        return _ScorerLogic

    def fresh(self, rules: RuleBook) -> ScorerShard:
        s = self.settings
        pending = PendingPayments(horizon_s=s.fraud.label_horizon_s, maturity_s=s.fraud.label_maturity_s,
                                  max_payments=s.fraud.label_max_pending)  # fmt: skip
        budget = DecisionBudget(s.fraud.review_budget_per_day / s.fraud.scorer_shards, s.fraud.block_precision)
        scorer = FraudScorer(rules, mode=s.fraud.scorer_mode, budget=budget)
        return ScorerShard(scorer, pending, chunk_s=s.fraud.learn_chunk_s)


class _ScorerLogic(_RulesLogic):
    shard: ScorerShard
    ttl_s: float
    shards: int

    def configure(self, settings: Settings) -> None:
        self.ttl_s, self.shards = settings.fraud.score_ttl_s, settings.fraud.scorer_shards

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        shard = self.shard
        items = self._items(groups)
        if shard.shard is None:
            shard.shard = zlib.crc32(items[0].payment_id.encode()) % self.shards
        batch = shard.learn_many(items, self.watch.current())
        _count(batch)
        ttl_s, score_key = self.ttl_s, keys.score
        self._sink([FencedDoc(score_key(p.payment_id), 1, _score_doc(p, v), ttl_s, p.ts) for p, v in batch.scored])
        if batch.chunks_closed:  # the model document changes only when a chunk is learned: at most once a batch
            self._sink(_model_doc(shard))
        self._sink([_label_dead_letter(seen, reason) for seen, reason in batch.refused])
        _ENTITIES.report("pending_labels", shard, len(shard.pending))
        if batch.suspicious or shard.clock > float("-inf"):
            self.router.add_to_single(FraudStage.FRAUD_ALERTS, ShardVerdicts(batch.suspicious, shard.clock))
        return self.router.drain(), _RETAIN


def _count(batch: ScorerBatch) -> None:
    decisions: Counter[str] = Counter(verdict.decision for _, verdict in batch.scored)
    for decision, n in decisions.items():
        _DECISIONS[decision].inc(n)
    if batch.scored:
        observe_many(_SCORES, [verdict.score for _, verdict in batch.scored])
    for outcome, n in (("fraud", batch.fraud_labels), ("legit", batch.legit_labels),
                       ("unmatched", batch.unmatched_labels), ("presumed_legit", batch.presumed_legit)):  # fmt: skip
        if n:
            _LABELS[outcome].inc(n)


def _score_doc(payment: Payment, verdict: FraudScore) -> bytes:
    """The `GET /v1/scores/{id}` document; `scored_at` is the payment's event time (replays give the same bytes)."""
    return orjson.dumps({
        "payment_id": payment.payment_id,
        "score": verdict.score,
        "decision": verdict.decision,
        "reasons": verdict.reasons,
        "model_version": verdict.model_version,
        "scored_at": rfc3339_ms(payment.ts),
    })  # fmt: skip


def _label_dead_letter(seen: LabelSeen, reason: str) -> DeadLetter:
    """A label that teaches nothing, as a dead letter named by where it was read (a re-read is the same record)."""
    return DeadLetter.of(seen.topic, seen.partition, seen.offset, f"{reason} ({seen.payment_id})",
                         msgspec.json.encode(seen.label))  # fmt: skip


def _model_doc(shard: ScorerShard) -> list[FencedDoc]:
    """The shard's model document, when its model changed since the last one."""
    version = shard.next_model_version()
    if version is None:
        return []
    scorer, index = shard.scorer, shard.shard or 0
    FRAUD_MODEL_UPDATES.labels(FLOW, str(index)).set(scorer.model.updates)
    doc = orjson.dumps({
        "shard": index,
        "model_version": version,
        "rules_version": scorer.rules.version,
        "supervised_updates": scorer.model.updates,
        "fraud_labels_learned": scorer.model.positives,
        "supervised_ready": scorer.supervised_ready,
        "examples_buffered": scorer.examples_buffered,
        "pending_labels": len(shard.pending),
        "pending_bytes": shard.pending.nbytes,
        "bytes_per_pending_payment": shard.pending.bytes_per_payment,
        "labels_waiting_for_payment": len(shard.pending.waiting),
        "labels": shard.totals,
        "as_of": rfc3339_ms(shard.clock) if shard.clock > float("-inf") else None,
    })  # fmt: skip
    return [FencedDoc(keys.fraud_model(index), shard.doc_version, doc)]


class FraudAlertStage(_RulesStage):
    """Builds the `fraud_alerts` step (one key): one open alert per card or shopper, escalations, resolutions."""

    def logic(self) -> type[_RulesLogic]:
        return _FraudAlertLogic

    def fresh(self, rules: RuleBook) -> FraudAlertDesk:
        return FraudAlertDesk(rules, self.settings.fraud.alert_quiet_s, self.settings.fraud.max_entities)


class _FraudAlertLogic(_RulesLogic):
    shard: FraudAlertDesk
    ordered = False  # verdict batches, in the order the scorer shards sent them

    def on_batch(self, groups: list[list[ShardVerdicts]]) -> tuple[list[Routed], bool]:
        book = self.shard.alerts.book
        joined = book.late_joined
        self._sink(self.shard.learn_many(self._items(groups), self.watch.current()))
        if book.late_joined != joined:
            _LATE_JOINED.inc(book.late_joined - joined)
        _ENTITIES.report("open_fraud_alerts", self.shard, len(self.shard.alerts.book))
        return self.router.drain(), _RETAIN


class OpsStage:
    """Builds the `ops` step (one key, so silence is judged against the whole flow's clock)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _Logic:
        s = self.settings
        logic = _OpsLogic(_resume(resume, lambda: OperationsDesk(s.ops.silence_store_s, s.ops.silence_register_s)), s)
        logic.tick_s = s.ops.tick_s
        return logic


class _OpsLogic(_Logic):
    shard: OperationsDesk
    ordered = False  # ops signals keep their own clocks (operators.fraud.shards.OperationsDesk)
    tick_s: float

    def on_batch(self, groups: list[list[OpsSignal]]) -> tuple[list[Routed], bool]:
        alerts: list[Alert] = self.shard.learn_many(self._items(groups), self.tick_s)
        self._sink(alerts)
        return self.router.drain(), _RETAIN
