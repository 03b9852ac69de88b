"""Reads the merchandising flow's open suggestions for the API: two Redis round trips at most.

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

TRANSFER, MARKDOWN = "transfer", "markdown"


class SuggestionReader:
    """Open transfer and markdown suggestions, decoded, from the documents the merchandising flow keeps."""

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
