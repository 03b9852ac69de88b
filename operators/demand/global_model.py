"""A global online model (river) correcting the smoothing's daily forecasts, learned across a block's SKUs.

The smoothing (`operators.demand.series`) forecasts each SKU from its own history only. This model
learns, across every SKU of a location in a shard, how far the smoothing's served forecast for a
day was off, from what was known when it was served: the forecast itself, recent lags (yesterday,
the same weekday a week before, the last 7 and 28 days, how many of them sold, how long since the
last sale, the fast-moving 7-day rate of rising items), the day's weekday, holiday flag and
weather (when a `weather` event gave it; 0 and a zero flag otherwise). Price is not among them:
the days step hands the models step units per SKU-day only.

Why a correction of the smoothing rather than a forecast of demand: with zero weights (a fresh
model) it serves the smoothing unchanged, and it only moves a forecast where the lags carry
information the smoothing misses. Why normalised: demand spans units to thousands per SKU, so each
row's features and target are divided by the SKU's own scale (its recent daily rate) and clipped,
and one SGD step size suits them all; the correction is scaled back per SKU.

No leakage, by construction: at the close of day `d` it learns from features built from the
series as they stood at the close of `d - 1` (history up to `d - 1`, the forecast served for `d`,
the weather and holidays then known for `d`) and the demand of `d`, now closed. Forecasts after the
close apply it to features built from the days closed so far. Trained one day ahead, it is applied
to every day of the horizon with the origin's lags.

State: the river model (a weight per feature, an intercept and the optimiser's step count), a few
hundred bytes per location and shard; it pickles with the models step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from river import linear_model, optim

from operators.demand.locations import weekday_of
from operators.demand.series import HISTORY_DAYS, LocationSeries

FEATURES = (
    "base", "lag_1", "same_weekday", "mean_7", "mean_28", "recent_7", "sale_days_28", "since_sale",
    "holiday", "has_weather", "temperature", "mon", "tue", "wed", "thu", "fri", "sat", "sun",
)  # fmt: skip
"""The model's inputs, in the column order of `features`."""
_WEEKDAY0 = FEATURES.index("mon")
_MIN_SCALE = 0.05
"""Units per day below which a SKU's scale is not divided down further (one sale in 20 days)."""

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class GlobalModelConfig:
    """The model's knobs (settings `OMNISTREAM_DEMAND_GLOBAL_*`)."""

    learning_rate: float = 0.005
    l2: float = 0.0
    clip: float = 10.0
    """Bound of every normalised feature and target: one SKU's freak day moves the weights a bounded step."""
    rows_per_close: int = 4096
    """SKU rows learnt from per day close at most (spread evenly over the block): a close stays cheap at 1M series."""
    batch_rows: int = 64
    """Rows per SGD step (river `learn_many`)."""
    keep_total: bool = True
    """Scale each day's corrected forecasts so that their sum over the block is the smoothing's: the model moves
    demand between SKUs and leaves the location's total to the smoothing."""


@dataclass(slots=True)
class GlobalCorrection:
    """One location's model in one shard: learns at each day close, corrects the forecasts made at it.

    Examples
    --------
    >>> block = LocationSeries("WEB")
    >>> model = GlobalCorrection()
    >>> model.learn(block, 15159, {"A": 3.0})  # a block with nothing closed yet teaches nothing
    0
    >>> points = np.array([[1.0, 2.0]])
    >>> model.correct(block, np.array([0]), points) is points  # untrained: the smoothing, unchanged
    True
    """

    config: GlobalModelConfig = field(default_factory=GlobalModelConfig)
    model: linear_model.LinearRegression = field(init=False)
    rows_learnt: int = 0

    def __post_init__(self) -> None:
        cfg = self.config
        self.model = linear_model.LinearRegression(
            optimizer=optim.SGD(cfg.learning_rate), l2=cfg.l2, intercept_lr=cfg.learning_rate
        )

    @property
    def trained(self) -> bool:
        return self.rows_learnt > 0

    def weights(self) -> tuple[F64, float]:
        """The linear model's weights in `FEATURES` order and its intercept: applied with numpy, not per row."""
        learnt = self.model.weights
        return np.array([float(learnt.get(name, 0.0)) for name in FEATURES]), float(self.model.intercept)

    def learn(self, block: LocationSeries, day: int, demand: dict[str, float]) -> int:
        """Learn from the closing `day`'s `demand`; call before `block` closes it. Returns the rows learnt.

        `block` must still stand as of `day - 1`: its features and served forecast for `day` are what was
        known then. A block that has not closed `day - 1` (new, or a gap) teaches nothing.
        """
        n = len(block.skus)
        if n == 0 or block.closed_through != day - 1:
            return 0
        rows = np.flatnonzero(
            (block.level[:n] > 1e-3) | (block.history[:n].sum(axis=1) > 0) | (block.next_forecast[:n] > 1e-3)
        )
        sold = np.fromiter((demand.get(sku, 0.0) for sku in block.skus), np.float64, n)
        rows = np.union1d(rows, np.flatnonzero(sold != 0))
        if len(rows) > self.config.rows_per_close:  # evenly spread, shifted by the day: every row takes its turn
            stride = len(rows) / self.config.rows_per_close
            rows = rows[(np.arange(self.config.rows_per_close) * stride + day % max(1, int(stride))).astype(np.int64)]
        if len(rows) == 0:
            return 0
        x, base, scale = features(block, rows, [day], clip=self.config.clip)
        target = np.clip((sold[rows] - base[:, 0]) / scale, -self.config.clip, self.config.clip)
        frame = pd.DataFrame(x[0], columns=list(FEATURES))
        step = self.config.batch_rows
        for start in range(0, len(rows), step):
            self.model.learn_many(frame.iloc[start : start + step], pd.Series(target[start : start + step]))
        self.rows_learnt += len(rows)
        return len(rows)

    def correct(self, block: LocationSeries, rows: npt.NDArray[np.int64], points: F64) -> F64:
        """The smoothing's `points` (rows x days from the day after the last closed one), corrected; never below 0."""
        if not self.trained or len(rows) == 0:
            return points
        weights, intercept = self.weights()
        first = block.closed_through + 1
        x, base, scale = features(block, rows, [first + h for h in range(points.shape[1])], points, self.config.clip)
        out = np.maximum(base + scale[:, None] * (x @ weights + intercept).T, 0.0)
        if self.config.keep_total:
            total = out.sum(axis=0)
            out *= np.divide(base.sum(axis=0), total, out=np.ones_like(total), where=total > 1e-9)
        return out


def features(
    block: LocationSeries, rows: npt.NDArray[np.int64], days: list[int], base: F64 | None = None, clip: float = 10.0
) -> tuple[F64, F64, F64]:
    """Features of `rows` for forecasting each of `days` from the days `block` has closed.

    Returns (days x rows x FEATURES, base as rows x days, scale per row). `base` is the smoothing's
    forecast (default: the block's served points, weather and holidays included). Everything else is read
    from days up to `block.closed_through` and from what the block knows of `days` ahead (holidays,
    weather): nothing dated after the origin.
    """
    origin = block.closed_through
    history = block.history[rows].astype(np.float64)
    if base is None:
        base = np.stack([block.points_for(day, rows).astype(np.float64) for day in days], axis=1)
    last_28 = history[:, [(origin - k) % HISTORY_DAYS for k in range(28)]]
    mean_28 = last_28.mean(axis=1)
    level = np.maximum(block.level[rows].astype(np.float64), 0.0) / 7.0
    scale = np.maximum(np.maximum(level, mean_28), _MIN_SCALE)
    since = origin - block.last_demand_day[rows].astype(np.float64)
    since[block.last_demand_day[rows] < 0] = HISTORY_DAYS
    x = np.zeros((len(days), len(rows), len(FEATURES)))
    x[:, :, 1] = last_28[:, 0] / scale
    x[:, :, 3] = last_28[:, :7].mean(axis=1) / scale
    x[:, :, 4] = mean_28 / scale
    x[:, :, 5] = np.maximum(block.recent_level[rows].astype(np.float64), 0.0) / 7.0 / scale
    x[:, :, 6] = (last_28 > 0).mean(axis=1)
    x[:, :, 7] = np.minimum(since, HISTORY_DAYS) / HISTORY_DAYS
    for h, day in enumerate(days):
        same = day - 7 * ((day - origin + 6) // 7)  # the latest closed day of the same weekday
        x[h, :, 0] = base[:, h] / scale
        x[h, :, 2] = history[:, same % HISTORY_DAYS] / scale
        x[h, :, 8] = 1.0 if block.holidays_ahead.get(day, False) else 0.0
        weather = block.weather_ahead.get(day)
        if weather is not None and block.temperature_mean is not None:
            x[h, :, 9] = 1.0
            x[h, :, 10] = (weather.temperature_c - block.temperature_mean) / 10.0
        x[h, :, _WEEKDAY0 + weekday_of(day)] = 1.0
    np.clip(x, -clip, clip, out=x)
    return x, base, scale
