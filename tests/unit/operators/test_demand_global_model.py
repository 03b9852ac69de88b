"""The global online model of the demand forecasts (`operators/demand/global_model.py`)."""

from __future__ import annotations

import pickle

import numpy as np

from operators.demand.days import DayClose
from operators.demand.global_model import FEATURES, GlobalCorrection, GlobalModelConfig, features
from operators.demand.locations import LocationBook
from operators.demand.models import DemandModels
from operators.demand.series import ForecastConfig, LocationSeries

BOOK = LocationBook.parse("WEB=Europe/London,GB-ENG")
START = 15159  # Monday 2011-07-04
SKUS = [f"SKU-{i:02d}" for i in range(40)]


def alternating(day: int) -> dict[str, float]:
    """Half the SKUs sell 10 units on even days, the other half on odd ones: the location's total is flat.

    The smoothing sees a steady 5 a day per SKU; the day's demand is told by yesterday's (10 after 0, 0 after 10).
    """
    return {sku: 10.0 for i, sku in enumerate(SKUS) if (day + i) % 2 == 0}


def run(days: int, model: GlobalModelConfig | None) -> tuple[DemandModels, float]:
    """Close `days` alternating days; returns the models and the mean absolute error of the next day's forecasts
    (the point served at each close) over the last 14 closes."""
    models = DemandModels(ForecastConfig(alpha=0.1), global_model=model)
    errors: list[float] = []
    served: dict[str, float] = {}
    for day in range(START, START + days):
        demand = alternating(day)
        if day >= START + days - 14:
            errors += [abs(served.get(sku, 0.0) - demand.get(sku, 0.0)) for sku in SKUS]
        (closed,) = models.apply([DayClose("WEB", day, demand, {})], BOOK)
        served = {f.sku: f.points[0] for f in closed.forecasts}
    return models, float(np.mean(errors))


def test_it_learns_a_relation_the_smoothing_misses_and_corrects_the_forecasts_with_it() -> None:
    _, smoothing_error = run(70, None)
    models, corrected_error = run(70, GlobalModelConfig(learning_rate=0.02))
    assert smoothing_error > 4.0  # 5 a day against 0 or 10
    assert corrected_error < smoothing_error / 2
    weights, _ = models.corrections["WEB"].weights()
    assert weights[FEATURES.index("lag_1")] < 0  # sold yesterday: less today


def test_an_untrained_model_serves_the_smoothing_unchanged() -> None:
    plain, _ = run(10, None)
    fresh = GlobalCorrection()
    block = plain.blocks["WEB"]
    rows = np.arange(len(block.skus))
    points = np.array([f.points for f in block.forecasts()], np.float64)
    assert fresh.correct(block, rows, points) is points


def test_it_never_learns_a_day_from_a_block_that_already_holds_it() -> None:
    """Learning the close of `day` needs the block as of `day - 1`: one that has closed `day` (whose features would
    include the demand it is asked to predict) or that missed days teaches nothing."""
    models, _ = run(20, None)
    block = models.blocks["WEB"]
    correction = GlobalCorrection()
    last = block.closed_through
    assert correction.learn(block, last, alternating(last)) == 0
    assert correction.learn(block, last + 2, alternating(last + 2)) == 0
    assert not correction.trained
    assert correction.learn(block, last + 1, alternating(last + 1)) == len(SKUS)


def test_features_are_read_from_closed_days_only() -> None:
    """Two blocks with the same closed days give the same features whatever the demand of the day they forecast."""
    a, b = LocationSeries("WEB"), LocationSeries("WEB")
    for day in range(START, START + 30):
        a.close_day(day, alternating(day))
        b.close_day(day, alternating(day))
    rows = np.arange(len(SKUS))
    days = [START + 30 + h for h in range(7)]
    before, base, scale = features(a, rows, days)
    a_future = pickle.loads(pickle.dumps(a))
    a_future.close_day(START + 30, {sku: 500.0 for sku in SKUS})  # the forecast day's demand, now known to a copy
    assert np.array_equal(features(b, rows, days)[0], before)
    assert before.shape == (7, len(SKUS), len(FEATURES))
    assert (scale > 0).all() and base.shape == (len(SKUS), 7)
    assert not np.array_equal(features(a_future, rows, [START + 31])[0][0], before[1])  # a later origin sees it


def test_its_state_is_small_and_pickles_to_the_same_forecasts() -> None:
    models, _ = run(30, GlobalModelConfig())
    correction = models.corrections["WEB"]
    assert len(pickle.dumps(correction)) < 4096
    restored: DemandModels = pickle.loads(pickle.dumps(models))
    day = START + 30
    (original,) = models.apply([DayClose("WEB", day, alternating(day), {})], BOOK)
    (again,) = restored.apply([DayClose("WEB", day, alternating(day), {})], BOOK)
    assert [f.points for f in again.forecasts] == [f.points for f in original.forecasts]


def test_snapshots_from_before_the_global_model_restore_without_it() -> None:
    models, _ = run(10, GlobalModelConfig())
    legacy = DemandModels.__new__(DemandModels)
    legacy.__setstate__(models.__getstate__()[:4])  # the four parts the models step pickled before
    assert legacy.global_model is None and legacy.corrections == {}
    assert legacy.blocks.keys() == models.blocks.keys()


def test_through_the_flow_events_dated_after_the_origin_leave_its_corrected_forecasts_unchanged() -> None:
    """The flow with the model on: a week of closes teaches it; Tuesday's sales, published out of order among
    Monday's, move none of the forecasts as of Monday."""
    from events.topics import Topic
    from state import keys
    from tests.unit.flows.test_demand_wiring import SETTINGS, latest, record, run, sale

    settings = SETTINGS.model_copy(update={"demand_global_model": True, "demand_global_learning_rate": 0.05})
    days = [f"2026-11-{d:02d}" for d in range(16, 24)]  # Monday 16th .. Monday 23rd
    events = [
        record(
            Topic.POS, 10 * i + k, sale(f"s{i}-{k}", f"T{i}-{k}", f"{day}T{9 + k:02d}:00:00.000Z", sku, 1 + (i + k) % 3)
        )
        for i, day in enumerate(days)
        for k, sku in enumerate(["SKU-A", "SKU-B", "SKU-C"])
        if (i + k) % 2 == 0 or sku == "SKU-A"
    ]
    closes = record(Topic.POS, 999, sale("z", "TZ", "2026-11-24T02:00:00.000Z", "SKU-Z", 1))
    future = [
        record(Topic.POS, 900 + k, sale(f"f{k}", f"F{k}", "2026-11-24T00:30:00.000Z", "SKU-B", 40)) for k in range(2)
    ]
    without = latest(run([*events, closes], settings))
    shuffled = [*events[:-2], future[0], events[-2], future[1], events[-1], closes]
    with_future = latest(run(shuffled, settings))
    assert with_future == without
    forecast = without[keys.forecast("SKU-A", "STORE-1")]
    assert forecast["as_of"] == "2026-11-23"
    assert "global online model" in forecast["method"]
    plain = latest(run([*events, closes], SETTINGS))[keys.forecast("SKU-A", "STORE-1")]
    assert [d["forecast"] for d in forecast["days"]] != [d["forecast"] for d in plain["days"]]  # it is at work
    assert [d["upper"] for d in forecast["days"]] == [d["upper"] for d in plain["days"]]  # the smoothing's intervals
