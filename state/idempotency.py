"""Idempotency-Key records: the first answer to a request, kept so that its retries get the same answer.

A POST that publishes an event (a reservation) must not publish a second
one when the client retries. The first request with a key claims it with
`SET NX` and stores its answer beside a fingerprint of its body; a retry
finds the claim and gets the stored answer, or a refusal when its body
differs (the same key reused for another request).
"""

from __future__ import annotations

from typing import NamedTuple

import redis.asyncio as aioredis

from state import keys


class Claim(NamedTuple):
    """What `IdempotencyStore.claim` found: `first` when this request claimed the key."""

    first: bool
    same_request: bool  # the stored request had the same fingerprint (always True when `first`)
    answer: bytes  # the answer of the request that claimed the key


class IdempotencyStore:
    """Claims of `(scope, key)` with their answers, kept `ttl_s`.

    Parameters
    ----------
    client
        The API's asyncio Redis client.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def claim(self, scope: str, key: str, fingerprint: bytes, answer: bytes, ttl_s: float) -> Claim:
        """Claim `key` for a request whose body hashes to `fingerprint` and whose answer is `answer`.

        Concurrent requests with one key: exactly one is `first`; the others get its answer.
        """
        name = keys.idempotency(scope, key)
        record = fingerprint + b"\n" + answer
        if await self._client.set(name, record, nx=True, px=int(ttl_s * 1000)):
            return Claim(True, True, answer)
        stored = await self._client.get(name)
        if stored is None:  # expired between the two calls: claim again
            return await self.claim(scope, key, fingerprint, answer, ttl_s)
        raw = stored.encode() if isinstance(stored, str) else stored
        stored_fingerprint, _, stored_answer = raw.partition(b"\n")
        return Claim(False, stored_fingerprint == fingerprint, stored_answer)
