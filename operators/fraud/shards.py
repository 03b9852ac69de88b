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

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from events.alerts import Alert
from operators.entity_cache import EntityCache, RecentIds
from operators.fraud.alerts import FraudAlerts
from operators.fraud.behaviour import CardHabit, StoreRisk
from operators.fraud.features import FEATURE_DEFAULTS, CardVelocity, OrderChecks, RegisterBehaviour, ShopperHistory
from operators.fraud.operations import DeadLetterRate, SalesPulse, ShrinkWatch
from operators.fraud.payments import Payment
from operators.fraud.pending import Matched, PaymentDirectory, PendingPayments
from operators.fraud.records import (
    DeadLetterSeen,
    LabelSeen,
    OpsSignal,
    SaleSeen,
    Scoring,
    ShardVerdicts,
    ShrinkSeen,
    StoreLabel,
)
from operators.fraud.rules import RuleBook
from operators.fraud.scorer import ANOMALY_INPUTS, FraudScore, FraudScorer

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
        self.habits: EntityCache[list[list[float]]] = EntityCache(max_cards)  # CardHabit states
        self.recent = RecentIds(max_ids)

    def learn_many(self, items: Sequence[Scoring]) -> list[Scoring]:
        """The items that are not retries, payments with their first features; retries are left out."""
        cards, habits, recent, checks, learn_habit = self.cards, self.habits, self.recent, _CHECKS, CardHabit.learn_one
        kept: list[Scoring] = []
        for item in items:
            if not recent.add(item.event_id):
                continue
            payment = item.payment
            if payment is not None:
                features = FEATURE_DEFAULTS.copy()  # every feature present: one itemgetter reads them all
                features.update(checks.learn_one(payment))
                if payment.card_token:
                    features.update(cards.get_or_make(payment.card_token, CardVelocity).learn_one(payment))
                    habit = habits.get_or_make(payment.card_token, CardHabit.new)
                    features.update(learn_habit(habit, payment.ts, payment.amount))
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


class DirectoryShard:
    """Remembers the store of each payment (keyed by payment id), so a label can reach its store's fraud rate.

    Payments pass through unchanged; each label goes on to its payment's scorer shard and, as a
    `StoreLabel`, to its store's shard. A label read before its payment (another partition)
    reaches the scorer still, but not the store's rate.
    """

    def __init__(self, horizon_s: float, max_payments: int) -> None:
        self.directory = PaymentDirectory(horizon_s, max_payments)
        self.clock = _NEVER

    def learn_many(self, items: Sequence[Scoring | LabelSeen]) -> tuple[list[Scoring], list[LabelSeen],
                                                                      list[StoreLabel]]:  # fmt: skip
        payments: list[Scoring] = []
        labels: list[LabelSeen] = []
        ids: list[str] = []
        times: list[float] = []
        stores: list[str] = []
        clock = self.clock
        for item in items:
            if type(item) is LabelSeen:
                labels.append(item)
                continue
            scoring: Scoring = item  # type: ignore[assignment]
            payments.append(scoring)
            payment = scoring.payment
            if payment is not None and payment.store_id:
                ids.append(payment.payment_id)
                times.append(payment.ts)
                stores.append(payment.store_id)
            if scoring.ts > clock:
                clock = scoring.ts
        directory = self.directory
        directory.remember_many(ids, times, stores)
        store_labels: list[StoreLabel] = []
        if labels:
            for seen, found in zip(labels, directory.find_many([seen.payment_id for seen in labels]), strict=True):
                if found is not None:
                    store_labels.append(StoreLabel(found[0], found[1], seen.label.label == "fraud", seen.sequence))
        if clock > self.clock:
            self.clock = clock
            directory.forget(clock)
        return payments, labels, store_labels


class RegisterShard:
    """Register behaviour per store: features for till sales, refund-abuse alerts for returns and voids.

    Till alerts are de-duplicated per cashier here (a store's actions all reach one shard)
    and resolve after `quiet_s` of the shard's event time without another.
    """

    def __init__(self, rules: RuleBook, quiet_s: float, max_stores: int) -> None:
        self.stores: EntityCache[RegisterBehaviour] = EntityCache(max_stores)
        self.risks: EntityCache[StoreRisk] = EntityCache(max_stores)
        self.alerts = FraudAlerts(rules, quiet_s=quiet_s)
        self.clock = _NEVER

    def learn_many(self, items: Sequence[Scoring | StoreLabel], rules: RuleBook) -> tuple[list[Scoring], list[Alert]]:
        """The payments to score, and the till alerts raised or resolved; store labels update fraud rates."""
        if rules is not self.alerts.rules:
            self.alerts.set_rules(rules)
        stores, risks = self.stores, self.risks
        to_score: list[Scoring] = []
        alerts: list[Alert] = []
        clock = self.clock
        for entry in items:
            if isinstance(entry, StoreLabel):
                risks.get_or_make(entry.store_id, StoreRisk).label(entry.payment_ts, entry.is_fraud)
                continue
            item = entry
            payment = item.payment
            if payment is not None and payment.store_id:
                item.features.update(risks.get_or_make(payment.store_id, StoreRisk).learn_one(payment.ts))
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
    refused: list[tuple[LabelSeen, str]]
    """Labels that teach nothing, with the reason: for the dead-letter topic."""
    chunks_closed: int = 0
    """Learning chunks closed in this batch (the models learned: the model document is due)."""


UNKNOWN_PAYMENT = "label for an unknown payment: none scored within the label horizon"
BEFORE_PAYMENT = "label dated before its payment"


class _Tally:
    """What one batch learned, added up over the chunks it closed."""

    __slots__ = ("chunks", "fraud", "legit", "presumed", "refused", "unknown")

    def __init__(self) -> None:
        self.fraud = self.legit = self.unknown = self.presumed = self.chunks = 0
        self.refused: list[tuple[LabelSeen, str]] = []


class ScorerShard:
    """Scores payments in one numpy pass, joins labels to the inputs their payments were scored with, learns.

    A label reaches the shard that scored its payment because both are keyed by the payment
    id. Scored payments wait for their label in `PendingPayments` (up to the label horizon);
    one no label has claimed at maturity is learned as genuine, never before.

    **Learning in chunks of event time.** The models learn nothing while a batch is scored:
    event time is cut into chunks of `chunk_s` (aligned to the epoch, so a day holds whole
    chunks), and a chunk is learned when the first item past its end arrives. Then the anomaly
    model counts the chunk's payments, its labels join their payments, the supervised model
    takes one step on them, payments whose day has matured by the start of the new item's chunk
    are presumed genuine, and the decision budget counts the chunk's scores, all in the order the items came (event-time
    order, `operators.fraud.ordering`). So the models after any chunk are a function of the
    events before its end, however the flow's batches fell, and a payment is scored by the
    models as of the start of its own chunk (the score document's `model_version` names them).
    An item older than the open chunk (late) is learned with the open chunk.
    """

    def __init__(self, scorer: FraudScorer, pending: PendingPayments, chunk_s: float = 60.0) -> None:
        self.scorer = scorer
        self.pending = pending
        self.chunk_s = chunk_s
        self.chunk_end = _NEVER  # end of the open chunk (exclusive)
        self.clock = _NEVER
        self.shard: int | None = None
        self.doc_version = 0
        self.published_version = ""
        self.totals: dict[str, int] = dict.fromkeys(("fraud", "legit", "unknown", "refused", "presumed_genuine"), 0)
        """Labels matched (fraud, legit), dead-lettered (unknown, refused), payments presumed genuine: ever."""
        # The open chunk: anomaly-model rows and scores of its payments, its labels, labels matched
        # to its payments on arrival (they had come first), all in arrival order.
        self._rows: list[npt.NDArray[np.float64]] = []
        self._scores: list[npt.NDArray[np.float64]] = []
        self._labels: list[LabelSeen] = []
        self._matched: list[Matched] = []

    def learn_many(self, items: Sequence[Scoring | LabelSeen], rules: RuleBook) -> ScorerBatch:
        """Score the batch's payments, each by the models as of its chunk's start; learn each chunk it closes."""
        scorer = self.scorer
        if rules is not scorer.rules:
            scorer.set_rules(rules)
        tally = _Tally()
        scored: list[tuple[Payment, FraudScore]] = []
        run: list[Scoring] = []
        chunk_end, clock = self.chunk_end, self.clock
        for item in items:
            ts = item.ts if type(item) is Scoring else item.label.ts.timestamp()  # type: ignore[union-attr]
            if ts >= chunk_end:
                if run:
                    scored += self._score(run)
                    run = []
                self._close(ts, tally)
                chunk_end = self.chunk_end
            if type(item) is Scoring:
                run.append(item)
                if ts > clock:
                    clock = ts
            else:
                self._labels.append(item)  # type: ignore[arg-type]  # (a new list at each close)
        if run:
            scored += self._score(run)
        if clock > self.clock:
            self.clock = clock
        suspicious = [pair for pair in scored if pair[1].decision != "allow"]
        totals = self.totals
        totals["fraud"] += tally.fraud
        totals["legit"] += tally.legit
        totals["unknown"] += tally.unknown
        totals["refused"] += len(tally.refused) - tally.unknown
        totals["presumed_genuine"] += tally.presumed
        return ScorerBatch(scored, suspicious, tally.fraud, tally.legit, tally.unknown, tally.presumed, tally.refused,
                           tally.chunks)  # fmt: skip

    def _score(self, run: list[Scoring]) -> list[tuple[Payment, FraudScore]]:
        """Score payments of the open chunk (one numpy pass); they wait for their labels and for the chunk's end."""
        verdicts, inputs = self.scorer.score_batch([item.features for item in run])
        payments: list[Payment] = [item.payment for item in run]  # type: ignore[misc]
        matched = self.pending.remember_many([p.payment_id for p in payments], [p.ts for p in payments], inputs)
        if len(matched.is_fraud) or matched.refused:
            self._matched.append(matched)
        self._rows.append(inputs[:, :ANOMALY_INPUTS])
        self._scores.append(np.asarray([v.score for v in verdicts]))
        return list(zip(payments, verdicts, strict=True))

    def _close(self, ts: float, tally: _Tally) -> None:
        """Learn the open chunk (if any) and open the one holding `ts`."""
        end = self.chunk_end
        start = math.floor(ts / self.chunk_s) * self.chunk_s
        self.chunk_end = start + self.chunk_s
        if end == _NEVER:
            return
        tally.chunks += 1
        scorer, pending = self.scorer, self.pending
        if self._rows:
            scorer.learn_anomaly_rows(np.concatenate(self._rows) if len(self._rows) > 1 else self._rows[0])
            if scorer.budget is not None:
                scorer.budget.observe(np.concatenate(self._scores), end - self.chunk_s)
        joined, self._matched = self._matched, []
        labels, self._labels = self._labels, []
        if labels:
            joined.append(pending.label_many([seen.payment_id for seen in labels],
                                             [seen.label.ts.timestamp() for seen in labels],
                                             [seen.label.label == "fraud" for seen in labels], labels))  # fmt: skip
        self._rows, self._scores = [], []
        for matched in joined:
            if matched.is_fraud:
                scorer.learn_labels(matched.inputs, matched.is_fraud)
                frauds = sum(matched.is_fraud)
                tally.fraud += frauds
                tally.legit += len(matched.is_fraud) - frauds
            tally.refused += [(w.label, BEFORE_PAYMENT) for w in matched.refused]  # type: ignore[misc]
        # Everything before the new chunk's start has come (the input is in event-time order): maturity and
        # the labels' wait for their payments are judged at that time, the same whatever gap came before it.
        matured = pending.mature(start)  # no label by maturity: presumed genuine
        if len(matured):
            scorer.learn_labels(matured, [False] * len(matured))
            tally.presumed += len(matured)
        unknown = pending.expire(start)
        tally.unknown += len(unknown)
        tally.refused += [(w.label, UNKNOWN_PAYMENT) for w in unknown]  # type: ignore[misc]

    def next_model_version(self) -> str | None:
        """The model version to publish when the model or its label counts changed since the last one, else None.

        The document also reports the pending payments and label counts, so a label matched but not
        learned yet (the supervised model waits for enough genuine examples) still shows.
        """
        version = self.scorer.model_version
        published = f"{version}|{sorted(self.totals.items())}|{len(self.pending)}"
        if published == self.published_version:
            return None
        self.published_version = published
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
