"""Event timestamps as the contract spells them: RFC 3339, milliseconds, `Z`.

`datetime.isoformat` costs ~1.5 us per call; the simulator formats one
timestamp per event, so the date-and-second prefix is cached per second and
the milliseconds come from a table. `Run.emit` inlines `rfc3339_ms` with these
same tables (a function call is a noticeable share of an event's cost).
"""

from __future__ import annotations

import time

SECOND_PREFIXES: dict[int, str] = {}
"""`2026-11-22T01:23:45` by epoch second, filled as seconds are first seen."""
MILLIS: tuple[str, ...] = tuple(f".{ms:03d}Z" for ms in range(1000))
_CACHE_LIMIT = 65_536


def second_prefix(second: int) -> str:
    """The date and time of epoch `second`, cached (bounded, for week-long runs)."""
    prefix = SECOND_PREFIXES.get(second)
    if prefix is None:
        if len(SECOND_PREFIXES) >= _CACHE_LIMIT:
            SECOND_PREFIXES.clear()
        prefix = SECOND_PREFIXES[second] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return prefix


def rfc3339_ms(ts: float) -> str:
    """`ts` (epoch seconds) as `2026-11-22T01:23:45.123Z`.

    >>> rfc3339_ms(1795305600.25)
    '2026-11-22T00:00:00.250Z'
    """
    second, ms = divmod(int(ts * 1000.0), 1000)
    return (SECOND_PREFIXES.get(second) or second_prefix(second)) + MILLIS[ms]
