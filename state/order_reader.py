"""Reads an order's stored lines for the API (`state.order_writer` wrote them): one round trip."""

from __future__ import annotations

import redis.asyncio as aioredis

from state import keys
from state.order_writer import LINE_FIELD_PREFIX

_LINE = LINE_FIELD_PREFIX.encode()


class OrderReader:
    """The line documents of an order, or None when no line of it is stored."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def lines(self, order_id: str) -> list[bytes] | None:
        fields = await self._client.hgetall(keys.order(order_id))
        lines = [value for field, value in fields.items() if isinstance(field, bytes) and field.startswith(_LINE)]
        return [value.encode() if isinstance(value, str) else value for value in lines] or None
