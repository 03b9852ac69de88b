"""Writes `SkuStock` records to Redis: absolute, version-fenced, coalesced, pipelined.

The documents are shaped here, once per write, exactly as the API serves them,
so the API returns stored bytes without re-serialising (PERF_NOTES.md: the
framework dominates the API's cost).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import orjson
import redis

from events.stock import LocationStock, SkuStock
from events.timestamps import rfc3339_ms
from state import keys

# Applies a whole SKU document only when its version is
# newer: a replay after recovery re-sends older versions, which change nothing.
# Whole-SKU writes matter: after a crash the replay may apply movements in a
# different interleaving, so only the newest version is known to be complete.
# Versions are only comparable within one lineage of flow state (`generation`,
# born with the recovery partitions): a hash written by another lineage (an
# earlier run on since-recreated topics) is replaced whole, stale fields too.
_WRITE_IF_NEWER = """
local gen = redis.call('HGET', KEYS[1], ARGV[1])
if gen == ARGV[2] then
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '-1')
  if stored >= tonumber(ARGV[4]) then return 0 end
elseif gen then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], unpack(ARGV, 5))
return 1
"""


iso_ts = lru_cache(maxsize=1 << 16)(rfc3339_ms)  # most timestamps repeat from write to write


class DocumentShaper:
    """Builds the API's SKU document, reusing the bytes of locations that did not change.

    A SKU is rewritten whole on every batch that touches it, but usually one
    location changed; shaping every location again dominated the flow's cost
    at live rates (small batches coalesce little).

    Parameters
    ----------
    max_cached
        Location fragments kept; the cache starts afresh when full.
    """

    def __init__(self, max_cached: int = 1 << 18) -> None:
        self.max_cached = max_cached
        self._fragments: dict[LocationStock, bytes] = {}

    def __call__(self, stock: SkuStock) -> bytes:
        """The `GET /v1/inventory/{sku}` document of `stock`.

        >>> shaper = DocumentShaper()
        >>> shaper(SkuStock("SKU-1", 3, 0.0, (LocationStock("S1", 5, 2, 0.0),))).decode()[:96]
        '{"sku":"SKU-1","total_on_hand":5,"total_reserved":2,"total_available":3,"locations":[{"location_'
        """
        fragments = self._fragments
        parts = []
        on_hand = reserved = 0
        for loc in stock.locations:
            fragment = fragments.get(loc)
            if fragment is None:
                if len(fragments) >= self.max_cached:
                    fragments.clear()
                fragment = fragments[loc] = orjson.dumps({
                    "location_id": loc.location_id,
                    "on_hand": loc.on_hand,
                    "reserved": loc.reserved,
                    "available": loc.on_hand - loc.reserved,
                    "updated_at": iso_ts(loc.updated_at),
                })  # fmt: skip
            parts.append(fragment)
            on_hand += loc.on_hand
            reserved += loc.reserved
        head = b'{"sku":%b,"total_on_hand":%d,"total_reserved":%d,"total_available":%d,"locations":[' % (
            orjson.dumps(stock.sku), on_hand, reserved, on_hand - reserved)  # fmt: skip
        return b"%b%b],\"as_of\":\"%b\"}" % (head, b",".join(parts), iso_ts(stock.as_of).encode())


class StockWriter:
    """Fenced, batched writer of `SkuStock` records.

    Delivery: each call is one pipeline round trip; a record whose version is
    not newer than Redis's is ignored, so at-least-once delivery from the flow
    gives exactly-once effects.
    """

    def __init__(self, client: redis.Redis, generation: str = "") -> None:
        self.generation = generation
        self._client = client
        self._shape = DocumentShaper()
        self._write_if_newer = client.register_script(_WRITE_IF_NEWER)

    def write_batch(self, stocks: Iterable[SkuStock]) -> int:
        """Write the newest record per SKU of `stocks`; returns how many Redis accepted."""
        pipe = self._client.pipeline(transaction=False)
        if not self.queue(pipe, stocks):
            return 0
        return sum(int(applied) for applied in pipe.execute())

    def queue(self, pipe: redis.client.Pipeline, stocks: Iterable[SkuStock]) -> int:
        """Add the fenced writes of the newest record per SKU to `pipe`; returns how many.

        Lets a sink send stock, alerts and dead letters in one round trip;
        each queued write replies 1 (applied) or 0 (not newer) in order.
        """
        newest: dict[str, SkuStock] = {}
        for stock in stocks:
            kept = newest.get(stock.sku)
            if kept is None or stock.version > kept.version:
                newest[stock.sku] = stock
        for stock in newest.values():
            args: list[bytes | str | int] = [keys.STOCK_GENERATION_FIELD, self.generation, keys.STOCK_VERSION_FIELD,
                                             stock.version, keys.STOCK_DOC_FIELD, self._shape(stock)]  # fmt: skip
            self._write_if_newer(keys=[keys.stock(stock.sku)], args=args, client=pipe)
        return len(newest)
