"""The whole fraud and anomaly engine in one object, for one process.

The Bytewax flow spreads the same steps over keyed state (cards, users,
stores) and batches; `FraudEngine` runs them in order in one place, so the
quality harness, the unit tests and a single-key deployment see exactly the
logic the flow wires. It takes decoded events (and dead letters' topics) in
batches, the unit a Bytewax step receives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from events.alerts import Alert
from events.models import Adjustment, Event, FraudLabel, Purchase, Return, Sale, Void
from operators.fraud.alerts import FraudAlerts
from operators.fraud.features import FEATURE_DEFAULTS, CardVelocity, OrderChecks, RegisterBehaviour, ShopperHistory
from operators.fraud.operations import DeadLetterRate, SalesPulse, ShrinkWatch
from operators.fraud.payments import Payment, payment_of, till_action_of
from operators.fraud.rules import RuleBook
from operators.fraud.scorer import FraudScore, FraudScorer, Mode
from operators.fraud.supervised import LabelJoin

S = TypeVar("S")
_NO_FEATURES: dict[str, float] = {}
ENGINE_EVENT_TYPES: frozenset[type] = frozenset({Sale, Purchase, Return, Void, FraudLabel, Adjustment})
"""The event types the engine reads; a flow can drop every other event before it (browsing, stock moves)."""


class _Lru(OrderedDict[str, S]):
    """Entity states, least recently used first; past `limit` the stalest is forgotten (bounded memory)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __reduce__(self) -> tuple[Any, ...]:
        # OrderedDict pickles by calling the class without arguments; `limit` must come along.
        return (type(self), (self.limit,), None, None, iter(self.items()))

    def get_or_make(self, key: str, make: Callable[[], S]) -> S:
        state = self.get(key)
        if state is None:
            state = self[key] = make()
            if len(self) > self.limit:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return state


class _RecentIds:
    """Event ids seen within `window_s` of event time, at most `max_ids` of them (oldest forgotten first).

    `operators.seen_events.SeenEvents` bounds its memory by event time only; at the fraud flow's
    rate (15k events/s) an hour of ids would not fit, so this one is capped by count as well: a
    retry older than the last `max_ids` events is scored again, which only repeats its score.
    """

    def __init__(self, window_s: float, max_ids: int) -> None:
        self.window_s = window_s
        self.max_ids = max_ids
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._newest = float("-inf")

    def add(self, event_id: str, ts: float) -> bool:
        """Record `event_id`; False when it was already seen."""
        ids = self._ids
        if event_id in ids:
            return False
        ids[event_id] = ts
        if ts > self._newest:
            self._newest = ts
        horizon = self._newest - self.window_s
        while ids and (len(ids) > self.max_ids or next(iter(ids.values())) < horizon):
            ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class EngineOutput:
    """What one batch produced: each payment with its score, and the alerts raised."""

    scored: list[tuple[Payment, FraudScore]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


class FraudEngine:
    """Features, scoring, learning and alerts for a stream of decoded events.

    Parameters
    ----------
    rules
        The rule book.
    mode
        Scorer mode (`full`, `rules_only`, `anomaly_only`).
    presume_legit_after_s
        Event-time seconds after which an unlabelled payment teaches the model "legit".
    label_sample_share
        Share of payments kept for learning from labels (`LabelJoin.sample_share`).
    max_label_inputs
        Payments kept for learning at most (`LabelJoin.max_entries`).
    max_entities
        Cards, shoppers and stores whose state is kept at most (least recently used go first).
    seed
        Of the anomaly model.
    tick_s
        Event-time seconds between silence checks and alert sweeps.
    dedup_window_s
        Event-time seconds an `event_id` is remembered against producer retries.
    max_dedup_ids
        Event ids remembered at most (bounds memory at high rates).

    Examples
    --------
    >>> from events.decode import decode
    >>> from events.topics import Topic
    >>> book = RuleBook.from_toml(open("deploy/fraud/rules.toml").read())
    >>> engine = FraudEngine(book)
    >>> raw = (b'{"event_id":"e1","type":"sale","ts":"2026-11-22T00:00:00Z","schema_version":1,'
    ...        b'"store_id":"S1","register_id":"R1","cashier_id":"C1","txn_id":"T1","currency":"USD",'
    ...        b'"items":[{"sku":"A","qty":1,"unit_price":950.0}],"total":950.0,'
    ...        b'"payment":{"method":"card","card_token":"tok_1","entry_mode":"manual"}}')
    >>> out = engine.process_many([decode(Topic.POS, raw, source_topic="pos", partition=0, offset=0)])
    >>> [(p.payment_id, s.decision) for p, s in out.scored], [a.severity.value for a in out.alerts]
    ([('T1', 'review')], ['warning'])
    """

    def __init__(
        self,
        rules: RuleBook,
        mode: Mode = "full",
        presume_legit_after_s: float = 2000.0,
        label_sample_share: float = 1.0,
        max_label_inputs: int = 300_000,
        max_entities: int = 100_000,
        seed: int = 7,
        tick_s: float = 30.0,
        dedup_window_s: float = 600.0,
        max_dedup_ids: int = 200_000,
    ) -> None:
        self.rules = rules
        self.mode = mode
        self.presume_legit_after_s = presume_legit_after_s
        self.label_sample_share = label_sample_share
        self.max_label_inputs = max_label_inputs
        self.max_entities = max_entities
        self.seed = seed
        self.tick_s = tick_s
        self.dedup_window_s = dedup_window_s
        self.max_dedup_ids = max_dedup_ids
        self._next_tick = float("-inf")
        self.scorer = FraudScorer(rules, mode=mode, seed=seed)
        self.alerts = FraudAlerts(rules)
        self.labels = LabelJoin(
            presume_legit_after_s=presume_legit_after_s, max_entries=max_label_inputs, sample_share=label_sample_share
        )
        self.checks = OrderChecks()
        self.pulse = SalesPulse()
        self.shrink = ShrinkWatch()
        self.dead_letters = DeadLetterRate()
        self._cards: _Lru[CardVelocity] = _Lru(max_entities)
        self._shoppers: _Lru[ShopperHistory] = _Lru(max_entities)
        self._stores: _Lru[RegisterBehaviour] = _Lru(max_entities)
        self._seen = _RecentIds(dedup_window_s, max_dedup_ids)
        self.clock = float("-inf")
        self.labels_learned = 0

    def set_rules(self, rules: RuleBook) -> None:
        """Swap in a reloaded rule book (thresholds, weights, reasons) without losing learned state."""
        self.rules = rules
        self.scorer.set_rules(rules)
        self.alerts.set_rules(rules)

    def process_many(self, events: Iterable[Event], dead_letter_topics: Sequence[str] = ()) -> EngineOutput:
        """One batch: learn features, score its payments, learn labels, raise alerts."""
        out = EngineOutput()
        payments: list[Payment] = []
        features: list[dict[str, float]] = []
        label_inputs: list[list[float]] = []
        label_values: list[bool] = []
        for event in events:
            when = getattr(event, "ts", None)
            if not isinstance(when, datetime):
                continue  # not a decoded event (a dead letter handed in by mistake): nothing to learn
            ts = when.timestamp()
            if ts > self.clock:
                self.clock = ts  # any traffic's event time drives the silence checks
            if type(event) not in ENGINE_EVENT_TYPES or not self._seen.add(event.event_id, ts):
                continue  # browsing and stock traffic, or a producer's retry (counted once, CONTRACT.md)
            payment = payment_of(event)
            action = till_action_of(event)
            if action is not None:
                if action.kind == "sale":
                    out.alerts += self.pulse.learn_one(action.store_id, action.register_id, ts)
                else:  # sales change nothing in register behaviour: only returns and voids are kept
                    store = self._stores.get_or_make(action.store_id, RegisterBehaviour)
                    out.alerts += self.alerts.learn_till_one(action, store.learn_one(action))
            if payment is not None:
                payments.append(payment)
                features.append(self._features(payment))
            elif type(event) is FraudLabel:
                model_input = self.labels.take(event.txn_id or event.order_id or "")
                if model_input is not None:
                    label_inputs.append(model_input)
                    label_values.append(event.label == "fraud")
            elif type(event) is Adjustment and event.reason == "shrink" and event.qty < 0:
                out.alerts += self.shrink.learn_one(event.location_id, -event.qty, ts)
        for topic in dead_letter_topics:
            out.alerts += self.dead_letters.learn_one(topic, self.clock)

        verdicts, model_inputs = self.scorer.score_batch(features, learn=True)
        out.scored = list(zip(payments, verdicts, strict=True))
        review = self.rules.review
        for payment, verdict in out.scored:
            if verdict.score >= review:
                out.alerts += self.alerts.learn_one(payment, verdict)
        self.labels.remember_many([p.payment_id for p in payments], [p.ts for p in payments], model_inputs)
        # (the forest learned this batch inside score_batch: `learn=True` walks the trees once for both)
        matured = self.labels.mature(self.clock)
        self.labels_learned += len(label_inputs)
        if label_inputs:
            self.scorer.learn_labels(label_inputs, label_values)
        if len(matured):
            self.scorer.learn_labels(matured, [False] * len(matured))
        if self.clock >= self._next_tick:
            # Silences and resolutions are judged at most every `tick_s` of event time: each tick
            # passes over every store, register and open alert.
            self._next_tick = self.clock + self.tick_s
            out.alerts += self.pulse.tick(self.clock)
            out.alerts += self.shrink.tick(self.clock)
            out.alerts += self.dead_letters.tick(self.clock)
            out.alerts += self.alerts.sweep(self.clock)
        return out

    def _features(self, payment: Payment) -> dict[str, float]:
        # Every feature present (defaults first): the scorer then reads a row with one itemgetter call.
        card: dict[str, float] = _NO_FEATURES
        shopper: dict[str, float] = _NO_FEATURES
        if payment.card_token is not None:
            card = self._cards.get_or_make(payment.card_token, CardVelocity).learn_one(payment)
        if payment.user_id is not None:
            shopper = self._shoppers.get_or_make(payment.user_id, ShopperHistory).learn_one(payment)
        return {**FEATURE_DEFAULTS, **self.checks.learn_one(payment), **card, **shopper}
