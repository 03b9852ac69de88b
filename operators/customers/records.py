"""What the customers flow's stages hand each other: activities, clock ticks, watches, flips, candidates.

Small frozen structs (`gc=False`: they hold no cycles), made from decoded events by the
flow's decoder (`flows/customers_stages.py`) and consumed by the pure shards here.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from events.triggers import Fact, TriggerKind

Channel = Literal["store", "web", "app"]


class Bought(msgspec.Struct, frozen=True, gc=False):
    """A purchase (till sale with a loyalty id, online order) or, with `amount < 0`, a return."""

    customer: str
    event_id: str
    ts: float
    amount: float
    channel: Channel
    store_id: str | None
    country: str | None
    skus: tuple[str, ...]


class Clicked(msgspec.Struct, frozen=True, gc=False):
    """A product view, cart add or cart removal of an identified shopper."""

    customer: str
    event_id: str
    ts: float
    kind: Literal["view", "cart", "uncart"]
    sku: str
    channel: Channel
    country: str | None


class PaymentSeen(msgspec.Struct, frozen=True, gc=False):
    """The payment service's answer for the attempt `ref`: approved (`ok`) or not."""

    customer: str
    event_id: str
    ts: float
    ref: str
    ok: bool
    amount: float


class ConsentSeen(msgspec.Struct, frozen=True, gc=False):
    """The customer's marketing consent from `ts` on."""

    customer: str
    event_id: str
    ts: float
    marketing: bool


Activity = Bought | Clicked | PaymentSeen | ConsentSeen


class Tick(msgspec.Struct, frozen=True, gc=False):
    """One decoded batch's newest event time per (topic, partition): advances every stage's clock.

    `holds` says, per decoding thread (its origin), the oldest newest time among its partitions that
    still have messages to read (-inf for one not read from yet, nothing when all are read to the
    end): the clocks do not pass it (`operators.customers.clock.EventClock`).
    """

    newest: tuple[tuple[tuple[str, int], float], ...]
    holds: tuple[tuple[str, float], ...] = ()
    watermark: float = float("-inf")
    """A watermark the clock takes as it is (the flow's clock step computed it): how the clock step wakes the
    customer buckets, the stock and the gate (`operators.customers.timers`)."""
    relay: bool = False
    """Set on the tick the clock sends through the customers stage's relay key, which passes it on to the gate
    shards after what the buckets woken with it sent them (and now and then to the stock shards); a bucket's
    wake-up is not passed on."""


class Due(msgspec.Struct, frozen=True, gc=False):
    """Customer bucket number `bucket` may have something due at `due_ms` (event-time milliseconds): wake it then.

    Made by the decoder from an activity alone (`flows.customers_stages`): a superset of the bucket's own
    timers, so a bucket is woken at or after each of them (`operators.customers.timers`).
    """

    due_ms: int
    bucket: int


class Watch(msgspec.Struct, frozen=True, gc=False):
    """`customer` viewed `sku` at `ts`: tell them if it comes back where they shop (`store`) or anywhere."""

    customer: str
    sku: str
    ts: float
    store: str | None
    event_id: str


class Flip(msgspec.Struct, frozen=True, gc=False):
    """`sku` became sellable at `location` (or stopped being) at `ts`; `version` is its stock version."""

    sku: str
    location: str
    ts: float
    sellable: bool
    version: int


class PopulationMove(msgspec.Struct, frozen=True, gc=False):
    """A customer's RFM buckets in `scope` moved from `old` to `new` (None: not counted there); `as_of` their time."""

    scope: str
    old: tuple[int, int, int] | None
    new: tuple[int, int, int] | None
    as_of: float


class Candidate(msgspec.Struct, frozen=True, gc=False):
    """A trigger that fired, before the gate (consent, cooldown, de-duplication) lets it out."""

    customer: str
    kind: TriggerKind
    due_ts: float
    anchor: str
    reasons: tuple[str, ...]
    facts: tuple[tuple[str, Fact], ...]
    source_event_ids: tuple[str, ...]

    @property
    def trigger_id(self) -> str:
        """`<kind>:<customer>:<anchor>`: the same cause always gives the same id."""
        return f"{self.kind.value}:{self.customer}:{self.anchor}"
