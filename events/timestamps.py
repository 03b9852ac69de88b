"""The contract's timestamp format, written: RFC 3339 in UTC, milliseconds, `Z`.

One formatter for everything Omnistream writes: dead letters, alerts, stock
documents, and every event the simulator (`sim/`) publishes. Both the flows and
the simulator format a timestamp per record, so the date and time of day are
formatted once per second (a bounded cache) and the milliseconds come from a
table (docs/performance.md, "`rfc3339_ms` formats once per second"). A second not
seen before is put together from its day (formatted once per day) and two tables
of the time of day, not by `strftime`: a replay of history at a few events per
second of event time meets a new second at almost every event.
"""

from __future__ import annotations

import time
from math import floor

SECOND_PREFIXES: dict[int, str] = {}
"""`2026-11-22T01:23:45` by epoch second, filled as seconds are first seen."""
MILLIS: tuple[str, ...] = tuple(f".{ms:03d}Z" for ms in range(1000))
"""`.000Z` to `.999Z`: the tail of a timestamp by its milliseconds."""
_CACHE_LIMIT = 65_536
_DAYS: dict[int, str] = {}
"""`2026-11-22T` by epoch day, filled as days are first seen."""
_DAY_LIMIT = 4_096
_HOURS: tuple[str, ...] = tuple(f"{hour:02d}:" for hour in range(24))
_MINUTES_SECONDS: tuple[str, ...] = tuple(f"{minute:02d}:{sec:02d}" for minute in range(60) for sec in range(60))
"""`00:00` to `59:59` by the second of the hour."""


def _day_prefix(day: int) -> str:
    """The date of epoch `day` with its `T`, cached (bounded)."""
    prefix = _DAYS.get(day)
    if prefix is None:
        if len(_DAYS) >= _DAY_LIMIT:
            _DAYS.clear()
        prefix = _DAYS[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
    return prefix


def second_prefix(second: int) -> str:
    """The date and time of epoch `second`, cached (bounded, for week-long runs)."""
    prefix = SECOND_PREFIXES.get(second)
    if prefix is None:
        if len(SECOND_PREFIXES) >= _CACHE_LIMIT:
            SECOND_PREFIXES.clear()
        day, of_day = divmod(second, 86_400)
        hour, of_hour = divmod(of_day, 3_600)
        prefix = SECOND_PREFIXES[second] = _day_prefix(day) + _HOURS[hour] + _MINUTES_SECONDS[of_hour]
    return prefix


def rfc3339_ms(epoch_s: float) -> str:
    """`epoch_s` as `2026-11-22T01:23:45.123Z` (microseconds rounded, then cut to milliseconds).

    Rounding to the microsecond first is what `datetime.fromtimestamp` does, so a
    timestamp written here reads back as the `datetime` the decoder gives for it.

    >>> rfc3339_ms(1795305600.25)
    '2026-11-22T00:00:00.250Z'
    >>> rfc3339_ms(1795305600.9999996), rfc3339_ms(-0.5)
    ('2026-11-22T00:00:01.000Z', '1969-12-31T23:59:59.500Z')
    """
    second = floor(epoch_s)
    ms = round((epoch_s - second) * 1_000_000) // 1000  # the fraction is exact; rounded as datetime does
    if ms == 1000:
        second, ms = second + 1, 0
    return (SECOND_PREFIXES.get(second) or second_prefix(second)) + MILLIS[ms]
