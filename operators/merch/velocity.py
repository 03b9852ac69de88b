"""Demand velocity by event time: units per day, decayed, robust to one big basket; and days of cover.

A location's velocity is an exponentially decayed sum of the units demanded there
(till sales and online orders it fulfils), turned into a rate: with decay rate
`k = ln 2 / half_life`, a steady demand of `r` units per second keeps the sum at
`r / k`, so `k * sum` estimates `r`. While the history is shorter than a few
half-lives the sum has not filled up yet; dividing by `1 - exp(-k * age)` (the
share it would have reached) removes that start-up bias, so a location that
opened yesterday is not read as a slow seller.

Sales are censored demand: a shelf that is empty sells nothing, however many
shoppers ask. So the clock of a location's velocity stops while it is out of
stock (`stock_out` ... `restock`): the hours it could not sell neither decay
what it sold before nor count as hours without demand, and a store that sold
out keeps the velocity it had, which is what the transfer planner needs to see.

One big basket (a school buying forty notebooks) must not read as a trend: each
demand counts at most `basket_cap` times the location's typical basket (its
decayed mean units per demand event), and never less than `min_cap` units. The
typical basket itself is learnt from the clipped quantities, so one outlier
cannot raise the cap that clips it.
"""

from __future__ import annotations

import math

import msgspec

DAY_S = 86_400.0


class DemandRate(msgspec.Struct, array_like=True, gc=False):
    """Decayed demand of one SKU at one location.

    Parameters
    ----------
    half_life_s
        Event-time seconds after which a unit of demand counts half.
    basket_cap
        A demand event counts at most this many typical baskets.
    min_cap
        ... and never less than this many units (a new location has no typical basket yet).

    Examples
    --------
    >>> rate = DemandRate(half_life_s=7 * DAY_S)
    >>> for day in range(28):
    ...     rate.add(2, day * DAY_S)  # two units a day for four weeks
    >>> round(rate.per_day(27.5 * DAY_S), 1)
    2.0
    >>> rate.add(200, 28 * DAY_S)  # one huge basket: counted as three typical ones
    >>> round(rate.per_day(28 * DAY_S), 1)
    2.5
    """

    half_life_s: float = 7 * DAY_S
    basket_cap: float = 3.0
    min_cap: float = 3.0
    units: float = 0.0  # decayed units, as of `as_of`
    events: float = 0.0  # decayed demand events, as of `as_of`
    first_ts: float = math.inf
    as_of: float = -math.inf
    out_since: float = math.inf  # event time the location ran out of stock; inf while it has stock

    @property
    def _k(self) -> float:
        return math.log(2.0) / self.half_life_s

    def add(self, qty: int | float, ts: float) -> None:
        """Count `qty` units demanded at event time `ts` (late events are decayed to `as_of`)."""
        if qty <= 0:
            return
        typical = self.units / self.events if self.events > 0 else 0.0
        counted = min(float(qty), max(self.min_cap, self.basket_cap * typical))
        if ts < self.first_ts:
            self.first_ts = ts
        if self.out_since != math.inf:  # demand while empty (an online order): the clock runs again from here
            self.restock(ts)
        if ts >= self.as_of:
            self._decay_to(ts)
            weight = 1.0
        else:  # a late event: it has already lost part of its weight
            weight = math.exp(-self._k * (self.as_of - ts))
        self.units += counted * weight
        self.events += weight

    def stock_out(self, ts: float) -> None:
        """The location has nothing to sell from `ts` on: the velocity's clock stops.

        >>> rate = DemandRate(half_life_s=DAY_S)
        >>> for hour in range(30 * 24):
        ...     rate.add(1, hour * 3600.0)
        >>> before = rate.per_day(30 * DAY_S)
        >>> rate.stock_out(30 * DAY_S)
        >>> rate.per_day(50 * DAY_S) == before  # three weeks empty: still the velocity it sold at
        True
        >>> rate.restock(50 * DAY_S)
        >>> round(rate.per_day(51 * DAY_S) / before, 2)  # a day after the restock, nothing sold: half of it
        0.5
        """
        if self.out_since == math.inf and self.first_ts != math.inf:
            self.out_since = max(ts, self.as_of)

    def restock(self, ts: float) -> None:
        """The location has stock again at `ts`: the clock runs on, skipping the time it was empty."""
        if self.out_since == math.inf:
            return
        gap = max(0.0, ts - self.out_since)
        self.as_of += gap
        self.first_ts += gap
        self.out_since = math.inf

    def _decay_to(self, ts: float) -> None:
        if self.as_of != -math.inf and ts > self.as_of:
            factor = math.exp(-self._k * (ts - self.as_of))
            self.units *= factor
            self.events *= factor
        self.as_of = ts

    def per_day(self, now: float) -> float:
        """Units per day at event time `now` (0 before any demand)."""
        if self.first_ts == math.inf or self.units <= 0.0:
            return 0.0
        k = self._k
        if now > self.out_since:
            now = self.out_since  # out of stock: the clock stopped then
        elapsed = max(0.0, now - self.as_of)
        units = self.units * math.exp(-k * elapsed)
        # The start-up correction, with the history at least a day long: demand seen within one day
        # reads as that day's demand, not as an extrapolated rate from a few minutes.
        age = max(now - self.first_ts, DAY_S)
        filled = 1.0 - math.exp(-k * age)
        return k * units / filled * DAY_S


def days_of_cover(available: float, per_day: float) -> float:
    """How many days `available` units last at `per_day`: infinite without demand, 0 with nothing to sell.

    >>> days_of_cover(30, 2.0), days_of_cover(0, 2.0), days_of_cover(5, 0.0)
    (15.0, 0.0, inf)
    """
    if available <= 0:
        return 0.0
    if per_day <= 0.0:
        return math.inf
    return available / per_day
