"""Per-key token buckets: each key may make `rate` requests a second, in bursts of up to `burst`.

Buckets live in the API process, so the check costs a dict lookup and some arithmetic
instead of a Redis round trip (as much as the inventory read itself). With N API worker
processes a key may therefore make up to N x `rate` requests a second in all; set the
rate per process accordingly (docs/security.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """Tokens refill at `rate` a second up to `burst`; a request takes one.

    >>> bucket = TokenBucket(rate=2.0, burst=2.0, tokens=2.0, at=0.0)
    >>> bucket.take(0.0), bucket.take(0.0), bucket.take(0.0)
    (0.0, 0.0, 0.5)
    >>> bucket.take(0.5)
    0.0
    """

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """Take a token at `now` (monotonic seconds): 0.0 if granted, else the seconds until one is there."""
        tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


class RateLimiter:
    """One bucket per key id; the rate of a key is its own override or the default."""

    def __init__(self, default_rate: float, burst_s: float) -> None:
        self.default_rate = default_rate
        self.burst_s = burst_s
        self._buckets: dict[str, TokenBucket] = {}

    def wait_s(self, key_id: str, rate: float | None, now: float) -> float:
        """0.0 when the key may go on at `now`; otherwise the seconds it must wait."""
        bucket = self._buckets.get(key_id)
        if bucket is None:
            per_s = rate or self.default_rate
            burst = max(1.0, per_s * self.burst_s)
            bucket = self._buckets[key_id] = TokenBucket(per_s, burst, burst, now)
        return bucket.take(now)

    def forget(self, key_id: str) -> None:
        """Drop a key's bucket (its rate changed, or it was revoked)."""
        self._buckets.pop(key_id, None)


def retry_after(wait_s: float) -> str:
    """The `Retry-After` value (whole seconds, at least 1) for a wait.

    >>> retry_after(0.01), retry_after(2.2)
    ('1', '3')
    """
    return str(max(1, math.ceil(wait_s)))
