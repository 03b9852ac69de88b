"""Writes `OrderLineState` records: each order line into its order's hash, fenced line by line.

An order's lines live in the ledgers of their SKUs, so no one place has the
whole order to write; each line is written on its own, into a field of the
order's hash, with its own fence (`OrderLineState.version`: equal counts
mean the same events, so a replay that applies them in another order
rewrites nothing, and a newer line always gets through). A hash of another
lineage of flow state is dropped whole first, as `state.fence` does.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis
from redis.cluster import RedisCluster

from events.orders import OrderLineState, line_quantities
from events.timestamps import rfc3339_ms
from state import keys
from state.pipeline_scripts import LuaScript

LINE_FIELD_PREFIX = "l:"
FENCE_FIELD_PREFIX = "v:"

# KEYS: order hashes (one per line). ARGV: generation field, generation, ttl ms, then per key: line, version, doc.
# Returns how many lines were applied.
# fmt: off
_WRITE_LINES = """
local applied = 0
for i, key in ipairs(KEYS) do
  local base = 3 + (i - 1) * 3
  local line, version = ARGV[base + 1], tonumber(ARGV[base + 2])
  local gen = redis.call('HGET', key, ARGV[1])
  if gen and gen ~= ARGV[2] then redis.call('DEL', key) end
  local stored = redis.call('HGET', key, 'v:' .. line)
  if not stored or tonumber(stored) < version then
    redis.call('HSET', key, ARGV[1], ARGV[2], 'v:' .. line, version, 'l:' .. line, ARGV[base + 3])
    local ttl = tonumber(ARGV[3])
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    applied = applied + 1
  end
end
return applied
"""
# fmt: on
LINES_CHUNK = 256


def line_field(sku: str, location_id: str) -> str:
    """The field name of a line in its order's hash (unique per SKU and location, whatever they contain).

    >>> line_field("A", "S1"), line_field("A|S", "1") != line_field("A", "S|1")
    ('1|A|S1', True)
    """
    return f"{len(sku)}|{sku}|{location_id}"


def line_document(line: OrderLineState) -> bytes:
    """A line as `GET /v1/orders/{order_id}` shows it (the reader adds up the order).

    >>> line_document(OrderLineState("O1", "A", "S1", 3, 1, False, 1, 3, 0.0))
    b'{"sku":"A","location_id":"S1","purchased":3,"reserved":1,"fulfilled":1,"cancelled":1,"updated_at":"1970-01-01T00:00:00.000Z"}'
    """
    reserved, cancelled = line_quantities(line.purchased, line.fulfilled, line.cancelled_whole, line.cancel_requested)
    return orjson.dumps({
        "sku": line.sku,
        "location_id": line.location_id,
        "purchased": line.purchased,
        "reserved": reserved,
        "fulfilled": line.fulfilled,
        "cancelled": cancelled,
        "updated_at": rfc3339_ms(line.updated_at),
    })  # fmt: skip


class OrderWriter:
    """Queues the fenced writes of order lines, many per call (one per call on Redis Cluster).

    Parameters
    ----------
    client
        The Redis client the script is registered with.
    generation
        The lineage of flow state writing.
    ttl_s
        Each order hash expires this long after its last write (0: never).
    """

    def __init__(self, client: redis.Redis, generation: str = "", ttl_s: float = 0.0) -> None:
        self._script = LuaScript(_WRITE_LINES)
        self._head: list[bytes | str | int] = [keys.GENERATION_FIELD, generation, int(ttl_s * 1000)]
        self._chunk = 1 if isinstance(client, RedisCluster) else LINES_CHUNK  # Cluster: one slot per call
        self.scripts = (self._script,)

    def queue(self, pipe: redis.client.Pipeline, lines: Iterable[OrderLineState]) -> tuple[int, int]:
        """Add the writes of the newest state per line; returns (replies queued, lines queued)."""
        newest: dict[tuple[str, str, str], OrderLineState] = {}
        for line in lines:
            name = (line.order_id, line.sku, line.location_id)
            kept = newest.get(name)
            if kept is None or line.version > kept.version:
                newest[name] = line
        latest = list(newest.values())
        replies = 0
        for start in range(0, len(latest), self._chunk):
            chunk = latest[start : start + self._chunk]
            args = self._head.copy()
            for line in chunk:
                args += (line_field(line.sku, line.location_id), line.version, line_document(line))
            self._script.queue(pipe, [keys.order(line.order_id) for line in chunk], args)
            replies += 1
        return replies, len(latest)
