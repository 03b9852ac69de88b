"""Demand velocity: decayed by event time, unbiased at start, robust to one big basket; days of cover."""

from __future__ import annotations

import math
import pickle

import pytest

from operators.merch.velocity import DAY_S, DemandRate, days_of_cover


def steady(per_day: int, days: int, half_life_days: float = 7.0) -> DemandRate:
    rate = DemandRate(half_life_s=half_life_days * DAY_S)
    for day in range(days):
        for hour in range(per_day):  # spread over the day, one unit each
            rate.add(1, day * DAY_S + hour * DAY_S / per_day)
    return rate


def test_a_steady_demand_reads_as_its_rate_per_day() -> None:
    assert steady(6, 60).per_day(60 * DAY_S) == pytest.approx(6.0, rel=0.05)


def test_a_short_history_is_not_read_as_a_slow_seller() -> None:
    # Three days of 6 a day with a 7-day half-life: the decayed sum is far from full, the rate is not.
    assert steady(6, 3).per_day(3 * DAY_S) == pytest.approx(6.0, rel=0.1)


def test_demand_decays_by_event_time_once_it_stops() -> None:
    rate = steady(4, 120)  # long enough for the start-up correction to be spent
    assert rate.per_day(127 * DAY_S) == pytest.approx(rate.per_day(120 * DAY_S) / 2, rel=0.01)  # one half-life on


def test_one_big_basket_moves_velocity_by_a_few_typical_baskets_only() -> None:
    rate = steady(2, 30)
    before = rate.per_day(30 * DAY_S)
    rate.add(500, 30 * DAY_S)
    after = rate.per_day(30 * DAY_S)
    # 500 units counted raw would add 500 * ln2 / 7 ≈ 50 a day; clipped it adds about 3 typical baskets' worth.
    assert after - before < 0.5
    assert after > before


def test_a_late_event_counts_with_the_weight_it_has_lost() -> None:
    on_time, late = DemandRate(half_life_s=DAY_S), DemandRate(half_life_s=DAY_S)
    on_time.add(2, 0.0)
    on_time.add(2, DAY_S)
    late.add(2, DAY_S)
    late.add(2, 0.0)  # arrives after a newer one
    assert late.per_day(2 * DAY_S) == pytest.approx(on_time.per_day(2 * DAY_S))


def test_no_demand_is_zero_and_the_state_pickles() -> None:
    rate = DemandRate()
    assert rate.per_day(0.0) == 0.0
    rate.add(0, 1.0)  # nothing demanded changes nothing
    assert rate.per_day(1.0) == 0.0
    busy = steady(3, 10)
    assert pickle.loads(pickle.dumps(busy)).per_day(10 * DAY_S) == busy.per_day(10 * DAY_S)


def test_days_of_cover() -> None:
    assert days_of_cover(30, 3.0) == 10.0
    assert days_of_cover(-2, 3.0) == 0.0  # oversold: nothing to sell
    assert days_of_cover(4, 0.0) == math.inf
