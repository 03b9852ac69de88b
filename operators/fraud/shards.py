"""The state of one shard of each fraud stage, and what it does with one batch.

The fraud flow spreads its work over keyed stages (cards, shoppers, registers, scorer,
fraud alerts, operations); each keyed shard holds one of these objects, pickled whole at
every snapshot. They are pure: Bytewax, metrics and Redis documents stay in the flow
(`flows/fraud_stages.py`), so these are tested without either, and the quality harness,
which runs the flow itself, measures exactly this logic.

Time is always the events' `ts`: each shard keeps its own event clock (the newest time it
has seen), since its inputs arrive from several Kafka partitions interleaved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from events.alerts import Alert
from events.models import FraudLabel
from operators.entity_cache import EntityCache, RecentIds
from operators.fraud.alerts import FraudAlerts
from operators.fraud.features import CardVelocity, OrderChecks, RegisterBehaviour, ShopperHistory
from operators.fraud.operations import DeadLetterRate, SalesPulse, ShrinkWatch
from operators.fraud.payments import Payment
from operators.fraud.records import DeadLetterSeen, OpsSignal, SaleSeen, Scoring, ShardVerdicts, ShrinkSeen
from operators.fraud.rules import RuleBook
from operators.fraud.scorer import FraudScore, FraudScorer
from operators.fraud.supervised import LabelJoin

_NEVER = float("-inf")
_CHECKS = OrderChecks()  # stateless


class CardShard:
    """Drops producer retries (the same `event_id`), adds order checks and card-velocity features.

    Parameters
    ----------
    max_cards
        Cards whose velocity is kept at most (least recently used go first).
    max_ids
        Recent event ids remembered against retries.
    """

    def __init__(self, max_cards: int, max_ids: int) -> None:
        self.cards: EntityCache[CardVelocity] = EntityCache(max_cards)
        self.recent = RecentIds(max_ids)

    def learn_many(self, items: Sequence[Scoring]) -> list[Scoring]:
        """The items that are not retries, payments with their first features; retries are left out."""
        cards, recent, checks = self.cards, self.recent, _CHECKS
        kept: list[Scoring] = []
        for item in items:
            if not recent.add(item.event_id):
                continue
            payment = item.payment
            if payment is not None:
                features = checks.learn_one(payment)
                if payment.card_token:
                    features.update(cards.get_or_make(payment.card_token, CardVelocity).learn_one(payment))
                item.features = features
            kept.append(item)
        return kept


class ShopperShard:
    """Adds the shopper's history features to payments of known shoppers (bounded LRU of shoppers)."""

    def __init__(self, max_shoppers: int) -> None:
        self.shoppers: EntityCache[ShopperHistory] = EntityCache(max_shoppers)

    def learn_many(self, items: Sequence[Scoring]) -> None:
        shoppers = self.shoppers
        for item in items:
            payment = item.payment
            if payment is not None and payment.user_id:
                item.features.update(shoppers.get_or_make(payment.user_id, ShopperHistory).learn_one(payment))


class RegisterShard:
    """Register behaviour per store: features for till sales, refund-abuse alerts for returns and voids.

    Till alerts are de-duplicated per cashier here (a store's actions all reach one shard)
    and resolve after `quiet_s` of the shard's event time without another.
    """

    def __init__(self, rules: RuleBook, quiet_s: float, max_stores: int) -> None:
        self.stores: EntityCache[RegisterBehaviour] = EntityCache(max_stores)
        self.alerts = FraudAlerts(rules, quiet_s=quiet_s)
        self.clock = _NEVER

    def learn_many(self, items: Sequence[Scoring], rules: RuleBook) -> tuple[list[Scoring], list[Alert]]:
        """The payments to score, and the till alerts raised or resolved."""
        if rules is not self.alerts.rules:
            self.alerts.set_rules(rules)
        stores = self.stores
        to_score: list[Scoring] = []
        alerts: list[Alert] = []
        clock = self.clock
        for item in items:
            action = item.action
            if action is not None:
                register = stores.get_or_make(action.store_id, RegisterBehaviour).learn_one(action)
                if action.ts > clock:
                    clock = action.ts
                if item.payment is None:
                    alerts += self.alerts.learn_till_one(action, register)
                    continue
                item.features.update(register)
            if item.payment is not None:
                to_score.append(item)
        if clock > self.clock:
            self.clock = clock
            alerts += self.alerts.sweep(clock)
        return to_score, alerts


class ScorerBatch(NamedTuple):
    """What one scorer shard made of one batch (the flow turns it into documents and metrics)."""

    scored: list[tuple[Payment, FraudScore]]
    suspicious: list[tuple[Payment, FraudScore]]
    fraud_labels: int
    legit_labels: int
    unmatched_labels: int
    presumed_legit: int


class ScorerShard:
    """Scores payments in one numpy pass, joins labels to the inputs their payments were scored with, learns.

    A label reaches the shard that scored its payment because both are keyed by the payment
    id; payments unlabelled after the label retention are learned as legitimate.
    """

    def __init__(self, scorer: FraudScorer, join: LabelJoin) -> None:
        self.scorer = scorer
        self.join = join
        self.clock = _NEVER
        self.shard: int | None = None
        self.doc_version = 0
        self.published_version = ""

    def learn_many(self, items: Sequence[Scoring | FraudLabel], rules: RuleBook) -> ScorerBatch:
        scorer, join = self.scorer, self.join
        if rules is not scorer.rules:
            scorer.set_rules(rules)
        to_score: list[Scoring] = []
        label_inputs: list[list[float]] = []
        label_values: list[bool] = []
        unmatched = 0
        clock = self.clock
        for item in items:
            if type(item) is Scoring:
                to_score.append(item)
                if item.ts > clock:
                    clock = item.ts
                continue
            label: FraudLabel = item  # type: ignore[assignment]
            model_input = join.take(label.txn_id or label.order_id or "")
            if model_input is None:
                unmatched += 1  # scored by nobody here, or past the label retention
            else:
                label_inputs.append(model_input)
                label_values.append(label.label == "fraud")
        # One numpy pass scores the batch and teaches the anomaly model (operators.fraud.scorer).
        verdicts, inputs = scorer.score_batch([item.features for item in to_score], learn=True)
        payments: list[Payment] = [item.payment for item in to_score]  # type: ignore[misc]
        scored = list(zip(payments, verdicts, strict=True))
        suspicious = [pair for pair in scored if pair[1].decision != "allow"]
        if payments:
            join.remember_many([p.payment_id for p in payments], [p.ts for p in payments], inputs)
        if label_inputs:
            scorer.learn_labels(label_inputs, label_values)
        if clock > self.clock:
            self.clock = clock
        # Every batch, not only when the clock moves: payments read after a later partition advanced the
        # clock are already past the wait, and would otherwise wait for the next advance.
        matured = join.mature(self.clock)  # no label by now: presumed legitimate (operators.fraud.supervised)
        if len(matured):
            scorer.learn_labels(matured, [False] * len(matured))
        fraud = sum(label_values)
        return ScorerBatch(scored, suspicious, fraud, len(label_values) - fraud, unmatched, len(matured))

    def next_model_version(self) -> str | None:
        """The model version to publish when it changed since the last publication (then counted), else None."""
        version = self.scorer.model_version
        if version == self.published_version:
            return None
        self.published_version = version
        self.doc_version += 1
        return version


class FraudAlertDesk:
    """The open fraud alerts, one per card or shopper, over every scorer shard (one key).

    A card-testing burst spread over several scorer shards still raises one alert. The clock is
    the newest event time any scorer shard reported; alerts resolve against it.
    """

    def __init__(self, rules: RuleBook, quiet_s: float, max_open: int) -> None:
        self.alerts = FraudAlerts(rules, quiet_s=quiet_s, max_open=max_open)
        self.clock = _NEVER

    def learn_many(self, batches: Sequence[ShardVerdicts], rules: RuleBook) -> list[Alert]:
        if rules is not self.alerts.rules:
            self.alerts.set_rules(rules)
        alerts: list[Alert] = []
        clock = self.clock
        for batch in batches:
            for payment, verdict in batch.suspicious:
                alerts += self.alerts.learn_one(payment, verdict)
            if batch.clock > clock:
                clock = batch.clock
        if clock > self.clock:
            self.clock = clock
            alerts += self.alerts.sweep(clock)
        return alerts


class OperationsDesk:
    """Operational watchers: sales pulse (stores, registers), shrink spikes, dead-letter bursts (one key).

    Sales and shrink run on the event time of the traffic, checked every `tick_s` of it; dead
    letters on their own records' time (when they were dead-lettered), a different clock that
    must not move the other.
    """

    def __init__(self, store_silence_s: float, register_silence_s: float) -> None:
        self.pulse = SalesPulse(store_min_silence_s=store_silence_s, register_min_silence_s=register_silence_s)
        self.shrink = ShrinkWatch()
        self.dead_letters = DeadLetterRate()
        self.clock = _NEVER
        self.ticked = _NEVER
        self.dlq_clock = _NEVER

    def learn_many(self, signals: Sequence[OpsSignal], tick_s: float) -> list[Alert]:
        pulse, shrink, dead_letters = self.pulse, self.shrink, self.dead_letters
        alerts: list[Alert] = []
        clock, dlq_clock = self.clock, self.dlq_clock
        for signal in signals:
            kind = type(signal)
            if kind is SaleSeen:
                alerts += pulse.learn_one(signal.store_id, signal.register_id, signal.ts)  # type: ignore[union-attr]
            elif kind is ShrinkSeen:
                alerts += shrink.learn_one(signal.location_id, signal.units, signal.ts)  # type: ignore[union-attr]
            elif kind is DeadLetterSeen:
                alerts += dead_letters.learn_one(signal.source_topic, signal.ts)  # type: ignore[union-attr]
                if signal.ts > dlq_clock:
                    dlq_clock = signal.ts
                continue
            if signal.ts > clock:
                clock = signal.ts
        self.clock = clock
        if clock - self.ticked >= tick_s:
            self.ticked = clock
            alerts += pulse.tick(clock)
            alerts += shrink.tick(clock)
        if dlq_clock > self.dlq_clock:
            self.dlq_clock = dlq_clock
            alerts += dead_letters.tick(dlq_clock)
        return alerts
