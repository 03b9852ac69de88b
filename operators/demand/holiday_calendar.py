"""Public holidays per country, from the `holidays` package's offline tables (no network)."""

from __future__ import annotations

import holidays

from operators.demand.locations import day_of


class HolidayCalendar:
    """Whether a day number is a public holiday in `country` (`CC` or `CC-SUBDIVISION`); years load on demand.

    >>> from operators.demand.locations import day_number
    >>> from datetime import date
    >>> gb = HolidayCalendar("GB-ENG")  # the late-August bank holiday is England's, not the UK's
    >>> gb.is_holiday(day_number(date(2011, 8, 29))), gb.is_holiday(day_number(date(2011, 8, 30)))
    (True, False)
    """

    def __init__(self, country: str) -> None:
        self.country = country
        code, _, subdivision = country.partition("-")
        self._table = holidays.country_holidays(code, subdiv=subdivision or None)
        self._memo: dict[int, bool] = {}

    def is_holiday(self, number: int) -> bool:
        known = self._memo.get(number)
        if known is None:
            if len(self._memo) > 4096:
                self._memo.clear()
            known = self._memo[number] = day_of(number) in self._table
        return known
