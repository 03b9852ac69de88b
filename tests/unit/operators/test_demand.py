"""Demand operators: open days and their journals, the series model, locations and holidays."""

from __future__ import annotations

import itertools
import pickle
import random
from datetime import UTC, date, datetime

import numpy as np
import pytest

from operators.demand.days import CancelOrder, DayClose, Demand, LateDemand, OpenDays, Tick, VoidTxn, WeatherDay
from operators.demand.holiday_calendar import HolidayCalendar
from operators.demand.locations import LocationBook, day_number
from operators.demand.models import DemandModels
from operators.demand.series import ForecastConfig, LocationSeries
from operators.seen_events import SeenEvents

BOOK = LocationBook.parse("S1=Europe/London,GB-ENG;NY-*=America/New_York,US,2,0.9")
MONDAY = day_number(date(2026, 11, 23))


def at(day: int, hour: float) -> float:
    """Epoch seconds of `hour` o'clock UTC on 2026-11-`day` (London is on UTC then)."""
    return datetime(2026, 11, day, tzinfo=UTC).timestamp() + hour * 3600


def closes(out: list[DayClose | LateDemand]) -> list[tuple[str, int, dict[str, float]]]:
    return [(c.location_id, c.day, c.demand) for c in out if type(c) is DayClose]


def test_a_void_before_its_sale_and_a_cancel_before_its_order_both_net_to_nothing() -> None:
    days = OpenDays(lateness_s=0.0, journal_s=86_400.0)
    out = days.apply(
        [
            VoidTxn("v1", at(23, 10), "S1", "T1"),
            Demand("s1", at(23, 9), "S1", "A", 4, txn_id="T1"),
            CancelOrder("c1", at(23, 11), "S1", "B", "O1"),
            Demand("p1", at(23, 10), "S1", "B", 2, order_id="O1"),
            Demand("p2", at(23, 12), "S1", "B", 3, order_id="O2"),
            Tick(at(24, 0.5), 0),
        ],
        BOOK,
    )
    assert closes(out) == [("S1", MONDAY, {"B": 3.0})]


def test_a_void_after_its_day_closed_is_a_late_correction_on_the_sales_day() -> None:
    days = OpenDays(lateness_s=0.0, journal_s=86_400.0)
    first = days.apply([Demand("s1", at(23, 22), "S1", "A", 4, txn_id="T1"), Tick(at(24, 0.5), 0)], BOOK)
    assert closes(first) == [("S1", MONDAY, {"A": 4.0})]
    late = days.apply([VoidTxn("v1", at(24, 1), "S1", "T1"), VoidTxn("v1", at(24, 1), "S1", "T1")], BOOK)
    assert late == [LateDemand("S1", MONDAY, "A", -4.0)]  # once: the redelivered void changes nothing


def test_every_day_closes_in_order_empty_ones_included_each_at_its_local_midnight() -> None:
    days = OpenDays(lateness_s=0.0, journal_s=3600.0)
    days.apply([Demand("a", at(23, 12), "S1", "A", 1), Demand("b", at(23, 12), "NY-1", "A", 1)], BOOK)
    # 03:00 UTC on the 26th: London has closed the 23rd, 24th and 25th; New York (UTC-5) the 23rd and 24th.
    out = days.apply([Tick(at(26, 3), 2)], BOOK)
    assert [(c.location_id, c.day - MONDAY, c.shard) for c in out if type(c) is DayClose] == [
        ("S1", 0, 2),
        ("S1", 1, 2),
        ("S1", 2, 2),
        ("NY-1", 0, 2),
        ("NY-1", 1, 2),
    ]


def test_weather_rides_with_the_close_and_an_observation_is_not_replaced_by_a_forecast() -> None:
    days = OpenDays(lateness_s=0.0, journal_s=3600.0)
    days.apply([Demand("a", at(23, 12), "S1", "A", 1)], BOOK)
    days.apply(
        [
            WeatherDay("w1", at(23, 6), "S1", MONDAY, True, 8.0, 1.0),
            WeatherDay("w2", at(23, 7), "S1", MONDAY, False, 30.0, 0.0),
            WeatherDay("w3", at(23, 7), "S1", MONDAY + 2, False, 11.0, 0.0),
        ],
        BOOK,
    )
    (close,) = [c for c in days.apply([Tick(at(24, 0.5), 0)], BOOK) if type(c) is DayClose]
    assert close.weather == {MONDAY: (8.0, 1.0), MONDAY + 2: (11.0, 0.0)}


def test_open_days_survive_a_snapshot() -> None:
    days = OpenDays(lateness_s=0.0, journal_s=3600.0)
    days.apply([Demand("a", at(23, 12), "S1", "A", 2, txn_id="T1")], BOOK)
    resumed: OpenDays = pickle.loads(pickle.dumps(days))
    assert resumed.apply([Demand("a", at(23, 12), "S1", "A", 2, txn_id="T1"), Tick(at(24, 1), 0)], BOOK) == (
        days.apply([Demand("a", at(23, 12), "S1", "A", 2, txn_id="T1"), Tick(at(24, 1), 0)], BOOK)
    )


def _journalled_days() -> OpenDays:
    """Open days holding every kind of journal entry: a till line, a void before its sale, an order and a cancel."""
    days = OpenDays(lateness_s=3600.0, journal_s=86_400.0)
    days.apply(
        [
            Demand("s1", at(23, 9), "S1", "A", 4, txn_id="T1"),
            VoidTxn("v1", at(23, 10), "S1", "T9"),
            Demand("p1", at(23, 10), "S1", "B", 2, order_id="O1"),
            CancelOrder("c1", at(23, 11), "S1", "B", "O1", 1),
            Tick(at(23, 12), 0),
        ],
        BOOK,
    )
    return days


def _later(days: OpenDays) -> list[DayClose | LateDemand]:
    """What a snapshot must reproduce: a void of the journalled sale, the rest of the order cancelled, a close."""
    return days.apply(
        [VoidTxn("v2", at(23, 13), "S1", "T1"), CancelOrder("c2", at(23, 14), "S1", "", "O1"),
         Demand("s9", at(23, 9), "S1", "C", 1, txn_id="T9"), Tick(at(24, 2), 0)],
        BOOK,
    )  # fmt: skip


def test_a_snapshot_keeps_every_journal_and_reads_back_equal() -> None:
    days = _journalled_days()
    resumed: OpenDays = pickle.loads(pickle.dumps(days))
    for name in ("txns", "orders", "voided", "expiry", "locations", "watermark", "shard", "late_dropped"):
        assert getattr(resumed, name) == getattr(days, name), name
    after = _later(resumed)
    assert after == _later(days)
    assert closes(after) == [("S1", MONDAY, {})]  # the void, the cancels and the voided-first sale net to nothing


def _basket(event_id: str, hour: float) -> list[Demand]:
    """One delivery of a till basket: SKU A on lines 0 and 1 (each counts), B on line 2, as the decoder routes them."""
    ts = at(23, hour)
    return [Demand(event_id, ts, "S1", "A", 2, txn_id=event_id, line=0),
            Demand(event_id, ts, "S1", "A", 1, txn_id=event_id, line=1),
            Demand(event_id, ts, "S1", "B", 5, txn_id=event_id, line=2)]  # fmt: skip


def test_each_line_of_a_basket_counts_and_each_redelivery_of_it_counts_nothing() -> None:
    days = OpenDays(lateness_s=0.0, journal_s=86_400.0)
    # Delivered, redelivered at once (the same lines again, from line 0), then again in a later batch.
    days.apply([*_basket("e1", 9), *_basket("e1", 9), *_basket("e2", 10)], BOOK)
    out = days.apply([*_basket("e1", 9), Tick(at(24, 1), 0)], BOOK)
    assert closes(out) == [("S1", MONDAY, {"A": 6.0, "B": 10.0})]


def test_a_redelivery_of_lines_a_snapshot_before_the_upgrade_recorded_one_by_one_counts_nothing() -> None:
    """Snapshots of `_FORMAT` 2 recorded each line as `event_id#line`: such a redelivery is still recognised."""
    days = OpenDays(lateness_s=0.0, journal_s=86_400.0)
    days.apply(_basket("e1", 9), BOOK)
    state = days.__getstate__()
    per_line = SeenEvents(86_400.0)
    for line in range(3):
        per_line.add(f"e1#{line}", at(23, 9))
    earlier = {key: value for key, value in state.items() if key != "legacy_until"}
    earlier.update(format=2, seen=per_line)
    resumed = OpenDays.__new__(OpenDays)
    resumed.__setstate__(pickle.loads(pickle.dumps(earlier)))
    out = resumed.apply([*_basket("e1", 9), *_basket("e2", 10), Tick(at(24, 1), 0)], BOOK)
    assert closes(out) == [("S1", MONDAY, {"A": 6.0, "B": 10.0})]  # e1 once (before the snapshot), e2 once


def test_a_snapshot_of_the_layout_before_msgpack_journals_still_loads() -> None:
    days = _journalled_days()
    slots = {name: getattr(days, name) for name in OpenDays.__slots__}
    old = OpenDays.__new__(OpenDays)
    old.__setstate__((None, slots))  # what pickle stored for the slots dataclass without `__getstate__`
    assert _later(old) == _later(_journalled_days())


def test_intervals_are_steered_to_cover_the_target_share_of_sku_days() -> None:
    """Intermittent Poisson-gamma demand of 300 SKUs: the realised share inside the 80% intervals tracks 0.8."""
    rng = np.random.default_rng(1)
    block = LocationSeries("S1", ForecastConfig())
    rates = rng.gamma(0.5, 2.0, size=300)
    inside = judged = 0
    for day in range(MONDAY, MONDAY + 200):
        demand = rng.poisson(rates * rng.gamma(2.0, 0.5, size=300))
        if day >= MONDAY + 120:
            forecasts = block.forecasts(days=1)
            lower = np.array([f.lower[0] for f in forecasts])
            upper = np.array([f.upper[0] for f in forecasts])
            actual = np.array([demand[int(f.sku.removeprefix("SKU-"))] for f in forecasts])
            inside += int(((actual >= lower - 1e-6) & (actual <= upper + 1e-6)).sum())
            judged += len(forecasts)
        block.close_day(day, {f"SKU-{i}": float(q) for i, q in enumerate(demand) if q})
    assert 0.75 <= inside / judged <= 0.85


def test_a_holiday_learns_its_own_factor_and_leaves_the_weekday_profile_alone() -> None:
    block = LocationSeries("S1", ForecastConfig(alpha=0.2))
    for day in range(MONDAY, MONDAY + 112):
        holiday = (day - MONDAY) % 14 == 9  # every other Wednesday is a holiday: demand halves
        block.close_day(day, {"A": 5.0 if holiday else 10.0}, holiday=holiday)
    assert 0.4 < block.holiday_factor < 0.65
    shares = [block.forecast("A", days=7).points[k] for k in range(7)]
    assert max(shares) - min(shares) < 0.05 * max(shares)  # Wednesdays are not marked down as a weekday
    ahead = {MONDAY + 113 + k: k == 1 for k in range(28)}  # the second day forecast is a holiday
    block.close_day(MONDAY + 112, {"A": 10.0}, holidays_ahead=ahead)
    points = block.forecast("A", days=7).points
    assert points[1] < 0.7 * points[0]


def test_a_new_sku_starts_from_its_first_week_and_an_idle_one_is_forgotten() -> None:
    block = LocationSeries("S1", ForecastConfig(idle_days=28))
    block.close_day(MONDAY, {"A": 7.0, "B": 1.0})
    for day in range(MONDAY + 1, MONDAY + 40):
        block.close_day(day, {"A": 7.0})
    assert block.skus == ["A"]
    assert block.forecast("B").points == [0.0] * 28


def test_late_demand_changes_the_history_not_the_forecast_already_made() -> None:
    models = DemandModels(ForecastConfig(alpha=1.0))
    first = models.apply([DayClose("S1", MONDAY, {"A": 7.0}, {})], BOOK)
    models.apply([LateDemand("S1", MONDAY, "A", 7.0), LateDemand("S1", MONDAY - 400, "A", 1.0)], BOOK)
    assert models.late_dropped == 1  # older than the history kept
    second = models.apply([DayClose("S1", MONDAY + 1, {}, {})], BOOK)
    assert sum(first[0].forecasts[0].points[:7]) == pytest.approx(7.0, abs=1e-3)
    assert sum(second[0].forecasts[0].points[:7]) == pytest.approx(14.0, abs=1e-3)


def test_a_replayed_close_changes_nothing() -> None:
    models = DemandModels(ForecastConfig())
    models.apply([DayClose("S1", MONDAY, {"A": 3.0}, {})], BOOK)
    snapshot = pickle.dumps(models)
    assert models.apply([DayClose("S1", MONDAY, {"A": 99.0}, {})], BOOK) == []
    assert pickle.dumps(models) == snapshot


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("S1", "expected id_or_glob="),
        ("S1=Europe/London", "expected id_or_glob="),
        ("S1=Europe/Lundun,GB", "unknown time zone"),
        ("S1=Europe/London,gb", "ISO 3166"),
        ("S1=Europe/London,GB,-3", "lead_days"),
        ("S1=Europe/London,GB,3,1.5", "service_level"),
    ],
)
def test_a_bad_location_rule_is_refused_with_the_reason(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        LocationBook.parse(spec)


def test_holidays_follow_the_country_and_its_subdivision() -> None:
    christmas, summer = day_number(date(2026, 12, 25)), day_number(date(2026, 8, 31))
    assert HolidayCalendar("GB").is_holiday(christmas) and HolidayCalendar("US").is_holiday(christmas)
    assert HolidayCalendar("GB-ENG").is_holiday(summer) and not HolidayCalendar("GB-SCT").is_holiday(summer)
    assert not HolidayCalendar("US").is_holiday(day_number(date(2026, 12, 24 - random.Random(1).randint(1, 5))))


ORDER_EVENTS: list[Demand | CancelOrder] = [
    Demand("p1", at(23, 9), "S1", "A", 2, order_id="O1", line=0),
    Demand("p1", at(23, 9), "S1", "B", 5, order_id="O1", line=1),
    Demand("p2", at(23, 10), "S1", "A", 4, order_id="O2"),
    CancelOrder("c1", at(23, 11), "", "", "O1"),  # the whole of O1
    CancelOrder("c2", at(23, 12), "", "A", "O2", 1),  # one unit of O2's A, wherever it was reserved
    CancelOrder("c3", at(23, 13), "S1", "A", "O2", 1),  # another unit of it, at S1
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(ORDER_EVENTS))))[::37])
def test_whole_order_and_line_cancels_net_exactly_in_any_arrival_order(order: tuple[int, ...]) -> None:
    days = OpenDays(lateness_s=0.0, journal_s=86_400.0)
    out = days.apply([*(ORDER_EVENTS[i] for i in order), ORDER_EVENTS[order[0]], Tick(at(24, 0.5), 0)], BOOK)
    assert closes(out) == [("S1", MONDAY, {"A": 2.0})]  # O1 gone whole; O2's A: 4 less 2 cancelled units


def test_a_whole_order_cancel_after_the_orders_day_closed_is_a_late_correction_of_every_line() -> None:
    days = OpenDays(lateness_s=0.0, journal_s=86_400.0)
    first = days.apply([*ORDER_EVENTS[:2], Tick(at(24, 0.5), 0)], BOOK)
    assert closes(first) == [("S1", MONDAY, {"A": 2.0, "B": 5.0})]
    late = days.apply([CancelOrder("c1", at(24, 1), "", "", "O1")], BOOK)
    corrections = sorted((c.sku, c.day, c.qty) for c in late if type(c) is LateDemand)
    assert corrections == [("A", MONDAY, -2.0), ("B", MONDAY, -5.0)]


def test_a_line_cancel_for_another_location_or_sku_leaves_the_line_alone() -> None:
    days = OpenDays(lateness_s=0.0, journal_s=86_400.0)
    out = days.apply(
        [
            ORDER_EVENTS[0],
            CancelOrder("c1", at(23, 11), "S2", "A", "O1"),
            CancelOrder("c2", at(23, 11), "", "Z", "O1"),
            Tick(at(24, 0.5), 0),
        ],
        BOOK,
    )
    assert closes(out) == [("S1", MONDAY, {"A": 2.0})]
