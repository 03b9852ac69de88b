"""The principal behind a presented API key, cached briefly so that a request rarely waits on Redis.

Each API process remembers a key's record (or that a key is unknown) for `ttl_s` seconds
(`OMNISTREAM_AUTH_KEY_CACHE_S`, 0.5 by default): a request then costs a dict lookup, and one
HGET every `ttl_s` per key in use. The same bound is how long a revoked key keeps working in a
process that has just seen it: at most `ttl_s` (below the contract's one second).
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.auth.roles import Role
from state.api_keys import KeyLookup


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid key speaks for: the key's id (never the key), its role and its own rate, if any."""

    key_id: str
    role: Role
    rate_per_s: float | None


class KeyCache:
    """`Principal` of a presented key, from a short-lived in-process cache in front of `KeyLookup`."""

    def __init__(self, lookup: KeyLookup, ttl_s: float, max_entries: int = 10_000) -> None:
        self.lookup = lookup
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[Principal | None, float]] = {}

    async def principal(self, key: bytes, now: float) -> Principal | None:
        """The principal of `key` at `now` (monotonic seconds); None for an unknown or revoked key.

        Redis errors propagate: the caller answers 503, as for any read.
        """
        hit = self._entries.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        record = await self.lookup.record(key)
        principal: Principal | None = None
        if record is not None:
            try:
                principal = Principal(record.id, Role.parse(record.role), record.rate_per_s)
            except ValueError:
                principal = None  # a record with a role this version does not know grants nothing
        if len(self._entries) >= self.max_entries:  # unknown keys sent in bulk must not grow memory
            self._entries.clear()
        self._entries[key] = (principal, now + self.ttl_s)
        return principal
