"""A weather service: every hour of event time, each location's observed yesterday and forecast week.

Weather moves demand for some items (ice cream on a hot day, umbrellas in the rain), so the demand
flow takes `weather` events when a retailer has them. The simulator's weather is a seasonal
temperature curve plus a per-location offset and day-to-day noise, the same for a (location, day)
whichever hour reports it: a forecast issued today for Friday says what Friday's observation
will say, give or take the forecast's own error, which grows with the days ahead.

It draws from its own generator and numbers its own events (`wx-<seed>-<n>`), so switching the
weather on or off leaves every other record of the stream byte for byte as it was.
"""

from __future__ import annotations

import math
import random
import zlib
from datetime import UTC, datetime, timedelta

import orjson

from events.timestamps import rfc3339_ms
from events.topics import Topic
from sim.record import SimRecord

FORECAST_DAYS = 7
REPORT_EVERY_S = 3600.0


class WeatherDesk:
    """Hourly weather reports for `locations`, the first one `REPORT_EVERY_S` after `start_ts`.

    >>> desk = WeatherDesk(seed=1, locations=["STORE-01"], start_ts=0.0)
    >>> records = desk.report(3600.0)
    >>> len(records), records[0].topic, orjson.loads(records[0].value)["kind"]
    (8, <Topic.WEATHER: 'weather'>, 'observation')
    >>> desk.temperature("STORE-01", 0) == WeatherDesk(seed=1, locations=[], start_ts=0.0).temperature("STORE-01", 0)
    True
    """

    def __init__(self, seed: int, locations: list[str], start_ts: float) -> None:
        self.seed = seed
        self.locations = locations
        self.next_report_ts = start_ts + REPORT_EVERY_S
        self._n = 0

    def temperature(self, location_id: str, day: int) -> float:
        """The true temperature (°C) of `day` (days since 1970-01-01) at `location_id`."""
        rng = random.Random(zlib.crc32(f"{self.seed}/{location_id}/{day}".encode()))
        offset = (zlib.crc32(location_id.encode()) % 80) / 10.0 - 4.0
        season = 12.0 - 10.0 * math.cos(2 * math.pi * ((day - 15) % 365.25) / 365.25)  # coldest mid-January
        return round(season + offset + rng.gauss(0.0, 3.0), 1)

    def precipitation(self, location_id: str, day: int) -> float:
        rng = random.Random(zlib.crc32(f"{self.seed}/{location_id}/{day}/rain".encode()))
        return round(rng.expovariate(0.3), 1) if rng.random() < 0.35 else 0.0

    def report(self, ts: float) -> list[SimRecord]:
        """One report per location at `ts`: yesterday observed, today and the next six days forecast."""
        today = int(ts // 86_400)
        records = []
        for location_id in self.locations:
            for ahead in range(-1, FORECAST_DAYS):
                day = today + ahead
                rng = random.Random(zlib.crc32(f"{self.seed}/{location_id}/{day}/{int(ts)}".encode()))
                error = 0.0 if ahead < 0 else rng.gauss(0.0, 0.8 + 0.4 * ahead)
                self._n += 1
                event = {
                    "event_id": f"wx-{self.seed}-{self._n}",
                    "type": "weather",
                    "ts": rfc3339_ms(ts),
                    "schema_version": 1,
                    "location_id": location_id,
                    "day": (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).date().isoformat(),
                    "kind": "observation" if ahead < 0 else "forecast",
                    "temperature_c": round(self.temperature(location_id, day) + error, 1),
                    "precipitation_mm": self.precipitation(location_id, day),
                }
                records.append(SimRecord(Topic.WEATHER, location_id.encode(), orjson.dumps(event)))
        return records

    def due(self, clock: float) -> list[SimRecord]:
        """The reports due by `clock` (usually none): what the workload publishes before its next record."""
        out: list[SimRecord] = []
        while clock >= self.next_report_ts:
            out += self.report(self.next_report_ts)
            self.next_report_ts += REPORT_EVERY_S
        return out
