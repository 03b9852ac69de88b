"""Reads what the loyalty flow keeps in Redis, for the API: member documents and redemption decisions.

Both are returned as the stored bytes (the flow shaped them as the API serves them).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from state import keys


class LoyaltyReader:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def member(self, customer_id: str) -> bytes | None:
        """The member's document (balances, tier, recent entries), or None for a customer the flow never saw."""
        doc = await self._client.hget(keys.loyalty_member(customer_id), keys.DOC_FIELD)
        return doc.encode() if isinstance(doc, str) else doc

    async def decision(self, customer_id: str, redemption_id: str) -> bytes | None:
        """The flow's decision on a redemption, or None while undecided (or expired)."""
        doc = await self._client.hget(keys.loyalty_redemption(customer_id, redemption_id), keys.DOC_FIELD)
        return doc.encode() if isinstance(doc, str) else doc
