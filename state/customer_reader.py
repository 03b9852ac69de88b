"""Reads the customers flow's state for the API: documents, segment sizes and members, the trigger stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from operators.customers.population import RankedPopulation
from state import keys
from state.pipeline_scripts import LuaScript, raise_first_error, run_pipeline_async
from state.stream_writer import RECORD_FIELD

# KEYS[1] a population hash. ARGV: generation field, version field, document field, then the generation and
# version the reader holds. Replies {generation, version} when those are still stored (the reader's copy is
# current), {generation, version, document} when not, and {} for no population: the document crosses the
# wire only when it changed (a scope's histograms: ~20 bytes per populated hour of recency).
# fmt: off
_POPULATION_IF_CHANGED = LuaScript("""
local stored = redis.call('HMGET', KEYS[1], ARGV[1], ARGV[2])
if not stored[2] then return {} end
if stored[1] == ARGV[4] and stored[2] == ARGV[5] then return {stored[1], stored[2]} end
return {stored[1], stored[2], redis.call('HGET', KEYS[1], ARGV[3])}
""")
# fmt: on
_Held = tuple[bytes, bytes, RankedPopulation]  # (generation, version, the population ranked)


class CustomerReader:
    """One Redis round trip per call; what it returns is shaped for the API."""

    def __init__(self, client: aioredis.Redis, segments: Sequence[str]) -> None:
        self.segments = tuple(segments)
        self._client = client
        self._populations: dict[str, _Held] = {}  # scope -> the newest population document read, ranked

    async def customer(self, customer_id: str) -> bytes | None:
        """The stored document of `customer_id`, or None (never seen)."""
        doc = await self._client.hget(keys.customer(customer_id), keys.DOC_FIELD)
        return cast(bytes | None, doc)

    async def customer_and_populations(
        self, customer_id: str, scopes: Sequence[str]
    ) -> tuple[bytes | None, list[RankedPopulation | None]]:
        """The customer's stored document and each of `scopes`' population, ranked (one round trip).

        Populations are held here between reads, parsed once per version: a read asks Redis for a
        scope's document only when its stored version is not the one held (`_POPULATION_IF_CHANGED`).
        """
        held = [self._populations.get(scope) for scope in scopes]
        fields = (keys.GENERATION_FIELD, keys.VERSION_FIELD, keys.DOC_FIELD)

        def queue(pipe: Any) -> None:
            pipe.hget(keys.customer(customer_id), keys.DOC_FIELD)
            for scope, have in zip(scopes, held, strict=True):
                gen, version = (have[0], have[1]) if have is not None else (b"", b"")
                _POPULATION_IF_CHANGED.queue(pipe, [keys.customer_population(scope)], [*fields, gen, version])

        doc, *replies = raise_first_error(await run_pipeline_async(self._client, queue, (_POPULATION_IF_CHANGED,)))
        populations: list[RankedPopulation | None] = []
        for scope, have, reply in zip(scopes, held, replies, strict=True):
            if not reply:
                populations.append(None)
            elif len(reply) == 2 and have is not None:
                populations.append(have[2])  # unchanged: the copy held when the read was sent
            else:
                gen, version = reply[0] or b"", reply[1]
                ranked = RankedPopulation.from_doc(orjson.loads(reply[2]))
                kept = self._populations.get(scope)
                if kept is None or kept[0] != gen or int(kept[1]) <= int(version):  # a slower read's is not newer
                    self._populations[scope] = (gen, version, ranked)
                populations.append(ranked)
        return cast(bytes | None, doc), populations

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
