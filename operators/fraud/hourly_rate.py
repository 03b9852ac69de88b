"""An entity's usual sales by hour of day, and how many a span of time should have held.

`operators.fraud.operations.SalesPulse` judges a silence by the sales it should have held, at
the store's own rate for each hour of the day, and asks when a silence will have become
improbable. Walked hour by hour, each question was up to 48 steps of interpreted arithmetic, and
a tick asks it of every store and register whose look-again came due: on the card-fraud replay
(10,000 terminals, each selling a few times a day) that walk was a tenth of the fraud flow's CPU.
Here both are closed forms over the day's cumulative sales: a look-up for the sales in a span, a
bisection over 24 hours for the time a count is reached.

The rule is the walk's: hour by hour for the two days after the span's start (the first hour
from the start to its end), then the day's average rate.
"""

from __future__ import annotations

import bisect
import math

DAY_S = 86_400.0
HOUR_S = 3_600.0
_HOURLY_HOURS = 48
"""Hours after a span's start counted at their own hour's rate; after them, the day's average."""


class HourlyRate:
    """Sales expected over spans of event time, from the sales an average day holds in each hour (UTC).

    Examples
    --------
    >>> rate = HourlyRate([0.0] * 8 + [2.0] * 12 + [0.0] * 4)  # 24 sales a day, 08:00-20:00
    >>> rate.expected(0.0, 9 * HOUR_S), rate.expected(7.5 * HOUR_S, 8.5 * HOUR_S)
    (2.0, 1.0)
    >>> rate.reaching(19.5 * HOUR_S, 5.0) / HOUR_S  # 1 sale by 20:00, none overnight, 4 more by 10:00
    34.0
    >>> rate.expected(0.0, 10 * DAY_S)  # 2 days hour by hour, then 8 at the average of 1 an hour
    240.0
    """

    __slots__ = ("_cumulative", "_per_hour", "_per_s")

    def __init__(self, per_hour: list[float]) -> None:
        if len(per_hour) != 24:
            raise ValueError(f"per_hour: 24 hours of a day, got {len(per_hour)}")
        cumulative = [0.0]
        for sales in per_hour:
            cumulative.append(cumulative[-1] + sales)
        self._per_hour = per_hour
        self._cumulative = cumulative
        self._per_s = cumulative[24] / DAY_S  # the day's average, for spans past the hourly hours

    def _into_day(self, t: float) -> tuple[float, float]:
        """(`t`'s day since the epoch, the sales from its midnight to `t` at each hour's rate).

        Kept apart so that spans subtract days and sales within days: sales since the epoch
        itself would be tens of thousands of days' worth and lose the span's digits.
        """
        day, into_day = divmod(t, DAY_S)
        hour = int(into_day // HOUR_S)
        return day, self._cumulative[hour] + self._per_hour[hour] * ((into_day - hour * HOUR_S) / HOUR_S)

    def _between(self, start: float, end: float) -> float:
        """Sales in (`start`, `end`] at each hour's rate."""
        start_day, start_sales = self._into_day(start)
        end_day, end_sales = self._into_day(end)
        return (end_day - start_day) * self._cumulative[24] + end_sales - start_sales

    def expected(self, start: float, end: float) -> float:
        """Sales expected in (`start`, `end`]."""
        if end <= start:
            return 0.0
        hourly_end = (math.floor(start / HOUR_S) + _HOURLY_HOURS) * HOUR_S
        stop = min(end, hourly_end)
        total = self._between(start, stop)
        if end > stop:
            total += self._per_s * (end - stop)
        return total

    def reaching(self, start: float, target: float, within_s: float = 60 * DAY_S) -> float:
        """When the sales expected since `start` reach `target` (> 0); inf if not within `within_s`."""
        hourly_end = (math.floor(start / HOUR_S) + _HOURLY_HOURS) * HOUR_S
        by_hourly_end = self._between(start, hourly_end)
        if by_hourly_end < target:
            if self._per_s <= 0.0:
                return math.inf
            t = hourly_end + (target - by_hourly_end) / self._per_s
            return t if t <= start + within_s else math.inf
        start_day, start_sales = self._into_day(start)
        return start_day * DAY_S + self._first_time_at(start_sales + target)

    def _first_time_at(self, sales: float) -> float:
        """The earliest time after a midnight at which the sales since it reach `sales` (> 0)."""
        daily = self._cumulative[24]
        day = math.ceil(sales / daily) - 1  # the day in which the count is reached: (0, daily] into it
        into_day = sales - day * daily
        if into_day > daily:  # rounding at a day's edge
            day, into_day = day + 1, into_day - daily
        elif into_day <= 0.0:
            day, into_day = day - 1, into_day + daily
        hour = min(bisect.bisect_left(self._cumulative, into_day, 1), 24) - 1  # first hour that reaches it
        fraction = (into_day - self._cumulative[hour]) / self._per_hour[hour]
        return day * DAY_S + (hour + fraction) * HOUR_S
