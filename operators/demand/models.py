"""The model step of the demand flow: one shard's `LocationSeries` per location, fed by day closes.

It turns each `DayClose` into that location's forecasts and its rising candidates, and each
`LateDemand` into a history correction (`operators.demand.series.LocationSeries.add_late`).
Holidays come from the location's country (`operators.demand.holiday_calendar`); weather from the close.
With `global_model` set, each location's forecasts are corrected by a global online model learnt at every
close (`operators.demand.global_model`; off by default, docs/demand.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from operators.demand.days import DayClose, DaysOutput, LateDemand, day_weather
from operators.demand.global_model import GlobalCorrection, GlobalModelConfig
from operators.demand.holiday_calendar import HolidayCalendar
from operators.demand.locations import LocationBook
from operators.demand.series import DayWeather, ForecastConfig, LocationSeries, SeriesForecast


@dataclass(frozen=True, slots=True)
class ClosedDay:
    """What one day close produced at one location: every active SKU's forecast, and its rising candidates."""

    location_id: str
    day: int
    forecasts: list[SeriesForecast]
    rising: list[SeriesForecast]
    shard: int = -1


def rise_of(forecast: SeriesForecast) -> float:
    """How far the next 7 days at the recent rate exceed the weekly rate of the last 28 days (units).

    >>> rise_of(SeriesForecast("A", 0, [2.0] * 7, [0.0] * 7, [4.0] * 7, 28.0, recent_7_days=14.0))
    7.0
    """
    return forecast.recent_7_days - forecast.last_28_days / 4.0


@dataclass(slots=True)
class DemandModels:
    """The locations' series held by one shard, and the calendars they use.

    Examples
    --------
    >>> book = LocationBook.parse("WEB=Europe/London,GB-ENG")
    >>> models = DemandModels(ForecastConfig(alpha=1.0), rising_kept=5)
    >>> closed = models.apply([DayClose("WEB", 15159, {"SKU-1": 7.0}, {})], book)  # 7 units in the first day
    >>> [c.forecasts[0].points[:2] for c in closed]  # a week's level of 7, spread over the weekdays
    [[1.0, 1.0]]
    """

    config: ForecastConfig
    rising_kept: int = 50
    blocks: dict[str, LocationSeries] = field(default_factory=dict)
    late_dropped: int = 0
    global_model: GlobalModelConfig | None = None
    """When set, each location's forecasts are corrected by a global online model (`operators.demand.global_model`)."""
    corrections: dict[str, GlobalCorrection] = field(default_factory=dict)
    _calendars: dict[str, HolidayCalendar] = field(default_factory=dict)

    def apply(self, items: list[DaysOutput], book: LocationBook) -> list[ClosedDay]:
        """Apply one batch of day closes and late corrections, in order."""
        out: list[ClosedDay] = []
        for item in items:
            if type(item) is LateDemand:
                late: LateDemand = item
                block = self.blocks.get(late.location_id)
                if block is None or not block.add_late(late.sku, late.day, late.qty):
                    self.late_dropped += 1
                continue
            close: DayClose = item  # type: ignore[assignment]
            closed = self._close(close, book)
            if closed is not None:
                out.append(closed)
        return out

    def _close(self, close: DayClose, book: LocationBook) -> ClosedDay | None:
        block = self.blocks.get(close.location_id)
        if block is None:
            block = self.blocks[close.location_id] = LocationSeries(close.location_id, self.config)
        calendar = self._calendar(close.location_id, book)
        horizon = range(close.day + 1, close.day + 1 + self.config.horizon_days)
        correction = self._correction(close.location_id)
        if correction is not None:
            correction.learn(block, close.day, close.demand)  # the block still stands as of the day before
        ahead: dict[int, DayWeather] = {}
        for day in horizon:
            weather = day_weather(close.weather, day)
            if weather is not None:
                ahead[day] = weather
        closed = block.close_day(
            close.day,
            close.demand,
            holiday=calendar.is_holiday(close.day) if calendar else False,
            weather=day_weather(close.weather, close.day),
            weather_ahead=ahead,
            holidays_ahead={day: calendar.is_holiday(day) for day in horizon} if calendar else None,
        )
        if not closed:
            return None
        rows = block.active_rows()
        forecasts = block.forecasts(rows)
        if correction is not None and correction.trained and forecasts:
            points = np.array([f.points for f in forecasts], np.float64)
            corrected = correction.correct(block, np.asarray(rows, np.int64), points).tolist()
            forecasts = [replace(f, points=p) for f, p in zip(forecasts, corrected, strict=True)]
        rising = sorted((f for f in forecasts if rise_of(f) > 0), key=rise_of, reverse=True)[: self.rising_kept]
        return ClosedDay(close.location_id, close.day, forecasts, rising, close.shard)

    def _correction(self, location_id: str) -> GlobalCorrection | None:
        if self.global_model is None:
            return None
        correction = self.corrections.get(location_id)
        if correction is None or correction.config != self.global_model:
            correction = self.corrections[location_id] = GlobalCorrection(self.global_model)
        return correction

    def _calendar(self, location_id: str, book: LocationBook) -> HolidayCalendar | None:
        plan = book.plan(location_id)
        if plan is None:
            return None
        calendar = self._calendars.get(plan.country)
        if calendar is None:
            calendar = self._calendars[plan.country] = HolidayCalendar(plan.country)
        return calendar

    def __getstate__(self) -> tuple[object, ...]:
        # Calendars are rebuilt; the global model's setting is the one in force (`flows.demand_stages.ModelsLogic`).
        return self.config, self.rising_kept, self.blocks, self.late_dropped, self.global_model, self.corrections

    def __setstate__(self, state: tuple[object, ...]) -> None:
        self.config, self.rising_kept, self.blocks, self.late_dropped = state[:4]  # type: ignore[assignment]
        # Snapshots taken before the global model have four parts: no model, none learnt.
        self.global_model, self.corrections = state[4:] if len(state) > 4 else (None, {})  # type: ignore[assignment]
        self._calendars = {}
