"""Alerts that open once per entity and kind, escalate, and resolve when the condition clears.

A card-testing burst is one incident, not twenty: `AlertBook` keeps at most
one open alert per (entity, kind). While the condition goes on, nothing more is
emitted unless it gets worse (an escalation is a new alert at the higher
severity); once it has been quiet for `quiet_s` of event time (`sweep`) or is
cleared outright (`clear`), one `resolved` alert closes it. Alert ids derive
from entity, kind and the event time the alert opened, so the same input gives
the same ids after a crash replay.

Entities name cards by a pseudonym (`card_ref`), never by token or BIN; reasons
are rule texts and feature names only.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from events import alerts as events_alerts
from events.alerts import Alert, Entity, Severity
from events.timestamps import rfc3339_ms
from operators.fraud.payments import Payment, TillAction
from operators.fraud.rules import RuleBook
from operators.fraud.scorer import FraudScore
from operators.snapshots import with_ordered_dicts

_RANK = {Severity.WARNING: 0, Severity.ATTENTION: 1, Severity.EMERGENCY: 2}
_HAS_STATUS = "status" in {f.name for f in fields(Alert)}
# `events.alerts.AlertStatus` arrives with the `status` field; until then resolution is told by the first reason.
_STATUS_TYPE: Any = getattr(events_alerts, "AlertStatus", str)
RESOLVED_REASON = "resolved"
"""First reason of every resolving alert (also carried as `status` where `Alert` has it)."""


def card_ref(card_token: str) -> str:
    """A stable pseudonym of a card token for alert entities: the token itself never leaves the engine.

    >>> card_ref("tok_0001") == card_ref("tok_0001") != card_ref("tok_0002")
    True
    """
    return "card-" + hashlib.blake2b(card_token.encode(), digest_size=8, person=b"omni-card").hexdigest()


def make_alert(
    alert_id: str,
    kind: str,
    severity: Severity,
    entity: Entity,
    reasons: list[str],
    ts: float,
    source_event_ids: list[str],
    score: float | None,
    resolved: bool,
) -> Alert:
    """An `events.alerts.Alert`, with `status` when the contract's Alert carries it."""
    extra: dict[str, Any] = {}
    if _HAS_STATUS:
        extra["status"] = _STATUS_TYPE("resolved" if resolved else "open")
    return Alert(
        alert_id=alert_id,
        kind=kind,
        severity=severity,
        entity=entity,
        reasons=reasons,
        ts=rfc3339_ms(ts),
        source_event_ids=source_event_ids,
        score=score,
        **extra,
    )


@dataclass(slots=True)
class _Open:
    opened_ts: float
    last_ts: float
    """When the condition was last heard of, on the book's clock: a late event counts from the sweep before it."""
    severity: Severity
    alert_id: str
    score: float | None


class AlertBook:
    """The open alerts of one kind, at most one per entity; emits open, escalation and resolved alerts.

    Parameters
    ----------
    kind
        The alerts' `kind` (`fraud`, `anomaly`).
    quiet_s
        Event-time seconds without the condition after which `sweep` resolves an alert.
    max_open
        Open alerts kept at most; past it the oldest are resolved (bounded state).

    Examples
    --------
    >>> book = AlertBook("fraud", quiet_s=600)
    >>> card = Entity("card", "card-1")
    >>> [a.severity.value for a in book.observe(card, 0.0, Severity.WARNING, ["r"], 0.6, ["e1"])]
    ['warning']
    >>> book.observe(card, 30.0, Severity.WARNING, ["r"], 0.6, ["e2"])  # still the same incident
    []
    >>> [a.alert_id for a in book.observe(card, 60.0, Severity.ATTENTION, ["r"], 0.95, ["e3"])]
    ['fraud:card:card-1:0:attention']
    >>> book.sweep(now=600.0)
    []
    >>> [(a.alert_id, a.reasons[0]) for a in book.sweep(now=661.0)]
    [('fraud:card:card-1:0:resolved', 'resolved')]
    """

    def __init__(self, kind: str, quiet_s: float = 1800.0, max_open: int = 100_000) -> None:
        self.kind = kind
        self.quiet_s = quiet_s
        self.max_open = max_open
        # Opening order, oldest first. An OrderedDict, not a dict: past `max_open` every new alert
        # evicts the oldest, and a plain dict deleted at its front keeps holes that `next(iter(d))`
        # walks over, so sustained overload would cost time growing with the book's size per alert.
        self._open: OrderedDict[Entity, _Open] = OrderedDict()
        # The newest `sweep` time. An event older than it (read late: another worker's partition,
        # a replay) keeps its alert open for `quiet_s` from here, not from its own time, so that the
        # next sweep does not resolve an incident a moment after it opened and the following
        # payment of the same burst opens a second one.
        self.clock = -math.inf
        # Incidents resolved lately, by entity (resolution order), kept while a late event may still
        # belong to one: a payment read after its burst was resolved (scorer input fans in from
        # several shards, so one shard's newer payments move the clock first) joins that incident.
        self._closed: OrderedDict[Entity, _Open] = OrderedDict()
        self.late_joined = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots written before the book had a clock and kept resolved incidents.
        state.setdefault("clock", -math.inf)
        state.setdefault("_closed", OrderedDict())
        state.setdefault("late_joined", 0)
        self.__dict__.update(with_ordered_dicts(state, "_open"))  # plain dicts before: same (opening) order

    def __len__(self) -> int:
        return len(self._open)

    def is_open(self, entity: Entity) -> bool:
        return entity in self._open

    def observe(
        self,
        entity: Entity,
        ts: float,
        severity: Severity,
        reasons: list[str],
        score: float | None = None,
        source_event_ids: Sequence[str] = (),
    ) -> list[Alert]:
        """The condition holds for `entity` at `ts`: open an alert, escalate it, or just keep it open."""
        current = self._open.get(entity)
        heard = max(ts, self.clock)
        if current is None and self._joins_resolved(entity, ts, severity):
            return []
        if current is None:
            alert_id = f"{self.kind}:{entity.type}:{entity.id}:{int(ts * 1000)}"
            self._open[entity] = _Open(ts, heard, severity, alert_id, score)
            alerts = [make_alert(alert_id, self.kind, severity, entity, reasons, ts, [*source_event_ids], score, False)]
            while len(self._open) > self.max_open:
                alerts.append(self._resolved(*self._open.popitem(last=False), ts, ()))
            return alerts
        current.last_ts = max(current.last_ts, heard)
        if _RANK[severity] <= _RANK[current.severity]:
            return []
        current.severity = severity
        current.score = score
        alert_id = f"{current.alert_id}:{severity.value}"
        return [make_alert(alert_id, self.kind, severity, entity, reasons, ts, [*source_event_ids], score, False)]

    def _joins_resolved(self, entity: Entity, ts: float, severity: Severity) -> bool:
        """Whether a late event belongs to the entity's resolved incident: within it by event time, and no worse.

        Within: not quiet for `quiet_s` before its first event nor after its last. Such an event
        raises nothing (its incident was reported, and resolved as its event time says); a more
        severe one opens an incident of its own, so that it is not swallowed.
        """
        closed = self._closed.get(entity)
        if closed is None or _RANK[severity] > _RANK[closed.severity]:
            return False
        if not closed.opened_ts - self.quiet_s <= ts <= closed.last_ts + self.quiet_s:
            return False
        self.late_joined += 1
        return True

    def clear(self, entity: Entity, ts: float, reasons: Sequence[str] = ()) -> list[Alert]:
        """The condition is over for `entity`: one resolved alert if one was open."""
        current = self._open.pop(entity, None)
        if current is None:
            return []
        if self.quiet_s != math.inf:
            self._closed[entity] = current
            self._closed.move_to_end(entity)
            while len(self._closed) > self.max_open:
                self._closed.popitem(last=False)
        return [self._resolved(entity, current, ts, reasons)]

    def _resolved(self, entity: Entity, current: _Open, ts: float, reasons: Sequence[str]) -> Alert:
        alert_id = f"{current.alert_id}:resolved"
        reasons = [RESOLVED_REASON, *reasons]
        return make_alert(alert_id, self.kind, current.severity, entity, reasons, ts, [], current.score, True)

    def sweep(self, now: float) -> list[Alert]:
        """Resolve every alert whose condition has not held for `quiet_s` before event time `now`."""
        if now > self.clock:
            self.clock = now
        closed = self._closed
        while closed and now - next(iter(closed.values())).last_ts > 2 * self.quiet_s:
            closed.popitem(last=False)  # resolved long ago (in resolution order: roughly by last event)
        quiet = [entity for entity, o in self._open.items() if now - o.last_ts > self.quiet_s]
        return [alert for entity in quiet for alert in self.clear(entity, now, ["quiet"])]


class FraudAlerts:
    """Fraud alerts from scored payments (per card or shopper) and register behaviour (per cashier).

    A payment decided `review` raises a `warning`, `block` an `attention`, and a
    score at or above the rule file's `emergency` an `emergency`. The entity is
    the shopper for an online order of a registered account (account takeover
    is about the account), otherwise the card (by pseudonym); a payment with
    neither is its own entity. A cashier whose returns and voids fire the rule
    file's `till` rules gets an alert of its own (refund abuse).

    Parameters
    ----------
    rules
        Thresholds (`review`, `block`, `emergency`) and the `till` rules.
    quiet_s
        Event-time seconds without a suspicious payment before an alert resolves.

    Examples
    --------
    >>> from operators.fraud.payments import Payment
    >>> book = RuleBook.from_toml('version = "r"\\n[decision]\\nreview = 0.5\\nblock = 0.9')
    >>> alerts = FraudAlerts(book)
    >>> pay = Payment("O1", "order_id", 0.0, 5.0, "USD", "card", "tok_1", None, None, "web", None, None,
    ...               "NG", "US", "NG", None, None, None, "e1")
    >>> verdict = FraudScore(0.95, "block", ["many payments on one card within 10 minutes"], "r", 0.95, 0.0, ())
    >>> [(a.entity.type, a.severity.value) for a in alerts.learn_one(pay, verdict)]
    [('card', 'attention')]
    >>> alerts.learn_one(pay._replace(payment_id="O2", ts=60.0), verdict)  # the same burst: no new alert
    []
    """

    def __init__(self, rules: RuleBook, quiet_s: float = 1800.0, max_open: int = 100_000) -> None:
        self.rules = rules
        self.quiet_s = quiet_s
        self.max_open = max_open
        self.book = AlertBook("fraud", quiet_s, max_open)

    def set_rules(self, rules: RuleBook) -> None:
        self.rules = rules

    def severity_of(self, score: float) -> Severity | None:
        """The severity a score raises, or None below `review`."""
        if score >= self.rules.emergency:
            return Severity.EMERGENCY
        if score >= self.rules.block:
            return Severity.ATTENTION
        if score >= self.rules.review:
            return Severity.WARNING
        return None

    def learn_one(self, payment: Payment, verdict: FraudScore) -> list[Alert]:
        """Alerts a scored payment raises (none for `allow`, none while its entity's alert is open).

        The severity follows the payment's decision (its thresholds may come from the decision
        budget, `operators.fraud.budget`, not the rules file), and a score at or above the rules
        file's `emergency` is an emergency whatever the decision.
        """
        if verdict.decision == "allow":
            return []
        if verdict.score >= self.rules.emergency:
            severity = Severity.EMERGENCY
        else:
            severity = Severity.ATTENTION if verdict.decision == "block" else Severity.WARNING
        return self.book.observe(
            payment_entity(payment), payment.ts, severity, verdict.reasons, verdict.score, [payment.event_id]
        )

    def learn_till_one(self, action: TillAction, features: dict[str, float]) -> list[Alert]:
        """Alerts a register action raises through the rule file's `till` rules (refund abuse)."""
        score, reasons = self.rules.evaluate(features, scope="till")
        severity = self.severity_of(score)
        if severity is None:
            return []
        entity = Entity("cashier", f"{action.store_id}/{action.cashier_id}")
        return self.book.observe(entity, action.ts, severity, reasons, score, [action.event_id])

    def sweep(self, now: float) -> list[Alert]:
        return self.book.sweep(now)


def payment_entity(payment: Payment) -> Entity:
    """Whom a suspicious payment's alert is about: the account online, else the card, else the payment."""
    if payment.channel != "store" and payment.user_id is not None:
        return Entity("user", payment.user_id)
    if payment.card_token is not None:
        return Entity("card", card_ref(payment.card_token))
    return Entity("payment", payment.payment_id)
