"""Redis as the API uses it: every call bounded by one deadline (CONTRACT.md: 503 fast, never a hang).

The client's socket timeouts (`state.connection.connect_async`) bound each connect and each
read. The deadline here also bounds what they don't: several round trips in one call (a
pipeline read reply by reply, Sentinel discovery, Cluster redirects). Past it the call raises
the builtin `TimeoutError`, which `serving.errors` answers with 503; redis-py drops a
connection whose command was cancelled, so no half-read reply is left in the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from state.stock_reader import StockReader


class BoundedStockReader(StockReader):
    """A `StockReader` whose every call ends within `timeout_s`, with the stored bytes or an error.

    Parameters
    ----------
    client
        The API's asyncio Redis client.
    timeout_s
        Budget of one call, round trips included (`Settings.api_redis_timeout_ms`).
    """

    def __init__(self, client: aioredis.Redis, timeout_s: float) -> None:
        super().__init__(client)
        self.timeout_s = timeout_s

    async def sku(self, sku: str) -> bytes | None:
        async with asyncio.timeout(self.timeout_s):
            return await super().sku(sku)

    async def location(self, sku: str, location_id: str) -> bytes | None:
        async with asyncio.timeout(self.timeout_s):
            return await super().location(sku, location_id)

    async def skus(self, skus: Sequence[str]) -> list[bytes | None]:
        async with asyncio.timeout(self.timeout_s):
            return await super().skus(skus)


async def ping(client: aioredis.Redis, timeout_s: float) -> None:
    """Return when Redis answers PING within `timeout_s`; raise otherwise."""
    async with asyncio.timeout(timeout_s):
        await client.ping()
