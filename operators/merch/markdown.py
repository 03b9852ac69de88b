"""The markdown policy: a price step for stock that will not sell through by season end, never for what runs out.

At today's velocity a SKU's stock lasts `cover` days; the season ends in
`days_left`. If it lasts longer, the leftover is what markdowns are for: selling
it all needs `cover / days_left` times today's demand. With a constant price
elasticity `e` (demand scales with price to the power `-e`), that takes a price
of `current * (cover / days_left) ** (-1 / e)`. The suggestion is that price
rounded to the discount ladder (`step` of the list price), never deeper than
`max_discount` nor below `floor_share` of the list price, at most `max_change`
deeper than today's price and not within `cadence_days` of the last price
change (a markdown needs a week to show in the velocity it is judged by, and
that velocity is read from sales, which stockouts censor: going down the
ladder in steps keeps one misread week from clearing a line at half price),
and only if it is below today's price. It is never made for stock younger than `min_age_days`
(too soon to judge) nor for a SKU with fewer than `min_cover_days` of cover:
what is about to run out is not discounted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from operators.merch.velocity import DAY_S, days_of_cover


@dataclass(frozen=True, slots=True)
class MarkdownPolicy:
    """The markdown rules; every figure is configuration. `season_end_ts` is epoch seconds (event time)."""

    season_end_ts: float
    floor_share: float = 0.3
    max_discount: float = 0.5
    step: float = 0.1
    min_cover_days: float = 21.0
    min_age_days: float = 14.0
    elasticity: float = 2.0
    max_change: float = 0.2
    """Deepest cut in one suggestion, as a share of the list price: markdowns go down the ladder in steps."""
    cadence_days: float = 7.0
    """No new markdown within this many days of the last price change: the last one needs time to show."""


@dataclass(frozen=True, slots=True)
class Markdown:
    """A suggested new selling price for `sku`, with the figures that justify it."""

    sku: str
    current_price: float
    suggested_price: float
    list_price: float
    discount: float
    """Off the list price, a multiple of the policy's step."""
    on_hand: int
    per_day: float
    cover_days: float
    days_left: float
    projected_leftover: int
    """Units still on hand at season end at today's price and velocity."""
    reason: str


def suggest_markdown(
    sku: str,
    on_hand: int,
    per_day: float,
    age_days: float,
    list_price: float,
    current_price: float,
    now: float,
    policy: MarkdownPolicy,
    price_age_days: float = math.inf,
) -> Markdown | None:
    """The markdown `sku` needs at event time `now`, or None; `price_age_days` is how long ago its price last changed.

    Examples
    --------
    >>> policy = MarkdownPolicy(season_end_ts=30 * DAY_S)
    >>> md = suggest_markdown("SKU-1", on_hand=120, per_day=1.0, age_days=40, list_price=50.0, current_price=50.0,
    ...                       now=0.0, policy=policy)  # 120 days of cover, 30 days left: half price would do
    >>> md.suggested_price, md.discount, md.projected_leftover  # one change goes at most 20% down the ladder
    (40.0, 0.2, 90)
    >>> suggest_markdown("SKU-1", 10, 1.0, 40, 50.0, 50.0, 0.0, policy) is None  # 10 days: about to run out
    True
    >>> suggest_markdown("SKU-1", 120, 1.0, 3, 50.0, 50.0, 0.0, policy) is None  # fresh stock
    True
    """
    if on_hand <= 0 or list_price <= 0.0 or current_price <= 0.0 or age_days < policy.min_age_days:
        return None
    if price_age_days < policy.cadence_days:
        return None
    cover = days_of_cover(on_hand, per_day)
    if cover < policy.min_cover_days:
        return None
    days_left = max(1.0, (policy.season_end_ts - now) / DAY_S)
    if cover <= days_left:
        return None
    uplift = cover / days_left  # infinite without demand
    target = current_price * uplift ** (-1.0 / policy.elasticity) if uplift != math.inf else 0.0
    wanted = 1.0 - target / list_price
    steps = math.ceil(wanted / policy.step - 1e-9)
    current_discount = 1.0 - current_price / list_price
    deepest = min(policy.max_discount, current_discount + policy.max_change, 1.0 - policy.floor_share)
    discount = math.floor(min(deepest, max(0.0, steps * policy.step)) / policy.step + 1e-9) * policy.step
    price = round(max(list_price * (1.0 - discount), list_price * policy.floor_share), 2)
    if price >= current_price - 0.005:
        return None
    leftover = max(0, on_hand - math.floor(per_day * days_left))
    cover_shown = 9999.0 if cover == math.inf else round(cover, 1)
    return Markdown(
        sku, current_price, price, list_price, round(discount, 4), on_hand, round(per_day, 3), cover_shown,
        round(days_left, 1), leftover,
        f"{on_hand} units last {cover_shown} days at {per_day:.2f}/day, {round(days_left, 1)} days to season end; "
        f"stock is {age_days:.0f} days old",
    )  # fmt: skip
