"""Reads the attribution flow's per-day documents for the API (one pipelined round trip per range)."""

from __future__ import annotations

import redis.asyncio as aioredis

from state import keys


class AttributionReader:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def days(self, days: list[str]) -> list[bytes]:
        """The stored documents of `days` (`YYYY-MM-DD`) that exist, in order."""
        async with self._client.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hget(keys.attribution_day(day), keys.DOC_FIELD)
            found = await pipe.execute()
        return [doc for doc in found if doc is not None]
