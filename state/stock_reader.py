"""Reads stock documents for the API, already shaped as the contract's JSON bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import orjson
import redis.asyncio as aioredis

from state import keys


class StockReader:
    """One Redis round trip per call; returns stored bytes, or `None` when absent."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def sku(self, sku: str) -> bytes | None:
        """The `GET /v1/inventory/{sku}` object."""
        doc = await self._client.hget(keys.stock(sku), keys.STOCK_DOC_FIELD)
        return cast(bytes | None, doc)

    async def location(self, sku: str, location_id: str) -> bytes | None:
        """The `GET /v1/inventory/{sku}/locations/{location_id}` object, cut from the SKU document."""
        doc = await self.sku(sku)
        if doc is None:
            return None
        for location in orjson.loads(doc)["locations"]:
            if location["location_id"] == location_id:
                return orjson.dumps({"sku": sku, **location})
        return None

    async def skus(self, skus: Sequence[str]) -> list[bytes | None]:
        """The SKU objects of `skus`, in order, `None` where a SKU has no stock record."""
        pipe = self._client.pipeline(transaction=False)
        for sku in skus:
            pipe.hget(keys.stock(sku), keys.STOCK_DOC_FIELD)
        docs: list[bytes | None] = await pipe.execute()
        return docs
