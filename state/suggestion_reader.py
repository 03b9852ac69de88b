"""Reads the open suggestions (merchandising transfers and markdowns, demand reorders) for the API: two round trips.

The flow keeps each SKU's open suggestions of a kind as one fenced document
(`keys.suggestions`) and the SKUs that have any in a set (`keys.suggestion_skus`),
both in the same fenced call. One SKU's suggestions are one `HGET`; all of them
are the set (round 1), then every listed document in one pipeline (round 2).
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from state import keys

TRANSFER, MARKDOWN, REORDER = "transfer", "markdown", "reorder"


class SuggestionReader:
    """Open suggestions, decoded, from the documents the merchandising and demand flows keep."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def open(self, kind: str, sku: str | None) -> list[dict[str, Any]]:
        """The open suggestions of `kind` (of `sku` only, when given), in no particular order."""
        if sku is not None:
            docs = [await self._client.hget(keys.suggestions(kind, sku), keys.DOC_FIELD)]
        else:
            members = await self._client.smembers(keys.suggestion_skus(kind))
            skus = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
            if not skus:
                return []
            async with self._client.pipeline(transaction=False) as pipe:
                for name in skus:
                    pipe.hget(keys.suggestions(kind, name), keys.DOC_FIELD)
                docs = await pipe.execute()
        out: list[dict[str, Any]] = []
        for doc in docs:
            if not doc:
                continue
            parsed = orjson.loads(doc)
            if isinstance(parsed, list):
                out.extend(parsed)
            elif isinstance(parsed, dict):
                out.append(parsed)
        return out

    async def open_reorders(self, sku: str | None, location_id: str | None) -> list[dict[str, Any]]:
        """The open reorders (of `sku`, at `location_id`, when given), in no particular order.

        Kept one document per (SKU, location) (`keys.reorder`), the open pairs in one set: a pair is one `HGET`.
        """
        if sku is not None and location_id is not None:
            names = [(sku, location_id)]
        else:
            members = await self._client.smembers(keys.suggestion_skus(REORDER))
            names = []
            for member in members:
                text = member.decode() if isinstance(member, bytes) else str(member)
                m_sku, _, m_location = text.partition("\x1f")
                if (sku is None or m_sku == sku) and (location_id is None or m_location == location_id):
                    names.append((m_sku, m_location))
            if not names:
                return []
            names.sort()
        async with self._client.pipeline(transaction=False) as pipe:
            for m_sku, m_location in names:
                pipe.hget(keys.reorder(m_sku, m_location), keys.DOC_FIELD)
            docs = await pipe.execute()
        out: list[dict[str, Any]] = []
        for doc in docs:
            if doc:
                parsed = orjson.loads(doc)
                if isinstance(parsed, dict):
                    out.append(parsed)
        return out
