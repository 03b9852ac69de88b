"""The contract's timestamp format, written: RFC 3339 in UTC, milliseconds, `Z`."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=1 << 14)
def _whole_second(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def rfc3339_ms(epoch_s: float) -> str:
    """`epoch_s` as `2026-11-22T01:23:45.123Z` (microseconds rounded, then cut to milliseconds).

    Written for every location a flow writes: the date and time of day are
    formatted once per second, the milliseconds appended.

    >>> rfc3339_ms(1795305600.25)
    '2026-11-22T00:00:00.250Z'
    >>> rfc3339_ms(1795305600.9999996), rfc3339_ms(-0.5)
    ('2026-11-22T00:00:01.000Z', '1969-12-31T23:59:59.500Z')
    """
    seconds = math.floor(epoch_s)
    micros = round((epoch_s - seconds) * 1_000_000)  # the fraction is exact; rounded as datetime does
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    return f"{_whole_second(seconds)}.{micros // 1000:03d}Z"
