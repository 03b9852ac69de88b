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
from state.fence import VersionFence
from state.pipeline_scripts import run_pipeline

# Whole-SKU writes matter: after a crash the replay may apply movements in a
# different interleaving, so only the newest version is known to be complete
# (the fence itself: `state.fence`).

# Kept in step with the stock hash, in the same call and only when the fence let the write
# through (a replayed, older version must not resurrect a sold-out SKU in a set).
# KEYS[2] the sellable-anywhere set, KEYS[3..] the sellable set of each location of the SKU;
# ARGV[EXTRA] the SKU, then one '1' (available > 0) or '0' per location, in KEYS order.
_KEEP_SELLABLE_SETS = """
local sku = ARGV[EXTRA]
local anywhere = false
for i = 3, #KEYS do
  if ARGV[EXTRA + i - 2] == '1' then
    redis.call('SADD', KEYS[i], sku)
    anywhere = true
  else
    redis.call('SREM', KEYS[i], sku)
  end
end
if anywhere then redis.call('SADD', KEYS[2], sku) else redis.call('SREM', KEYS[2], sku) end
"""

iso_ts = lru_cache(maxsize=1 << 16)(rfc3339_ms)  # most timestamps repeat from write to write


class DocumentShaper:
    """Builds the API's SKU document, reusing the bytes of locations that did not change.

    A SKU is rewritten whole on every batch that touches it, but usually one
    location changed; shaping every location again dominated the flow's cost
    at live rates (small batches coalesce little). The ledger hands over the
    same `LocationStock` object until that location changes, so fragments are
    found by identity: hashing the record on every lookup cost more than
    the rest of the shaping.

    Parameters
    ----------
    max_cached
        Location fragments kept; the cache starts afresh when full.
    """

    def __init__(self, max_cached: int = 1 << 18) -> None:
        self.max_cached = max_cached
        # id(location) -> (the location, its fragment): the location is held, so its id is not reused
        # while the entry lives; an equal but distinct object misses and is shaped again (same bytes).
        self._fragments: dict[int, tuple[LocationStock, bytes]] = {}

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
            held = fragments.get(id(loc))
            if held is not None and held[0] is loc:
                fragment = held[1]
            else:
                if len(fragments) >= self.max_cached:
                    fragments.clear()
                fragment = orjson.dumps({
                    "location_id": loc.location_id,
                    "on_hand": loc.on_hand,
                    "reserved": loc.reserved,
                    "available": loc.on_hand - loc.reserved,
                    "updated_at": iso_ts(loc.updated_at),
                })  # fmt: skip
                fragments[id(loc)] = (loc, fragment)
            parts.append(fragment)
            on_hand += loc.on_hand
            reserved += loc.reserved
        head = b'{"sku":%b,"total_on_hand":%d,"total_reserved":%d,"total_available":%d,"locations":[' % (
            orjson.dumps(stock.sku), on_hand, reserved, on_hand - reserved)  # fmt: skip
        return b"%b%b],\"as_of\":\"%b\"}" % (head, b",".join(parts), iso_ts(stock.as_of).encode())


class StockWriter:
    """Fenced, batched writer of `SkuStock` records, and of the sellable sets derived from them.

    With each SKU's stock it keeps, in the same Lua call, per-location sets of
    the SKUs with `available > 0` and a set of the SKUs available somewhere
    (`keys.sellable_at`, `keys.sellable_anywhere`): the recommendations API
    filters candidates against them in its own round trip. The call touches
    keys of several hash slots, so it needs a single Redis node or Sentinel
    (as the flow sink already does), not Cluster.

    Delivery: each call is one pipeline round trip; a record whose version is
    not newer than Redis's is ignored, so at-least-once delivery from the flow
    gives exactly-once effects.
    """

    def __init__(self, client: redis.Redis, generation: str = "") -> None:
        self.generation = generation
        self._client = client
        self._shape = DocumentShaper()
        self._fence = VersionFence(client, generation, after_applied=_KEEP_SELLABLE_SETS)
        self._anywhere = keys.sellable_anywhere()
        self.scripts = self._fence.scripts  # for `run_pipeline`

    def write_batch(self, stocks: Iterable[SkuStock]) -> int:
        """Write the newest record per SKU of `stocks`; returns how many Redis accepted."""
        stocks = list(stocks)
        _, replies = run_pipeline(self._client, lambda pipe: self.queue(pipe, stocks), self.scripts)
        return sum(int(applied) for applied in replies)

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
        fence, doc_field = self._fence, keys.DOC_FIELD
        anywhere, sellable_at = self._anywhere, keys.sellable_at
        for stock in newest.values():
            locations = stock.locations
            fence.queue(
                pipe, keys.stock(stock.sku), stock.version, [doc_field, self._shape(stock)],
                extra_keys=[anywhere, *(sellable_at(loc.location_id) for loc in locations)],
                extra_args=[stock.sku, *("1" if loc.on_hand > loc.reserved else "0" for loc in locations)],
            )  # fmt: skip
        return len(newest)
