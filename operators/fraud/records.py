"""What travels between the fraud flow's keyed stages: small typed records, one per payment or signal.

They are `gc=False` msgspec Structs: at 15k payments/s, per-event objects the cyclic
collector tracks cost measurable pauses (docs/performance.md). None of them can be part of
a reference cycle: they hold events, numbers, strings and a feature dict.
"""

from __future__ import annotations

import msgspec

from events.models import FraudLabel
from operators.fraud.payments import Payment, TillAction
from operators.fraud.scorer import FraudScore


class Scoring(msgspec.Struct, gc=False):
    """One payment (or till action) on its way through the keyed stages, gathering features.

    `payment` is None for returns and voids: they only feed register behaviour; `action` is
    None for online orders. `features` grows at each stage (card, shopper, register) and is
    scored at the end.
    """

    payment: Payment | None
    action: TillAction | None
    event_id: str
    ts: float
    features: dict[str, float] = msgspec.field(default_factory=dict)
    sequence: int = 0
    """Its place in event-time order (`operators.fraud.ordering`): stages handle their items in this order."""

    @property
    def payment_id(self) -> str:
        """The payment's id (`txn_id` / `order_id`): what its label names and its scorer shard is keyed on."""
        if self.payment is not None:
            return self.payment.payment_id
        return self.action.txn_id if self.action is not None else self.event_id


class SaleSeen(msgspec.Struct, gc=False, frozen=True):
    """A till sale: a beat of its store's and register's sales pulse."""

    store_id: str
    register_id: str
    ts: float


class TrafficSeen(msgspec.Struct, gc=False, frozen=True):
    """Any other payment: it only moves the operations clock (silence is judged against it)."""

    ts: float


class ShrinkSeen(msgspec.Struct, gc=False, frozen=True):
    """A shrink adjustment: `units` written off at a location."""

    location_id: str
    units: int
    ts: float


class DeadLetterSeen(msgspec.Struct, gc=False, frozen=True):
    """A dead letter of `source_topic`, at the time it was dead-lettered (its own clock)."""

    source_topic: str
    ts: float


OpsSignal = SaleSeen | TrafficSeen | ShrinkSeen | DeadLetterSeen
"""What the operations desk reads."""


class ShardVerdicts(msgspec.Struct, gc=False):
    """One scorer shard's batch, for the alert desk: its suspicious payments and its event clock."""

    suspicious: list[tuple[Payment, FraudScore]]
    clock: float


class LabelSeen(msgspec.Struct, gc=False, frozen=True):
    """A `fraud_label` on its way to the scorer shard of its payment, with where it was read.

    The position names its dead letter (`topic/partition/offset`) if it never meets its payment,
    so a label re-read after a recovery is recognisably the same record.
    """

    label: FraudLabel
    topic: str
    partition: int
    offset: int
    sequence: int = 0
    """Its place in event-time order among labels and payments (`operators.fraud.ordering`)."""

    @property
    def payment_id(self) -> str:
        return self.label.txn_id or self.label.order_id or ""


class StoreLabel(msgspec.Struct, gc=False, frozen=True):
    """A label's verdict for the store its payment was made at, dated by the payment: a store's fraud rate."""

    store_id: str
    payment_ts: float
    is_fraud: bool
    sequence: int = 0
    """The label's place in event-time order: where it falls among the store's payments."""


class Arrivals(msgspec.Struct, gc=False):
    """One decoded batch's payments and labels for the ordering step, and how far each partition got.

    `entries` are (event time, event id, `Scoring` or `LabelSeen`); `marks` the newest event time
    read from each input partition (`topic/partition`) in the batch.
    """

    entries: list[tuple[float, str, Scoring | LabelSeen]]
    marks: dict[str, float]
