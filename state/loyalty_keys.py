"""Idempotency keys of POST requests: the first request under a key fixes what the key stands for.

A client retries a POST (a redemption) with the same `Idempotency-Key` when it did not get an
answer; the retry must not act twice, and must get the same answer. The API stores, under the
key, the request's fingerprint and the identity it gave the action, atomically on first use
(`SET NX`, one command: two racing first uses cannot both win); a later request with the key
reads what the first stored. A different request body under a used key is a client error.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis


@dataclass(frozen=True, slots=True)
class Claim:
    """What a key stands for: the first request's fingerprint and the action's id; `first` when this call set it."""

    fingerprint: str
    action_id: str
    first: bool


async def claim(client: aioredis.Redis, key: str, fingerprint: str, action_id: str, ttl_s: float) -> Claim:
    """Bind `key` to (`fingerprint`, `action_id`) unless it is bound already; returns the binding in force."""
    value = orjson.dumps({"fingerprint": fingerprint, "action_id": action_id})
    stored = await client.set(key, value, nx=True, px=int(ttl_s * 1000), get=True)
    if stored is None:
        return Claim(fingerprint, action_id, True)
    known = orjson.loads(stored if isinstance(stored, bytes | str) else str(stored))
    return Claim(str(known["fingerprint"]), str(known["action_id"]), False)


async def release(client: aioredis.Redis, key: str) -> None:
    """Forget a key whose request was refused before it acted, so a corrected retry is a new attempt."""
    await client.delete(key)
