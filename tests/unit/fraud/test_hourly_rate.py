"""`HourlyRate`'s closed forms against the hour-by-hour walk they replaced (kept here as the oracle)."""

from __future__ import annotations

import math
import random

import pytest

from operators.fraud.hourly_rate import DAY_S, HOUR_S, HourlyRate


def walked(per_hour: list[float], start: float, end: float, target: float) -> tuple[float, float]:
    """The walk `SalesPulse` ran until 2026-12-07: hour by hour for 48 steps, then the daily average."""
    total, t, steps = 0.0, start, 0
    while t < end and steps < 48:
        hour_end = min(end, (math.floor(t / HOUR_S) + 1) * HOUR_S)
        rate = per_hour[int(t // HOUR_S) % 24] / HOUR_S
        part = rate * (hour_end - t)
        if total + part >= target:
            return total + part, t + (target - total) / rate
        total, t, steps = total + part, hour_end, steps + 1
    if t < end:
        rate = sum(per_hour) / DAY_S
        part = rate * (end - t)
        if total + part >= target:
            return total + part, t + (target - total) / rate
        total += part
    return total, math.inf


def profiles(rng: random.Random) -> list[float]:
    """A store's day: busy, quiet, closed at night, or a terminal that sells a few times a day."""
    kind = rng.choice(["busy", "shop", "sparse", "one_hour"])
    if kind == "busy":
        return [rng.uniform(5.0, 200.0) for _ in range(24)]
    if kind == "shop":
        opens, closes = rng.randint(6, 10), rng.randint(17, 22)
        return [rng.uniform(1.0, 30.0) if opens <= h < closes else 0.0 for h in range(24)]
    if kind == "sparse":
        return [rng.choice([0.0, 0.0, 0.0, rng.uniform(0.01, 0.5)]) for _ in range(24)]
    day = [0.0] * 24
    day[rng.randrange(24)] = rng.uniform(0.05, 3.0)
    return day


@pytest.mark.parametrize("seed", range(5))
def test_expected_sales_and_the_time_a_count_is_reached_equal_the_hourly_walk(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2_000):
        per_hour = profiles(rng)
        rate = HourlyRate(per_hour)
        start = 1_531_000_000.0 + rng.uniform(0, 40 * DAY_S)
        if rng.random() < 0.2:
            start = math.floor(start / HOUR_S) * HOUR_S  # on an hour's edge
        end = start + rng.choice([rng.uniform(0, 3 * HOUR_S), rng.uniform(0, 3 * DAY_S), rng.uniform(0, 30 * DAY_S)])
        expected = walked(per_hour, start, end, math.inf)[0]
        assert rate.expected(start, end) == pytest.approx(expected, rel=1e-9, abs=1e-9)

        target = rng.choice([10.0, 30.0, rng.uniform(0.1, 50.0)])
        deadline = walked(per_hour, start, start + 60 * DAY_S, target)[1]
        found = rate.reaching(start, target)
        if math.isinf(deadline):
            assert math.isinf(found)
        else:
            assert found == pytest.approx(deadline, abs=1e-3), (per_hour, start, target)


def test_a_count_reached_at_the_end_of_a_day_s_last_open_hour_is_reached_then_not_at_midnight() -> None:
    rate = HourlyRate([0.0] * 9 + [1.0] * 8 + [0.0] * 7)  # 8 sales a day, 09:00-17:00
    assert rate.reaching(9 * HOUR_S, 8.0) == 17 * HOUR_S
    assert rate.reaching(9 * HOUR_S, 16.0) == DAY_S + 17 * HOUR_S


def test_a_day_without_sales_is_never_reached_and_a_profile_needs_24_hours() -> None:
    assert math.isinf(HourlyRate([0.0] * 24).reaching(1000.0, 1.0))
    assert HourlyRate([0.0] * 24).expected(0.0, 10 * DAY_S) == 0.0
    with pytest.raises(ValueError, match="24 hours"):
        HourlyRate([1.0] * 23)
