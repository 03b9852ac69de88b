"""Daily demand history and forecasts of every SKU at one location (in one shard), column by column.

The method, measured on a real retail log (docs/demand.md, `benchmarks/forecast.py`):

- **Level**: the demand of the last 7 days, a rolling sum updated at every day close, smoothed
  exponentially (`alpha`). Smoothing a temporal aggregate rather than the daily series is what
  makes it intermittence-aware: a SKU that sells 12 units every other Tuesday has a steady weekly
  rate, while its daily series is mostly zeros (the idea of ADIDA, with overlapping weeks so that
  it updates daily; on the log it beat daily Croston/TSB smoothing by 4-6 points of SKU-week WAPE).
- **Weekday profile**: the location's share of a week's demand falling on each weekday, decayed
  sums over the SKUs of the block (a shop that is shut on Saturdays forecasts zero there).
- **Holidays**: public holidays of the location's country are left out of the weekday profile, and a
  holiday factor (demand on holidays over what the profile expected) is learned and applied to them.
- **Weather**: when a `weather` event gave the day's temperature, each SKU's sensitivity to the
  temperature's departure from the location's running mean is learned (normalised LMS on the
  ratio of demand to forecast); a forecast day with weather applies it. Without weather, nothing changes.
- **Intervals (80% by default)**: the ratio of demand to the forecast made the day before is kept as a
  decayed histogram per block, whose quantiles scale each point forecast; the two quantile levels are
  steered online (adaptive conformal inference) so that the realised share of SKU-days inside the
  intervals tracks the target.

Everything is a numpy column over the block's SKUs (a row each), so one day close updates
thousands of series in a few vector operations, and the state pickles as flat buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from operators.demand.locations import weekday_of

HISTORY_DAYS = 56
"""Closed days of demand kept per series (a ring): the rolling week, the last 28 days, late corrections."""
_TINY = 1e-3

_COLUMNS = (("history", 0.0), ("level", 0.0), ("next_forecast", 0.0), ("temperature_coef", 0.0),
            ("low_rate", 0.0), ("high_rate", 0.0), ("last_demand_day", -1), ("first_day", -1),
            ("recent_level", 0.0))  # fmt: skip
"""The per-row columns and what a fresh row holds."""

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    """The forecaster's knobs (settings `OMNISTREAM_DEMAND_*`); defaults as measured in docs/demand.md."""

    alpha: float = 0.03
    """Smoothing of the rolling 7-day demand per day close."""
    profile_half_life_weeks: float = 8.0
    holiday_rate: float = 0.3
    interval: float = 0.8
    interval_step: float = 0.01
    """Step of the online steering of the interval's quantile levels (adaptive conformal inference)."""
    score_half_life_days: float = 28.0
    weather_rate: float = 0.08
    horizon_days: int = 28
    idle_days: int = 112
    """A series with no demand for this many days is forgotten (its forecast was zero long since)."""
    rising_alpha: float = 0.03
    """Smoothing of the rolling 7-day demand for rising items; at `alpha`, rising items compare the point forecast
    itself. A short memory (0.25) flags a take-off within days, but ranked worse on the real log (docs/demand.md)."""


@dataclass(frozen=True, slots=True)
class DayWeather:
    """The weather of one local day at a location (observed or forecast)."""

    temperature_c: float
    precipitation_mm: float = 0.0


@dataclass(frozen=True, slots=True)
class SeriesForecast:
    """One SKU's daily forecasts from `first_day` on: points and the interval's bounds, units per day."""

    sku: str
    first_day: int
    points: list[float]
    lower: list[float]
    upper: list[float]
    last_28_days: float
    recent_7_days: float = 0.0
    """The next 7 days at the recent rate (`rising_alpha`), with their weekday shares and holidays: what rising items
    compare with the last 28 days (the point forecast's long memory would see a take-off weeks late)."""


@dataclass(slots=True)
class LocationSeries:
    """All SKUs of one location held by one shard: histories, levels and the block's shared calibration.

    Examples
    --------
    A SKU that sells 6 units every day but Saturday, for four weeks (with `alpha` 1 the level is
    simply the last 7 days; the default smooths over about a month):

    >>> block = LocationSeries("STORE-01", ForecastConfig(alpha=1.0))
    >>> for day in range(15158, 15158 + 28):  # from Sunday 2011-07-03
    ...     _ = block.close_day(day, {} if day % 7 == 2 else {"SKU-1": 6})  # day % 7 == 2: Saturdays
    >>> fc = block.forecast("SKU-1", days=7)
    >>> fc.first_day, [round(p, 1) for p in fc.points]  # from Sunday 2011-07-31: a zero on Saturday
    (15186, [6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 0.0])
    """

    location_id: str
    config: ForecastConfig = field(default_factory=ForecastConfig)
    skus: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    history: F32 = field(default_factory=lambda: np.zeros((0, HISTORY_DAYS), np.float32))
    level: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    next_forecast: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    temperature_coef: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    low_rate: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    high_rate: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    """Each SKU's interval bounds as weekly rates: quantiles of its recent days, each scaled up by its weekday."""
    last_demand_day: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    first_day: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    recent_level: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    """The rolling 7-day demand smoothed with `rising_alpha`: the recent weekly rate, for rising items."""
    closed_through: int = -1
    profile: list[float] = field(default_factory=lambda: [-1.0] * 7)
    """Decayed demand per weekday over the block (Monday first); -1 until a weekday is first closed."""
    holiday_factor: float = 1.0
    lower_level: float = 0.1
    upper_level: float = 0.9
    temperature_mean: float | None = None
    weather_ahead: dict[int, DayWeather] = field(default_factory=dict)
    holidays_ahead: dict[int, bool] = field(default_factory=dict)
    covered: tuple[int, int] = (0, 0)
    """SKU-days whose actual fell inside the interval given the day before, and SKU-days judged (lifetime)."""

    # --- writing --------------------------------------------------------------------------------------

    def row_of(self, sku: str) -> int:
        """The row of `sku`, appended (zero history) when new."""
        row = self.rows.get(sku)
        if row is None:
            row = self.rows[sku] = len(self.skus)
            self.skus.append(sku)
            if row >= len(self.level):
                self._grow(max(16, 2 * len(self.level)))
        return row

    def add_late(self, sku: str, day: int, qty: float) -> bool:
        """Demand for an already closed `day` (a late event): into the history if still kept; False if too old.

        The forecast is not recomputed now: the next day close uses it, so a forecast is always
        the one made at its day close from what had arrived by then.
        """
        if day > self.closed_through or day <= self.closed_through - HISTORY_DAYS:
            return False
        row = self.row_of(sku)
        self.history[row, day % HISTORY_DAYS] += qty
        if qty > 0:
            self.last_demand_day[row] = max(int(self.last_demand_day[row]), day)
        return True

    def close_day(
        self,
        day: int,
        demand: dict[str, float],
        *,
        holiday: bool = False,
        weather: DayWeather | None = None,
        weather_ahead: dict[int, DayWeather] | None = None,
        holidays_ahead: dict[int, bool] | None = None,
    ) -> bool:
        """Close `day` with its net demand per SKU; False (nothing changes) if it is already closed.

        Days between the last closed one and `day` must have been closed first (the caller closes
        every day in order, empty ones included). `weather_ahead`/`holidays_ahead` describe the
        coming days for the forecasts made now (absent days: no weather effect, no holiday).
        """
        if day <= self.closed_through:
            return False
        cfg = self.config
        for sku in demand:
            self.row_of(sku)
        n = len(self.skus)
        slot = day % HISTORY_DAYS
        history = self.history
        history[:n, slot] = 0.0
        if demand:
            rows = np.fromiter((self.rows[s] for s in demand), np.int64, len(demand))
            history[rows, slot] = np.fromiter(demand.values(), np.float32, len(demand))
        actual = history[:n, slot]
        forecast = self.next_forecast[:n]
        dow = weekday_of(day)
        expected_base = float(self.level[:n].sum()) * self._share(dow)

        self._calibrate(actual, forecast)
        self._learn_weather(actual, forecast, weather)
        total = float(actual.sum())
        if holiday:
            # Learnt once every weekday has been seen: before, the profile (and so the expectation) is a guess.
            if expected_base > _TINY and min(self.profile) >= 0:
                self.holiday_factor += cfg.holiday_rate * (min(3.0, total / expected_base) - self.holiday_factor)
        elif self.profile[dow] < 0:
            self.profile[dow] = total
        else:
            keep = 0.5 ** (1.0 / cfg.profile_half_life_weeks)
            self.profile[dow] = keep * self.profile[dow] + (1.0 - keep) * total

        week = history[:n, [(day - k) % HISTORY_DAYS for k in range(7)]].sum(axis=1)
        first = self.first_day[:n]
        first[(first < 0) & (week != 0)] = day
        level = self.level[:n]
        level += cfg.alpha * (week - level)
        # A series younger than a week has a partial week: its level is that week scaled by the share of
        # a week's demand its days carry (the weekday profile), not smoothed up from zero over months.
        born = first == day
        level[born] = week[born]  # the first observation starts the smoothing (scaling it up to a week overshot)
        recent = self.recent_level[:n]
        recent += cfg.rising_alpha * (week - recent)
        recent[born] = week[born]
        sold = actual > 0
        self.last_demand_day[:n][sold] = day
        self.closed_through = day
        self.weather_ahead = dict(weather_ahead or {})
        self.holidays_ahead = dict(holidays_ahead or {})
        if day % 7 == 0:
            self._forget_idle(day)
            n = len(self.skus)
        self._update_rates()
        # Without the weather effect: the next close learns each SKU's sensitivity against it.
        self.next_forecast[: len(self.skus)] = self._points(day + 1, with_weather=False)
        return True

    # --- reading --------------------------------------------------------------------------------------

    def forecast(self, sku: str, days: int | None = None) -> SeriesForecast:
        """The daily forecasts of `sku` for the days after the last closed one (zeros for an unknown SKU)."""
        days = self.config.horizon_days if days is None else days
        row = self.rows.get(sku)
        return (
            self.forecasts([row] if row is not None else [], days)[0]
            if row is not None
            else SeriesForecast(sku, self.closed_through + 1, [0.0] * days, [0.0] * days, [0.0] * days, 0.0)
        )

    def forecasts(self, rows: list[int] | None = None, days: int | None = None) -> list[SeriesForecast]:
        """The forecasts of `rows` (default: every row), `days` ahead (default: the horizon)."""
        days = self.config.horizon_days if days is None else days
        rows = list(range(len(self.skus))) if rows is None else rows
        first = self.closed_through + 1
        index = np.asarray(rows, np.int64)
        if days:
            columns = np.stack([self._points(first + h, index) for h in range(days)], axis=1)
            lows = np.stack([self._points(first + h, index, self.low_rate) for h in range(days)], axis=1)
            highs = np.stack([self._points(first + h, index, self.high_rate) for h in range(days)], axis=1)
        last_28 = self.history[index][:, [(self.closed_through - k) % HISTORY_DAYS for k in range(28)]].sum(axis=1)
        recent = np.sum([self._points(first + h, index, self.recent_level) for h in range(7)], axis=0)
        out = []
        for i, row in enumerate(rows):
            points, lower, upper = (columns[i].tolist(), lows[i].tolist(), highs[i].tolist()) if days else ([], [], [])
            out.append(SeriesForecast(self.skus[row], first, points, lower, upper, float(last_28[i]), float(recent[i])))
        return out

    def points_for(self, day: int, rows: npt.NDArray[np.int64] | None = None) -> F32:
        """The point forecasts of `rows` (default: every row) for `day`, as served at the last close."""
        return self._points(day, rows)

    def active_rows(self) -> list[int]:
        """Rows with a forecast above zero or demand in the kept history: those worth publishing."""
        n = len(self.skus)
        return np.flatnonzero((self.level[:n] > _TINY) | (self.history[:n].sum(axis=1) > 0)).tolist()

    @property
    def coverage(self) -> float | None:
        """Share of judged SKU-days whose demand fell inside the interval given the day before."""
        inside, judged = self.covered
        return inside / judged if judged else None

    # --- internals ------------------------------------------------------------------------------------

    def _share(self, dow: int) -> float:
        """The share of a week's demand on weekday `dow`; a weekday not yet seen counts as the mean of the others."""
        seen = [p for p in self.profile if p >= 0]
        if not seen:
            return 1.0 / 7.0
        fill = sum(seen) / len(seen)
        total = sum(seen) + fill * (7 - len(seen))
        if total <= 0:
            return 1.0 / 7.0
        mine = self.profile[dow]
        return (mine if mine >= 0 else fill) / total

    def _points(
        self, day: int, rows: npt.NDArray[np.int64] | None = None, rate: F32 | None = None, with_weather: bool = True
    ) -> F32:
        """Units forecast for `day` per row: a weekly rate (the level, or an interval bound) times the day's factors."""
        rate = self.level if rate is None else rate
        level = np.maximum(rate[: len(self.skus)] if rows is None else rate[rows], 0.0)
        factor = self._share(weekday_of(day))
        if self.holidays_ahead.get(day, False):
            factor *= self.holiday_factor
        points = level * np.float32(factor)
        weather = self.weather_ahead.get(day) if with_weather else None
        if weather is not None and self.temperature_mean is not None:
            coef = self.temperature_coef[: len(self.skus)] if rows is None else self.temperature_coef[rows]
            shift = (weather.temperature_c - self.temperature_mean) / 10.0
            points = points * np.clip(1.0 + coef * np.float32(shift), 0.2, 3.0)
        return points.astype(np.float32, copy=False)

    def _update_rates(self) -> None:
        """Each SKU's interval bounds as weekly rates: quantiles of its last `HISTORY_DAYS` days, weekday-adjusted.

        A day's demand divided by its weekday's share of a week is a weekly rate; the quantiles at the
        steered levels of those rates, times a coming day's share, bound that day. Days of a weekday the
        location does not trade on carry no information and are left out. Per SKU, so a SKU that sells
        on one day in ten gets [0, 0] at 80%, and a steady seller a band around its rate.
        """
        n = len(self.skus)
        if n == 0:
            return
        end = self.closed_through
        days = [end - k for k in range(HISTORY_DAYS)]
        open_days = [d for d in days if self._share(weekday_of(d)) > 1e-3]
        if not open_days:
            return
        scale = np.array([self._share(weekday_of(d)) for d in open_days], np.float32)  # a day's units / its share
        rates = self.history[:n][:, [d % HISTORY_DAYS for d in open_days]] / scale
        # Days before a SKU was first seen are not zeros of its own: left out (a week at least is kept).
        first = self.first_day[:n]
        since = np.where(first >= 0, np.minimum(first, end - 6), end - 6)
        before = np.asarray(open_days)[None, :] < since[:, None]
        if before.any():
            rates = np.where(before, np.nan, rates)
        ordered = np.sort(rates, axis=1)  # NaN (days left out) sort last
        valid = np.maximum((~np.isnan(ordered)).sum(axis=1), 1) - 1
        low = np.floor(self.lower_level * valid).astype(np.int64)[:, None]
        high = np.ceil(self.upper_level * valid).astype(np.int64)[:, None]
        self.low_rate[:n] = np.nan_to_num(np.take_along_axis(ordered, low, axis=1)[:, 0])
        self.high_rate[:n] = np.nan_to_num(np.take_along_axis(ordered, high, axis=1)[:, 0])

    def _calibrate(self, actual: F32, forecast: F32) -> None:
        """Judge yesterday's intervals against `actual` and steer the quantile levels (adaptive conformal)."""
        cfg = self.config
        n = len(actual)
        judged = (forecast > _TINY) | (actual != 0) | (self.level[:n] > _TINY)
        count = int(judged.sum())
        if count == 0:
            return
        share = np.float32(self._share(weekday_of(self.closed_through + 1)))
        y = actual[judged]
        low = np.maximum(self.low_rate[:n][judged], 0.0) * share
        high = np.maximum(self.high_rate[:n][judged], 0.0) * share
        below = float((y < low - 1e-6).mean())
        above = float((y > high + 1e-6).mean())
        self.covered = (self.covered[0] + count - int(((y < low - 1e-6) | (y > high + 1e-6)).sum()),
                        self.covered[1] + count)  # fmt: skip
        tail = (1.0 - cfg.interval) / 2.0
        self.lower_level = min(0.5, max(0.0, self.lower_level - cfg.interval_step * (below - tail)))
        # Demand is mostly zero, so the lower bound is often 0 and misses nothing: the upper level is
        # steered on all misses, so that the share inside tracks the target either way.
        self.upper_level = min(1.0, max(0.5, self.upper_level + cfg.interval_step * (above + below - 2 * tail)))

    def _learn_weather(self, actual: F32, forecast: F32, weather: DayWeather | None) -> None:
        if weather is None:
            return
        if self.temperature_mean is None:
            self.temperature_mean = weather.temperature_c
            return
        shift = (weather.temperature_c - self.temperature_mean) / 10.0
        self.temperature_mean += 0.05 * (weather.temperature_c - self.temperature_mean)
        if abs(shift) < 1e-6:
            return
        n = len(actual)
        live = forecast > _TINY
        coef = self.temperature_coef[:n]
        ratio = np.clip(actual[live] / forecast[live] - 1.0, -1.0, 3.0)
        error = ratio - coef[live] * shift
        coef[live] += np.float32(self.config.weather_rate / (1.0 + shift * shift)) * error * np.float32(shift)

    def _forget_idle(self, day: int) -> None:
        n = len(self.skus)
        idle = (self.last_demand_day[:n] >= 0) & (self.last_demand_day[:n] < day - self.config.idle_days)
        idle |= (self.last_demand_day[:n] < 0) & (self.level[:n] <= _TINY) & (self.history[:n].sum(axis=1) <= 0)
        if not idle.any():
            return
        keep = np.flatnonzero(~idle)
        for name, fill in _COLUMNS:
            column = getattr(self, name)
            column[: len(keep)] = column[keep]
            column[len(keep) : n] = fill
        self.skus = [self.skus[i] for i in keep]
        self.rows = {sku: i for i, sku in enumerate(self.skus)}

    def _grow(self, capacity: int) -> None:
        def grown(column: npt.NDArray[np.generic], fill: float) -> npt.NDArray[np.generic]:
            out = np.full((capacity, *column.shape[1:]), fill, column.dtype)
            out[: len(column)] = column
            return out

        for name, fill in _COLUMNS:
            setattr(self, name, grown(getattr(self, name), fill))
