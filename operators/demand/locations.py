"""Where a location is, as demand planning needs it: its time zone, its country, its lead time and service level.

A sale's *day* is its local day at the location (a store open until 1 am sells on the previous
day's books), so the demand flow needs every location's time zone; holidays need its country;
reorder suggestions need the supplier's lead time and the service level the retailer plans for.
Locations are configured (`OMNISTREAM_DEMAND_LOCATIONS`), by id or by a glob over ids, so a chain
with hundreds of stores writes `STORE-*=Europe/London,GB,3,0.95` once. An event at a location
no rule names is refused: forecasting it on a guessed time zone would misplace its days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH_DAY = date(1970, 1, 1)


def day_number(day: date) -> int:
    """Days since 1970-01-01: the day index every demand structure uses.

    >>> day_number(date(1970, 1, 2)), day_number(date(2011, 7, 3))
    (1, 15158)
    """
    return (day - EPOCH_DAY).days


def day_of(number: int) -> date:
    """The date of a day number (`day_number`'s inverse).

    >>> day_of(15158)
    datetime.date(2011, 7, 3)
    """
    return EPOCH_DAY + timedelta(days=number)


def weekday_of(number: int) -> int:
    """Monday 0 .. Sunday 6 of a day number (1970-01-01 was a Thursday).

    >>> weekday_of(day_number(date(2011, 7, 3)))  # a Sunday
    6
    """
    return (number + 3) % 7


@dataclass(frozen=True, slots=True)
class LocationPlan:
    """One location's planning facts: time zone, country, supplier lead time (days), target service level.

    `country` is ISO 3166-1 alpha-2, optionally with a subdivision for regional holidays (`GB-ENG`, `US-CA`).
    """

    timezone: str
    country: str
    lead_time_days: int = 7
    service_level: float = 0.95


class LocalDays:
    """Maps event times to local day numbers at one time zone, fast: the current day's UTC span is cached.

    Converting through `zoneinfo` costs microseconds per event; events mostly fall on the day of the
    previous one, so the span [start, end) of the last day computed answers most of them with two
    comparisons. DST changes are honoured (the span is computed from the zone, not assumed 24 h).

    >>> from datetime import UTC
    >>> london = LocalDays("Europe/London")
    >>> summer_midnight = datetime(2011, 7, 3, 23, 30, tzinfo=UTC).timestamp()  # 00:30 BST on the 4th
    >>> day_of(london.day(summer_midnight))
    datetime.date(2011, 7, 4)
    >>> day_of(london.day(datetime(2011, 12, 3, 23, 30, tzinfo=UTC).timestamp()))  # GMT in winter
    datetime.date(2011, 12, 3)
    >>> london.end_of(day_number(date(2011, 7, 3))) == datetime(2011, 7, 3, 23, 0, tzinfo=UTC).timestamp()
    True
    """

    __slots__ = ("_end", "_start", "_today", "zone")

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._start = 1.0
        self._end = 0.0
        self._today = 0

    def day(self, ts: float) -> int:
        """The local day number of epoch seconds `ts`."""
        if self._start <= ts < self._end:
            return self._today
        local = datetime.fromtimestamp(ts, self.zone)
        today = day_number(local.date())
        self._today, self._start, self._end = today, self.start_of(today), self.end_of(today)
        return today

    def start_of(self, number: int) -> float:
        """Epoch seconds of local midnight opening day `number`."""
        midnight = datetime.combine(day_of(number), datetime.min.time(), self.zone)
        return midnight.timestamp()

    def end_of(self, number: int) -> float:
        """Epoch seconds of local midnight closing day `number` (the next day's start)."""
        return self.start_of(number + 1)


class LocationBook:
    """The configured locations: `plan(location_id)` is its `LocationPlan`, or None when no rule names it.

    Rules are tried in order; the first whose id or glob matches wins. Looked-up ids are memoised
    (bounded), since every event asks.

    >>> book = LocationBook.parse("WEB=Europe/London,GB,5,0.9; STORE-*=America/New_York,US")
    >>> book.plan("STORE-07")
    LocationPlan(timezone='America/New_York', country='US', lead_time_days=7, service_level=0.95)
    >>> book.plan("WEB").lead_time_days, book.plan("WH-01") is None
    (5, True)
    """

    def __init__(self, rules: list[tuple[str, LocationPlan]]) -> None:
        self.rules = rules
        self._memo: dict[str, LocationPlan | None] = {}
        self._days: dict[str, LocalDays] = {}

    @classmethod
    def parse(cls, spec: str) -> LocationBook:
        """Rules `id_or_glob=Time/Zone,CC[-SUB][,lead_days[,service_level]]` joined by `;`.

        A bad rule raises `ValueError` saying which and why.

        >>> LocationBook.parse("X=Mars/Olympus,GB")
        Traceback (most recent call last):
        ...
        ValueError: location rule 1 ('X=Mars/Olympus,GB'): unknown time zone 'Mars/Olympus'
        """
        rules: list[tuple[str, LocationPlan]] = []
        for position, raw in enumerate((part.strip() for part in spec.split(";")), start=1):
            if not raw:
                continue
            pattern, sep, rest = raw.partition("=")
            fields = [f.strip() for f in rest.split(",")]
            problem = None
            if not sep or not pattern.strip() or len(fields) < 2 or len(fields) > 4:
                problem = "expected id_or_glob=Time/Zone,CC[,lead_days[,service_level]]"
            else:
                timezone, country = fields[0], fields[1]
                try:
                    ZoneInfo(timezone)
                except (ZoneInfoNotFoundError, ValueError):
                    problem = f"unknown time zone {timezone!r}"
                code, _, _subdivision = country.partition("-")
                if problem is None and not (len(code) == 2 and code.isalpha() and code.isupper()):
                    problem = f"country {country!r} is not an ISO 3166 alpha-2 code (optionally -SUBDIVISION)"
                try:
                    lead = int(fields[2]) if len(fields) > 2 else 7
                    service = float(fields[3]) if len(fields) > 3 else 0.95
                except ValueError:
                    lead, service = -1, -1.0
                if problem is None and not (0 <= lead <= 365 and 0.5 <= service < 1.0):
                    problem = "lead_days must be 0..365 and service_level in [0.5, 1)"
            if problem is not None:
                raise ValueError(f"location rule {position} ({raw!r}): {problem}")
            rules.append((pattern.strip(), LocationPlan(timezone, country, lead, service)))
        return cls(rules)

    def plan(self, location_id: str) -> LocationPlan | None:
        """The plan of `location_id`, or None when no rule names it."""
        try:
            return self._memo[location_id]
        except KeyError:
            pass
        found = next((plan for pattern, plan in self.rules if fnmatchcase(location_id, pattern)), None)
        if len(self._memo) >= 65_536:
            self._memo.clear()
        self._memo[location_id] = found
        return found

    def days(self, location_id: str) -> LocalDays:
        """The local-day clock of a known location (one per location, cached)."""
        clock = self._days.get(location_id)
        if clock is None:
            plan = self.plan(location_id)
            if plan is None:
                raise KeyError(location_id)
            clock = self._days[location_id] = LocalDays(plan.timezone)
        return clock
