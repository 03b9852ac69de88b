"""Fraud flow: every card payment scored within a second; fraud and operational alerts raised once.

Consumes `omni.pos` (sales, returns, voids), the `purchase` events of `omni.clickstream`,
the shrink adjustments of `omni.inventory`, `omni.labels` (fraud labels, days later) and
`omni.dlq` (dead letters, for their rate per source topic). Writes each payment's score to
Redis (`GET /v1/scores/{id}`, with a time to live), each scorer shard's model document,
and alerts to `omni.alerts` and its Redis stream.

```
fraud_in → decode ─┬─ payments (grouped per card shard) → cards → shoppers → registers ─┐
                   ├─ labels (grouped per scorer shard) ──────────────────────────────────┴→ scorer ─┬→ records_out
                   ├─ sales, shrink, dead letters, event clock → ops (one key) ───────────────────────┤
                   └─ malformed labels (this flow owns their dead letters) ──────────────────────────┤
                                         scorer: suspicious payments + its clock → fraud_alerts ─────┘
```

Items between steps are *groups*: one list of payments per shard per batch, so Bytewax's
per-item cost is paid per group, not per payment (the whole flow must do ≥ 15k payments/s
per worker). Keys are shards of the entity (`crc32(id) % shards`, stable across processes),
and each shard holds a bounded cache of entities (`operators.entity_cache`): a stream with
a new card on every guest checkout still runs in fixed memory.

A label reaches the scorer shard that scored its payment because both are keyed by the
payment id (`txn_id` / `order_id`): that shard kept the model input the payment was scored
with (`LabelJoin`) and learns from it. Fraud alerts are de-duplicated per card or shopper
in one keyed step (`fraud_alerts`), so a card-testing burst spread over several scorer
shards still raises one alert.

Malformed pos/clickstream/inventory events are skipped and counted (the inventory flow
dead-letters them, `flows.dead_letters`); malformed labels go to the dead-letter stream.

Run it with `omnistream flow fraud` (or `python -m flows.run fraud`).
"""

from __future__ import annotations

import logging
import pickle
import zlib
from collections import Counter
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from events.alerts import Alert
from events.dead_letter import DeadLetter
from events.decode import decode
from events.models import Adjustment, FraudLabel, Sale, event_type
from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.dead_letters import owns_dead_letters
from flows.kafka_source import kafka_source
from flows.metrics import (
    DUPLICATES,
    EVENTS_IN,
    FRAUD_DECISIONS,
    FRAUD_LABELS,
    FRAUD_MODEL_UPDATES,
    FRAUD_SCORES,
    SKIPPED,
    StateEntities,
    observe_many,
)
from flows.rules_watch import RulesWatch, rules_watch
from flows.sinks import RecordSink
from omnistream.settings import Settings
from operators.entity_cache import EntityCache, RecentIds
from operators.fraud.alerts import FraudAlerts
from operators.fraud.features import CardVelocity, OrderChecks, RegisterBehaviour, ShopperHistory
from operators.fraud.operations import DeadLetterRate, SalesPulse, ShrinkWatch
from operators.fraud.payments import Payment, TillAction, payment_of, till_action_of
from operators.fraud.scorer import FraudScore, FraudScorer
from operators.fraud.supervised import LabelJoin
from state import keys
from state.doc_writer import FencedDoc
from state.fraud_reader import parse_time

FLOW = "fraud"
log = logging.getLogger(__name__)

OPS_KEY = "ops"
FRAUD_ALERTS_KEY = "fraud_alerts"
SINK_KEY = "sink"
_RETAIN = StatefulBatchLogic.RETAIN
# Metric children resolved once: `labels()` costs more than the increment (docs/performance.md).
_DUPLICATES = DUPLICATES.labels(FLOW)
_SCORES = FRAUD_SCORES.labels(FLOW)
_DECISIONS = {decision: FRAUD_DECISIONS.labels(FLOW, decision) for decision in ("allow", "review", "block")}


class Scoring:
    """One payment (or register action) on its way through the keyed stages, gathering features.

    `payment` is None for returns and voids: they only feed register behaviour. `features`
    grows at each stage (card, shopper, register) and is scored at the end.
    """

    __slots__ = ("action", "event_id", "features", "payment", "ts")

    def __init__(self, payment: Payment | None, action: TillAction | None, event_id: str, ts: float) -> None:
        self.payment = payment
        self.action = action
        self.event_id = event_id
        self.ts = ts
        self.features: dict[str, float] = {}

    def __getstate__(self) -> tuple[Any, ...]:
        return self.payment, self.action, self.event_id, self.ts, self.features

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.payment, self.action, self.event_id, self.ts, self.features = state

    @property
    def payment_id(self) -> str:
        if self.payment is not None:
            return self.payment.payment_id
        return self.action.txn_id if self.action is not None else self.event_id


class Shards:
    """Stable shard keys: `crc32(id) % count`, the same in every process and after a restart.

    >>> shards = Shards(4)
    >>> shards.key("card", "tok_1") == shards.key("card", "tok_1"), shards.key("card", "tok_1")[:5]
    (True, 'card:')
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._keys = {stage: [f"{stage}:{i}" for i in range(count)] for stage in ("card", "user", "store", "scorer")}

    def index(self, entity_id: str) -> int:
        return zlib.crc32(entity_id.encode()) % self.count

    def key(self, stage: str, entity_id: str) -> str:
        return self._keys[stage][zlib.crc32(entity_id.encode()) % self.count]


def build_flow(settings: Settings, generation: str = "") -> Dataflow:
    """Payments, labels, till actions, shrink and dead letters in; scores, model documents and alerts out."""
    flow = Dataflow(FLOW)
    shards = Shards(settings.fraud.shards)
    source_topics = {settings.topic(t): t for t in (Topic.POS, Topic.CLICKSTREAM, Topic.INVENTORY, Topic.LABELS,
                                                    Topic.DLQ)}  # fmt: skip
    raw = op.input("fraud_in", flow, kafka_source(settings, list(source_topics)))
    groups = op.flat_map_batch("decode", raw, Decoder(source_topics, shards).decode_batch)
    to_cards = op.branch("is_card_group", groups, _stage_is("card"))
    cards = op.stateful_batch("cards", to_cards.trues, CardStage(settings, shards))
    shoppers = op.stateful_batch("shoppers", op.map("to_shoppers", cards, _NEXT), ShopperStage(settings, shards))
    registers = op.stateful_batch("registers", op.map("to_registers", shoppers, _NEXT), RegisterStage(settings, shards))
    till_alerts = op.branch("is_till_alert", op.map("registers_out", registers, _NEXT), _stage_is(SINK_KEY))
    to_scorer = op.branch("is_label_group", to_cards.falses, _stage_is("scorer"))
    scorer_in = op.merge("scorer_in", till_alerts.falses, to_scorer.trues)
    scored = op.map("scored", op.stateful_batch("scorer", scorer_in, ScorerStage(settings, shards)), _NEXT)
    to_alerts = op.branch("is_alert_input", scored, _stage_is(FRAUD_ALERTS_KEY))
    fraud_alerts = op.stateful_batch("fraud_alerts", to_alerts.trues, FraudAlertStage(settings))
    to_ops = op.branch("is_ops_group", to_scorer.falses, _stage_is(OPS_KEY))
    ops = op.stateful_batch("ops", to_ops.trues, OpsStage(settings))
    # What is left of the decoder's output: malformed labels (this flow owns them).
    records = op.merge("records", to_alerts.falses, till_alerts.trues, op.map("alerts_out", fraud_alerts, _NEXT),
                       op.map("ops_out", ops, _NEXT), to_ops.falses)  # fmt: skip
    op.output("records_out", op.flat_map("ungroup", records, itemgetter(1)), RecordSink(FLOW, settings, generation))
    return flow


_NEXT = itemgetter(1)
"""A stage emits `(next key, group)`; Bytewax outputs `(its key, that)`: the next stage's keyed item is the value."""


def _stage_is(stage: str) -> Callable[[tuple[str, Any]], bool]:
    """Whether a keyed group is bound for `stage`: one key (`ops`, `fraud_alerts`, `sink`) or its shards (`card:3`)."""
    if stage in (OPS_KEY, FRAUD_ALERTS_KEY, SINK_KEY):
        return lambda item: item[0] == stage
    prefix = stage + ":"
    return lambda item: item[0].startswith(prefix)


# --------------------------------------------------------------------------------------------- decode


class Decoder:
    """Raw Kafka messages to keyed groups: payments per card shard, labels per scorer shard, ops signals.

    Never raises. Clickstream events other than `purchase` and inventory events other than
    `adjustment` are not this flow's business and are passed over without decoding (a
    substring test on the raw bytes; a false positive only costs a decode).
    """

    def __init__(self, source_topics: dict[str, Topic], shards: Shards) -> None:
        self.source_topics = source_topics
        self.shards = shards
        self._topics = {name: (topic, topic.value) for name, topic in source_topics.items()}

    def decode_batch(self, records: list[Any]) -> list[tuple[str, list[Any]]]:
        groups: dict[str, list[Any]] = {}
        ops: list[tuple[Any, ...]] = []
        letters: list[Any] = []
        seen: Counter[tuple[str, str]] = Counter()
        skipped: Counter[str] = Counter()
        pos, click, inventory, labels, dlq = Topic.POS, Topic.CLICKSTREAM, Topic.INVENTORY, Topic.LABELS, Topic.DLQ
        key = self.shards.key
        for record in records:
            topic, topic_value = self._topics[record.topic]
            value = record.value
            if record.error is not None or value is None:
                if topic is labels:
                    letters.append(DeadLetter.of(record.topic, record.partition, record.offset,
                                                 f"Kafka error: {record.error}", value))  # fmt: skip
                elif topic is not dlq:
                    skipped[topic_value] += 1
                continue
            if topic is dlq:
                signal = _dead_letter_signal(value)
                if signal is not None:
                    ops.append(signal)
                continue
            if (topic is click and b'"purchase"' not in value) or (topic is inventory and b'"adjustment"' not in value):
                continue
            event = decode(topic, value, source_topic=record.topic, partition=record.partition, offset=record.offset)
            if type(event) is DeadLetter:
                if owns_dead_letters(FLOW, topic):
                    letters.append(event)
                else:
                    skipped[topic_value] += 1
                continue
            seen[topic_value, event_type(event)] += 1
            if topic is labels:
                label: FraudLabel = event  # type: ignore[assignment]
                groups.setdefault(key("scorer", label.txn_id or label.order_id or ""), []).append(label)
                continue
            ts = event.ts.timestamp()
            if topic is inventory:
                if type(event) is Adjustment and event.reason == "shrink" and event.qty < 0:
                    ops.append(("shrink", event.location_id, -event.qty, ts))
                continue
            payment = payment_of(event)
            action = till_action_of(event) if topic is pos else None
            if payment is None and action is None:
                continue
            item = Scoring(payment, action, event.event_id, ts)
            card = payment.card_token if payment is not None and payment.card_token else item.payment_id
            groups.setdefault(key("card", card), []).append(item)
            if type(event) is Sale:
                ops.append(("sale", event.store_id, event.register_id, ts))
            else:
                ops.append(("clock", ts))
        for (topic_name, type_name), n in seen.items():
            EVENTS_IN.labels(FLOW, topic_name, type_name).inc(n)
        for topic_name, n in skipped.items():
            SKIPPED.labels(FLOW, topic_name).inc(n)
        out: list[tuple[str, list[Any]]] = list(groups.items())
        if ops:
            out.append((OPS_KEY, ops))
        if letters:
            out.append((SINK_KEY, letters))
        return out


def _dead_letter_signal(value: bytes) -> tuple[str, str, float] | None:
    """`("dlq", source_topic, ts)` of a dead-letter record, or None for a record that is not one."""
    try:
        record = orjson.loads(value)
        source_topic, ts = record["source_topic"], record["ts"]
        return ("dlq", str(source_topic), parse_time(str(ts)))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------- stages


class _Stage(StatefulBatchLogic[list[Any], tuple[str, list[Any]], bytes]):
    """A keyed shard's logic: `state` is pickled whole at every snapshot."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


def _resume(resume: bytes | None, make: Callable[[], Any]) -> Any:
    return pickle.loads(resume) if resume is not None else make()


def _regroup(items: list[Scoring], key_of: Callable[[Scoring], str]) -> list[tuple[str, list[Any]]]:
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(key_of(item), []).append(item)
    return list(groups.items())


class CardState:
    """One card shard: velocity per card token (bounded LRU) and the recent event ids (retries)."""

    def __init__(self, max_cards: int, max_ids: int) -> None:
        self.cards: EntityCache[CardVelocity] = EntityCache(max_cards)
        self.recent = RecentIds(max_ids)


class CardStage:
    """Builds the `cards` step: drops producer retries, adds card-velocity features."""

    def __init__(self, settings: Settings, shards: Shards) -> None:
        self.shards = shards
        self.max_cards = settings.fraud.max_entities
        self.max_ids = settings.fraud.dedup_ids

    def __call__(self, resume: bytes | None) -> _Stage:
        logic = _CardLogic(_resume(resume, lambda: CardState(self.max_cards, self.max_ids)))
        logic.shards = self.shards
        return logic


class _CardLogic(_Stage):
    shards: Shards

    def on_batch(self, groups: list[list[Scoring]]) -> tuple[list[tuple[str, Any]], bool]:
        state: CardState = self.state
        cards, recent, checks = state.cards, state.recent, _CHECKS
        kept: list[Scoring] = []
        duplicates = 0
        for group in groups:
            for item in group:
                if not recent.add(item.event_id):
                    duplicates += 1
                    continue
                payment = item.payment
                if payment is not None:
                    features = checks.learn_one(payment)
                    if payment.card_token:
                        features.update(cards.get_or_make(payment.card_token, CardVelocity).learn_one(payment))
                    item.features = features
                kept.append(item)
        if duplicates:
            _DUPLICATES.inc(duplicates)
        _ENTITIES.report("cards", state, len(cards))
        key = self.shards.key
        out = _regroup(kept, lambda s: key("user", s.payment.user_id if s.payment and s.payment.user_id
                                           else s.payment_id))  # fmt: skip
        return out, _RETAIN


_CHECKS = OrderChecks()


class ShopperStage:
    """Builds the `shoppers` step: adds the shopper's history features (bounded LRU of shoppers)."""

    def __init__(self, settings: Settings, shards: Shards) -> None:
        self.shards = shards
        self.max_users = settings.fraud.max_entities

    def __call__(self, resume: bytes | None) -> _Stage:
        logic = _ShopperLogic(_resume(resume, lambda: EntityCache[ShopperHistory](self.max_users)))
        logic.shards = self.shards
        return logic


class _ShopperLogic(_Stage):
    shards: Shards

    def on_batch(self, groups: list[list[Scoring]]) -> tuple[list[tuple[str, Any]], bool]:
        users: EntityCache[ShopperHistory] = self.state
        items: list[Scoring] = []
        for group in groups:
            for item in group:
                payment = item.payment
                if payment is not None and payment.user_id:
                    item.features.update(users.get_or_make(payment.user_id, ShopperHistory).learn_one(payment))
                items.append(item)
        _ENTITIES.report("shoppers", users, len(users))
        key = self.shards.key
        out = _regroup(items, lambda s: key("store", s.action.store_id) if s.action is not None
                       else key("store", s.payment_id))  # fmt: skip
        return out, _RETAIN


class RegisterState:
    """One store shard: register behaviour per store, the till alerts (per cashier) and the shard's clock."""

    def __init__(self, rules: Any, quiet_s: float, max_stores: int) -> None:
        self.stores: EntityCache[RegisterBehaviour] = EntityCache(max_stores)
        self.alerts = FraudAlerts(rules, quiet_s=quiet_s)
        self.clock = float("-inf")


class RegisterStage:
    """Builds the `registers` step: cashier behaviour features for sales; refund-abuse alerts for returns/voids."""

    def __init__(self, settings: Settings, shards: Shards) -> None:
        self.shards = shards
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _Stage:
        watch = _watch(self.settings)
        state = _resume(resume, lambda: RegisterState(watch.current(), self.settings.fraud.alert_quiet_s,
                                                      self.settings.fraud.max_entities))  # fmt: skip
        logic = _RegisterLogic(state)
        logic.shards, logic.watch = self.shards, watch
        return logic


class _RegisterLogic(_Stage):
    shards: Shards
    watch: RulesWatch

    def on_batch(self, groups: list[list[Scoring]]) -> tuple[list[tuple[str, Any]], bool]:
        state: RegisterState = self.state
        rules = self.watch.current()
        if rules is not state.alerts.rules:
            state.alerts.set_rules(rules)
        stores = state.stores
        to_score: list[Scoring] = []
        alerts: list[Alert] = []
        clock = state.clock
        for group in groups:
            for item in group:
                action = item.action
                if action is not None:
                    register = stores.get_or_make(action.store_id, RegisterBehaviour).learn_one(action)
                    clock = max(clock, action.ts)
                    if item.payment is None:
                        alerts += state.alerts.learn_till_one(action, register)
                        continue
                    item.features.update(register)
                if item.payment is not None:
                    to_score.append(item)
        if clock > state.clock:
            state.clock = clock
            alerts += state.alerts.sweep(clock)
        _ENTITIES.report("stores", state, len(stores))
        key = self.shards.key
        out: list[tuple[str, Any]] = _regroup(to_score, lambda s: key("scorer", s.payment_id))
        if alerts:
            out.append((SINK_KEY, alerts))
        return out, _RETAIN


class ScorerState:
    """One scorer shard: the scorer (rules, anomaly model, supervised model), the label join, model doc version."""

    def __init__(self, scorer: FraudScorer, join: LabelJoin) -> None:
        self.scorer = scorer
        self.join = join
        self.clock = float("-inf")
        self.shard: int | None = None
        self.doc_version = 0
        self.published_version = ""


class ScorerStage:
    """Builds the `scorer` step: scores payments in one batch, learns labels and normal traffic."""

    def __init__(self, settings: Settings, shards: Shards) -> None:
        self.settings = settings
        self.shards = shards

    def __call__(self, resume: bytes | None) -> _Stage:
        settings = self.settings
        watch = _watch(settings)

        def fresh() -> ScorerState:
            join = LabelJoin(presume_legit_after_s=settings.fraud.label_retention_s,
                             retention_s=settings.fraud.label_retention_s,
                             max_entries=settings.fraud.label_max_pending)  # fmt: skip
            return ScorerState(FraudScorer(watch.current()), join)

        logic = _ScorerLogic(_resume(resume, fresh))
        logic.watch, logic.ttl_s, logic.shards = watch, settings.fraud.score_ttl_s, self.shards
        return logic


class _ScorerLogic(_Stage):
    watch: RulesWatch
    ttl_s: float
    shards: Shards

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[tuple[str, Any]], bool]:
        state: ScorerState = self.state
        scorer, join = state.scorer, state.join
        rules = self.watch.current()
        if rules is not scorer.rules:
            scorer.set_rules(rules)
        items: list[Scoring] = []
        label_inputs: list[list[float]] = []
        label_values: list[bool] = []
        unmatched = 0
        clock = state.clock
        for group in groups:
            for item in group:
                if type(item) is Scoring:
                    items.append(item)
                    if item.ts > clock:
                        clock = item.ts
                    continue
                label: FraudLabel = item
                model_input = join.take(label.txn_id or label.order_id or "")
                if model_input is None:
                    unmatched += 1  # scored by nobody here, or past the label retention
                else:
                    label_inputs.append(model_input)
                    label_values.append(label.label == "fraud")
        if state.shard is None:
            first = groups[0][0]
            state.shard = self.shards.index(first.payment_id if type(first) is Scoring
                                            else first.txn_id or first.order_id or "")  # fmt: skip
        # One numpy pass scores the batch and teaches the anomaly model (operators.fraud.scorer).
        verdicts, inputs = scorer.score_batch([item.features for item in items], learn=True)
        docs: list[Any] = []
        suspicious: list[tuple[Payment, FraudScore]] = []
        decisions: Counter[str] = Counter()
        ttl_s, score_key = self.ttl_s, keys.score
        payments: list[Payment] = [item.payment for item in items]  # type: ignore[misc]
        for payment, verdict in zip(payments, verdicts, strict=True):
            docs.append(FencedDoc(score_key(payment.payment_id), 1, _score_doc(payment, verdict), ttl_s, payment.ts))
            decisions[verdict.decision] += 1
            if verdict.decision != "allow":
                suspicious.append((payment, verdict))
        if payments:
            join.remember_many([p.payment_id for p in payments], [p.ts for p in payments], inputs)
        _count_labels(label_values, unmatched)
        if label_inputs:
            scorer.learn_labels(label_inputs, label_values)
        if clock > state.clock:
            state.clock = clock
        # Every batch, not only when the clock moves: payments read after a later partition advanced the
        # clock are already past the wait, and would otherwise wait for the next advance.
        matured = join.mature(state.clock)  # no label by now: presumed legitimate (operators.fraud.supervised)
        if len(matured):
            FRAUD_LABELS.labels(FLOW, "presumed_legit").inc(len(matured))
            scorer.learn_labels(matured, [False] * len(matured))
        for decision, n in decisions.items():
            _DECISIONS[decision].inc(n)
        if verdicts:
            observe_many(_SCORES, [v.score for v in verdicts])
        docs += self._model_doc(state, scorer)
        _ENTITIES.report("pending_labels", state, len(join))
        out: list[tuple[str, Any]] = []
        if docs:
            out.append((SINK_KEY, docs))
        if suspicious or clock > float("-inf"):
            out.append((FRAUD_ALERTS_KEY, [(suspicious, state.clock)]))
        return out, _RETAIN

    def _model_doc(self, state: ScorerState, scorer: FraudScorer) -> list[FencedDoc]:
        version = scorer.model_version
        if version == state.published_version:
            return []
        state.published_version = version
        state.doc_version += 1
        shard = state.shard or 0
        FRAUD_MODEL_UPDATES.labels(FLOW, str(shard)).set(scorer.model.updates)
        doc = orjson.dumps({
            "shard": shard,
            "model_version": version,
            "rules_version": scorer.rules.version,
            "supervised_updates": scorer.model.updates,
            "fraud_labels_learned": scorer.model.positives,
            "supervised_ready": scorer.supervised_ready,
            "pending_labels": len(state.join),
            "as_of": rfc3339_ms(state.clock) if state.clock > float("-inf") else None,
        })  # fmt: skip
        return [FencedDoc(keys.fraud_model(shard), state.doc_version, doc)]


def _count_labels(label_values: list[bool], unmatched: int) -> None:
    fraud = sum(label_values)
    if fraud:
        FRAUD_LABELS.labels(FLOW, "fraud").inc(fraud)
    if len(label_values) > fraud:
        FRAUD_LABELS.labels(FLOW, "legit").inc(len(label_values) - fraud)
    if unmatched:
        FRAUD_LABELS.labels(FLOW, "unmatched").inc(unmatched)


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


class FraudAlertState:
    """The open fraud alerts, one per card or shopper, and the newest event time any scorer shard reported."""

    def __init__(self, rules: Any, quiet_s: float, max_open: int) -> None:
        self.alerts = FraudAlerts(rules, quiet_s=quiet_s, max_open=max_open)
        self.clock = float("-inf")


class FraudAlertStage:
    """Builds the `fraud_alerts` step (one key): one open alert per entity, escalations, resolutions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _Stage:
        watch = _watch(self.settings)
        state = _resume(resume, lambda: FraudAlertState(watch.current(), self.settings.fraud.alert_quiet_s,
                                                        self.settings.fraud.max_entities))  # fmt: skip
        logic = _FraudAlertLogic(state)
        logic.watch = watch
        return logic


class _FraudAlertLogic(_Stage):
    watch: RulesWatch

    def on_batch(
        self, groups: list[list[tuple[list[tuple[Payment, FraudScore]], float]]]
    ) -> tuple[list[tuple[str, Any]], bool]:
        state: FraudAlertState = self.state
        rules = self.watch.current()
        if rules is not state.alerts.rules:
            state.alerts.set_rules(rules)
        alerts: list[Alert] = []
        clock = state.clock
        for group in groups:
            for suspicious, shard_clock in group:
                for payment, verdict in suspicious:
                    alerts += state.alerts.learn_one(payment, verdict)
                clock = max(clock, shard_clock)
        if clock > state.clock:
            state.clock = clock
            alerts += state.alerts.sweep(clock)
        _ENTITIES.report("open_fraud_alerts", state, len(state.alerts.book))
        return ([(SINK_KEY, alerts)] if alerts else []), _RETAIN


class OpsState:
    """Operational watchers: sales pulse (stores, registers), shrink spikes, dead-letter bursts, and their clocks.

    Sales and shrink run on the event time of the traffic; dead letters on their own records'
    time (when they were dead-lettered), a different clock that must not move the other.
    """

    def __init__(self, settings: Settings) -> None:
        self.pulse = SalesPulse(store_min_silence_s=settings.ops.silence_store_s,
                                register_min_silence_s=settings.ops.silence_register_s)  # fmt: skip
        self.shrink = ShrinkWatch()
        self.dead_letters = DeadLetterRate()
        self.clock = float("-inf")
        self.ticked = float("-inf")
        self.dlq_clock = float("-inf")


class OpsStage:
    """Builds the `ops` step (one key, so silence is judged against the whole chain's clock)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _Stage:
        logic = _OpsLogic(_resume(resume, lambda: OpsState(self.settings)))
        logic.tick_s = self.settings.ops.tick_s
        return logic


class _OpsLogic(_Stage):
    tick_s: float

    def on_batch(self, groups: list[list[tuple[Any, ...]]]) -> tuple[list[tuple[str, Any]], bool]:
        state: OpsState = self.state
        pulse, shrink, dead_letters = state.pulse, state.shrink, state.dead_letters
        alerts: list[Alert] = []
        clock, dlq_clock = state.clock, state.dlq_clock
        for group in groups:
            for signal in group:
                kind = signal[0]
                if kind == "sale":
                    alerts += pulse.learn_one(signal[1], signal[2], signal[3])
                    clock = max(clock, signal[3])
                elif kind == "clock":
                    clock = max(clock, signal[1])
                elif kind == "shrink":
                    alerts += shrink.learn_one(signal[1], signal[2], signal[3])
                    clock = max(clock, signal[3])
                else:  # "dlq"
                    alerts += dead_letters.learn_one(signal[1], signal[2])
                    dlq_clock = max(dlq_clock, signal[2])
        state.clock = clock
        if clock - state.ticked >= self.tick_s:
            state.ticked = clock
            alerts += pulse.tick(clock)
            alerts += shrink.tick(clock)
        if dlq_clock > state.dlq_clock:
            state.dlq_clock = dlq_clock
            alerts += dead_letters.tick(dlq_clock)
        return ([(SINK_KEY, alerts)] if alerts else []), _RETAIN


_ENTITIES = StateEntities(FLOW)


def _watch(settings: Settings) -> RulesWatch:
    return rules_watch(settings.fraud.rules_path, settings.fraud.rules_check_s, settings.fraud.review_threshold,
                       settings.fraud.block_threshold)  # fmt: skip


__all__ = ["FLOW", "build_flow"]
