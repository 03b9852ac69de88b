"""The rebalancing planner: which location sends how many units of a SKU to which, before a stockout.

For one SKU, every location is a `Position`: what it can sell now (`available`),
what is already on its way to it (`inbound`, transfers sent and not yet arrived)
and its demand velocity. A transfer takes `lead_time_days` to arrive, so it can
only serve demand after that: the units a transfer can save at a receiver are
its demand over the planning horizon beyond what its own stock covers, and
beyond the lead time (what sells out before the goods arrive is lost anyway):

    avoidable = per_day * horizon - max(stock, per_day * lead_time)

A receiver is a location whose cover is below `trigger_cover_days`; it asks for
enough to reach `target_cover_days`. A donor keeps its own `target_cover_days`
of demand plus `keep_days` more, and never its last `min_keep_units` (a store's
last units stay for walk-in shoppers). Receivers are served most urgent first
(lowest cover), each from the donors with the most spare cover first; every
transfer is a whole number of `min_lot`s, and it is suggested only when the
margin of the sales it saves pays for it (`cost_per_transfer` +
`cost_per_unit * qty`). The plan is a pure function of the positions, so a
suggestion that no longer holds simply is not in the next plan (the flow
withdraws it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from operators.merch.velocity import days_of_cover


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """How the planner trades stockouts against transfer costs; every figure is configuration."""

    lead_time_days: float = 2.0
    horizon_days: float = 14.0
    trigger_cover_days: float = 5.0
    target_cover_days: float = 10.0
    keep_days: float = 2.0
    min_keep_units: int = 2
    min_lot: int = 1
    cost_per_transfer: float = 5.0
    cost_per_unit: float = 0.5
    margin_rate: float = 0.4
    """Share of the selling price a saved sale earns: the value of one stockout avoided."""


@dataclass(frozen=True, slots=True)
class Position:
    """One location's side of a SKU: sellable units now, units on their way in, demand per day."""

    location_id: str
    available: int
    inbound: int
    per_day: float

    @property
    def stock(self) -> int:
        return max(0, self.available) + self.inbound

    @property
    def cover_days(self) -> float:
        return days_of_cover(self.stock, self.per_day)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A suggested move of `qty` units of `sku` from `from_location` to `to_location`, with its case."""

    sku: str
    from_location: str
    to_location: str
    qty: int
    expected_stockout_avoided: float
    """Units of demand the receiver would have turned away over the horizon that this transfer serves."""
    value: float
    cost: float
    from_cover_days: float
    to_cover_days: float
    reason: str


def plan_transfers(sku: str, positions: list[Position], policy: TransferPolicy, unit_price: float) -> list[Transfer]:
    """The transfers worth making for `sku` now, most urgent receiver first.

    Examples
    --------
    >>> policy = TransferPolicy(min_lot=5)
    >>> plan = plan_transfers("SKU-1", [
    ...     Position("STORE-01", available=3, inbound=0, per_day=2.0),   # 1.5 days of cover
    ...     Position("STORE-02", available=60, inbound=0, per_day=1.0),  # 60 days
    ...     Position("WH-01", available=0, inbound=0, per_day=0.0),
    ... ], policy, unit_price=20.0)
    >>> [(t.from_location, t.to_location, t.qty, t.expected_stockout_avoided) for t in plan]
    [('STORE-02', 'STORE-01', 20, 20.0)]
    >>> plan_transfers("SKU-1", [Position("STORE-01", 3, 20, 2.0), Position("STORE-02", 60, 0, 1.0)],
    ...                policy, unit_price=20.0)  # the units are on their way already
    []
    """
    receivers = sorted(
        (p for p in positions if p.per_day > 0.0 and p.cover_days < policy.trigger_cover_days),
        key=lambda p: (p.cover_days, p.location_id),
    )
    if not receivers:
        return []  # the common case, kept cheap: every SKU is planned after each batch that moves it
    lot = max(1, policy.min_lot)
    spare: dict[str, int] = {}
    for p in positions:
        keep = max(policy.min_keep_units, math.ceil(p.per_day * (policy.target_cover_days + policy.keep_days)))
        if p.available - keep >= lot:
            spare[p.location_id] = p.available - keep
    by_id = {p.location_id: p for p in positions}
    unit_value = unit_price * policy.margin_rate
    plan: list[Transfer] = []
    for receiver in receivers:
        want = math.ceil(receiver.per_day * policy.target_cover_days) - receiver.stock
        stock = receiver.stock
        for donor_id in sorted(spare, key=lambda d: (-days_of_cover(spare[d], by_id[d].per_day), -spare[d], d)):
            if want <= 0:
                break
            if donor_id == receiver.location_id or spare[donor_id] < lot:
                continue
            qty = min(math.ceil(want / lot) * lot, spare[donor_id] // lot * lot)
            avoidable = receiver.per_day * policy.horizon_days - max(stock, receiver.per_day * policy.lead_time_days)
            avoided = round(max(0.0, min(float(qty), avoidable)), 1)
            cost = policy.cost_per_transfer + policy.cost_per_unit * qty
            value = avoided * unit_value
            if avoided <= 0.0 or value < cost:
                continue  # not worth it from this donor; a cheaper pair cannot exist (costs are per lane-free)
            donor = by_id[donor_id]
            plan.append(Transfer(
                sku, donor_id, receiver.location_id, qty, avoided, round(value, 2), round(cost, 2),
                _days(days_of_cover(donor.available, donor.per_day)), _days(receiver.cover_days),
                f"{receiver.location_id} has {_days(receiver.cover_days)} days of cover at "
                f"{receiver.per_day:.1f}/day; {donor_id} can spare {spare[donor_id]} units",
            ))  # fmt: skip
            spare[donor_id] -= qty
            want -= qty
            stock += qty
    return plan


def _days(days: float) -> float:
    """Days of cover as reported: one decimal, infinity capped at 9999 (JSON has no infinity)."""
    return 9999.0 if days == math.inf else round(min(days, 9999.0), 1)
