"""Reads the customers flow's state for the API: documents, segment sizes and members, the trigger stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from state import keys
from state.stream_writer import RECORD_FIELD


class CustomerReader:
    """One Redis round trip per call; what it returns is shaped for the API."""

    def __init__(self, client: aioredis.Redis, segments: Sequence[str]) -> None:
        self.segments = tuple(segments)
        self._client = client

    async def customer(self, customer_id: str) -> bytes | None:
        """The stored document of `customer_id`, or None (never seen)."""
        doc = await self._client.hget(keys.customer(customer_id), keys.DOC_FIELD)
        return cast(bytes | None, doc)

    async def customer_and_populations(self, customer_id: str, country_scope: str | None) -> list[bytes | None]:
        """The customer's document, the global population's, and `country_scope`'s if given (one round trip)."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hget(keys.customer(customer_id), keys.DOC_FIELD)
            pipe.hget(keys.customer_population("global"), keys.DOC_FIELD)
            if country_scope is not None:
                pipe.hget(keys.customer_population(country_scope), keys.DOC_FIELD)
            return cast(list[bytes | None], await pipe.execute())

    async def segment_sizes(self) -> dict[str, int]:
        """Members per segment, live (one pipelined ZCARD per segment)."""
        async with self._client.pipeline(transaction=False) as pipe:
            for name in self.segments:
                pipe.zcard(keys.segment(name))
            sizes = await pipe.execute()
        return {name: int(size) for name, size in zip(self.segments, sizes, strict=True)}

    async def members(self, segment: str, after: str | None, limit: int) -> list[str]:
        """Up to `limit` member ids of `segment` in id order, after the id `after` (the cursor)."""
        low = f"({after}" if after else "-"
        ids = await self._client.zrange(keys.segment(segment), low, "+", bylex=True, offset=0, num=limit)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def newest_trigger_id(self) -> str:
        """The id of the newest trigger in the stream ("0-0" when empty): where a live tail starts."""
        entries = await self._client.xrevrange(keys.triggers_stream(), count=1)
        if not entries:
            return "0-0"
        entry_id = entries[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def tail_triggers(
    client: aioredis.Redis, after_id: str, block_ms: int, count: int = 100
) -> list[tuple[str, Any]]:
    """Triggers added after stream entry `after_id`, waiting up to `block_ms` for the first (XREAD BLOCK).

    `client` must be a connection of its own with a socket timeout above `block_ms`. An
    entry that is not a trigger record comes back as `None`, still moving the cursor.
    """
    reply = cast(
        list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None,
        await client.xread({keys.triggers_stream(): after_id}, count=count, block=block_ms),
    )
    out: list[tuple[str, Any]] = []
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            stream_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            body = fields.get(RECORD_FIELD.encode())
            try:
                out.append((stream_id, orjson.loads(body) if body is not None else None))
            except orjson.JSONDecodeError:
                out.append((stream_id, None))
    return out
