"""Redis as the API reads it: every call ends within the Redis timeout (CONTRACT.md: 503 fast, never a hang).

On a single node the client's socket timeouts (`state.connection.connect_async`) already
bound every phase of a call, and with retries off the first phase that stalls fails: a
refused connection fails at once, a hung server within one timeout. Sentinel and Cluster
chain round trips inside one call (master discovery, redirects, a pipeline split across
nodes), each with its own socket timeout, so there the reader also holds one deadline over
the whole call. Not on a single node: the deadline is a timer per call, about a tenth of
the API's own cost per request (benchmarks/http_load.py), and buys nothing there.

Past the deadline the call raises the builtin `TimeoutError`, which `serving.errors` answers
with 503; redis-py drops a connection whose command was cancelled, so no half-read reply is
left in the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from state.stock_reader import StockReader

_MULTI_HOP_SCHEMES = ("redis+sentinel://", "redis+cluster://")


class BoundedStockReader(StockReader):
    """A `StockReader` whose every call ends within `timeout_s`, with the stored bytes or an error.

    Parameters
    ----------
    client
        The API's asyncio Redis client.
    timeout_s
        Budget of one call, all its round trips included (`Settings.api.redis_timeout_ms`).
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


def reader_for(client: aioredis.Redis, redis_url: str, timeout_s: float) -> StockReader:
    """The API's reader for `redis_url`: bounded by a deadline where socket timeouts are not enough."""
    if redis_url.startswith(_MULTI_HOP_SCHEMES):
        return BoundedStockReader(client, timeout_s)
    return StockReader(client)


async def ping(client: aioredis.Redis, timeout_s: float) -> None:
    """Return when Redis answers PING within `timeout_s`; raise otherwise."""
    async with asyncio.timeout(timeout_s):
        await client.ping()
