"""The markdown policy: a step down the price ladder for what will not sell through, never for what runs out."""

from __future__ import annotations

import pytest

from operators.merch.markdown import MarkdownPolicy, suggest_markdown
from operators.merch.velocity import DAY_S

POLICY = MarkdownPolicy(season_end_ts=40 * DAY_S, floor_share=0.3, max_discount=0.5, step=0.1, min_cover_days=21,
                        min_age_days=14, elasticity=2.0, max_change=1.0, cadence_days=0)  # fmt: skip


def price(on_hand: int, per_day: float, *, age: float = 30, current: float = 100.0, now: float = 0.0,
          policy: MarkdownPolicy = POLICY, price_age: float = 30.0) -> float | None:  # fmt: skip
    md = suggest_markdown("SKU-1", on_hand, per_day, age, 100.0, current, now, policy, price_age)
    return None if md is None else md.suggested_price


def test_stock_that_sells_through_by_season_end_keeps_its_price() -> None:
    assert price(35, 1.0) is None  # 35 days of cover, 40 days left


def test_the_step_is_what_the_elasticity_says_sells_the_stock_through_rounded_down_the_ladder() -> None:
    # 50 days of cover for 40 days: demand must rise 1.25x; at elasticity 2, a price factor 1.25^-0.5 = 0.894.
    assert price(50, 1.0) == 80.0  # 10.6% off rounds to the 20% step (the ladder never stops short)
    md = suggest_markdown("SKU-1", 50, 1.0, 30, 100.0, 100.0, 0.0, POLICY)
    assert md is not None and md.discount == pytest.approx(0.2) and md.projected_leftover == 10
    assert "50 units last 50.0 days" in md.reason


def test_never_deeper_than_the_maximum_discount_nor_below_the_floor() -> None:
    assert price(400, 0.1) == 50.0  # no demand to speak of: the maximum discount
    assert price(400, 0.0) == 50.0
    floor_first = MarkdownPolicy(season_end_ts=40 * DAY_S, floor_share=0.6, max_discount=0.9, max_change=1.0)
    assert price(400, 0.1, policy=floor_first) == 60.0


def test_what_is_about_to_run_out_is_never_discounted() -> None:
    late = 39 * DAY_S  # one day left: 10 days of cover would outlast the season
    assert price(10, 1.0, now=late) is None  # but 10 days is below min_cover_days = 21
    assert price(25, 1.0, now=late) == 50.0


def test_fresh_stock_and_a_price_already_low_enough_get_nothing() -> None:
    assert price(400, 0.1, age=13) is None
    assert price(400, 0.1, current=50.0) is None  # already at the suggested price
    # Velocity is read at the current price: 85 * 0.894 = 76, 24% off the list price, the 30% step.
    assert price(50, 1.0, current=85.0) == 70.0


def test_markdowns_go_down_the_ladder_in_steps_and_not_too_often() -> None:
    stepwise = MarkdownPolicy(season_end_ts=40 * DAY_S, max_change=0.2, cadence_days=7)
    assert price(400, 0.1, policy=stepwise) == 80.0  # half price is wanted: 20% now
    assert price(400, 0.1, current=80.0, policy=stepwise) == 60.0  # and 20% more at the next change
    assert price(400, 0.1, current=85.0, policy=stepwise) == 70.0  # from 15% off, at most 35%: the 30% step
    assert price(400, 0.1, current=80.0, policy=stepwise, price_age=6.9) is None  # the last change is too recent
