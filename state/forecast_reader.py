"""Reads the demand flow's documents for the API: a SKU's forecast at a location, a location's rising items."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from state import keys


class ForecastReader:
    """One Redis round trip per call; returns the stored bytes, or `None` when absent."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def forecast(self, sku: str, location_id: str) -> bytes | None:
        """The `events.forecast.SkuForecast` of `sku` at `location_id`, as stored (all horizon days)."""
        return cast(bytes | None, await self._client.hget(keys.forecast(sku, location_id), keys.DOC_FIELD))

    async def rising(self, location_id: str) -> bytes | None:
        """The `events.forecast.RisingItems` of `location_id`, as stored (every kept item)."""
        return cast(bytes | None, await self._client.hget(keys.rising(location_id), keys.DOC_FIELD))
