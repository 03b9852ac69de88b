"""The contract's timestamp format, written: RFC 3339 in UTC, milliseconds, `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339_ms(epoch_s: float) -> str:
    """`epoch_s` as `2026-11-22T01:23:45.123Z` (microseconds rounded, then cut to milliseconds).

    >>> rfc3339_ms(1795305600.25)
    '2026-11-22T00:00:00.250Z'
    """
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
