"""Writes `SkuStock` records to Redis: absolute, version-fenced, coalesced, pipelined.

The documents are shaped here, once per write, exactly as the API serves them,
so the API returns stored bytes without re-serialising (docs/performance.md: the
framework dominates the API's cost).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

import msgspec
import orjson
import redis

from events.stock import LocationStock, SkuStock
from events.timestamps import rfc3339_ms
from state import keys
from state.fence import FENCE_FUNCTION, newest_per_key
from state.pipeline_scripts import LuaScript, run_counting

# Whole-SKU writes matter: after a crash the replay may apply movements in a
# different interleaving, so only the newest version is known to be complete
# (the fence, as in `state.fence`, decides per SKU).
#
# Many SKUs per call: one EVALSHA per SKU, each naming every location's
# sellable set, made packing the arguments in redis-py the biggest cost of the
# flow while it tails the topics (small batches coalesce little). Here a SKU
# costs four arguments, and its sellable sets are touched only when its
# sellable map (location -> 1 when available > 0, else 0) differs from the one
# stored beside it: most writes move a count, not the sign of `available`.
#
# KEYS: the chunk's stock hashes, then the sellable-anywhere set.
# ARGV: generation field, generation, version field, document field, sellable-map field, sellable-set
#       key prefix and suffix (the key of location L is prefix .. L .. suffix, as `keys.sellable_at`
#       spells it), then per SKU: version, document, SKU, sellable map (JSON object).
# Returns how many SKUs were applied. A hash of another lineage is replaced whole, and the sets are
# moved from the map it held (read before it goes) to the new one: no member of it is left behind.
# fmt: off
_WRITE_STOCK_MANY = FENCE_FUNCTION + """
local anywhere = KEYS[#KEYS]
local applied = 0
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  local base = 7 + (i - 1) * 4
  local version, sku, sellable = ARGV[base + 1], ARGV[base + 3], ARGV[base + 4]
  local passes, before = passes_fence(key, ARGV[1], ARGV[2], ARGV[3], version, ARGV[5])
  if passes then
    redis.call('HSET', key, ARGV[1], ARGV[2], ARGV[3], version, ARGV[4], ARGV[base + 2], ARGV[5], sellable)
    if sellable ~= before then
      local now = cjson.decode(sellable)
      local was = before and cjson.decode(before) or {}
      local somewhere = false
      for loc, flag in pairs(now) do
        if flag == 1 then somewhere = true end
        if was[loc] ~= flag then
          if flag == 1 then
            redis.call('SADD', ARGV[6] .. loc .. ARGV[7], sku)
          else
            redis.call('SREM', ARGV[6] .. loc .. ARGV[7], sku)
          end
        end
      end
      for loc, flag in pairs(was) do
        if now[loc] == nil and flag == 1 then redis.call('SREM', ARGV[6] .. loc .. ARGV[7], sku) end
      end
      if somewhere then redis.call('SADD', anywhere, sku) else redis.call('SREM', anywhere, sku) end
    end
    applied = applied + 1
  end
end
return applied
"""
# fmt: on
STOCK_CHUNK = 128
"""SKUs per call: long enough to amortise the call, short enough not to stall Redis."""
_SKU = attrgetter("sku")


class _Fragment(msgspec.Struct, gc=False):
    """A location's shaped bytes, cached by `DocumentShaper`.

    Not tracked by the cycle collector (it refers to nothing that refers back):
    a tuple is tracked until a young collection visits it, and one per changed
    location made those collections, and the flow's pauses, longer.
    """

    location: LocationStock
    document: bytes
    sellable: bytes


class DocumentShaper:
    """Builds the API's SKU document and sellable map, reusing the bytes of locations that did not change.

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
        # id(location) -> (the location, its document fragment, its sellable-map entry): the location is
        # held, so its id is not reused while the entry lives; an equal but distinct object misses and is
        # shaped again (same bytes).
        self._fragments: dict[int, _Fragment] = {}
        self._names: dict[str, bytes] = {}  # location id -> its JSON string, for the sellable maps

    def shape(self, stock: SkuStock) -> tuple[bytes, bytes]:
        """The `GET /v1/inventory/{sku}` document of `stock` and its sellable map (location id -> 1 if available > 0).

        >>> document, sellable = DocumentShaper().shape(SkuStock("SKU-1", 3, 0.0, (LocationStock("S1", 5, 2, 0.0),
        ...                                                                        LocationStock("S2", 1, 1, 0.0))))
        >>> document.decode()[:96]
        '{"sku":"SKU-1","total_on_hand":6,"total_reserved":3,"total_available":3,"locations":[{"location_'
        >>> sellable
        b'{"S1":1,"S2":0}'
        """
        fragments = self._fragments
        parts = []
        flags = []
        on_hand = reserved = 0
        for loc in stock.locations:
            held = fragments.get(id(loc))
            if held is None or held.location is not loc:
                if len(fragments) >= self.max_cached:
                    fragments.clear()
                fragment = orjson.dumps({
                    "location_id": loc.location_id,
                    "on_hand": loc.on_hand,
                    "reserved": loc.reserved,
                    "available": loc.on_hand - loc.reserved,
                    "updated_at": rfc3339_ms(loc.updated_at),
                })  # fmt: skip
                names = self._names
                name = names.get(loc.location_id)
                if name is None:
                    name = names[loc.location_id] = orjson.dumps(loc.location_id)
                flag = name + (b":1" if loc.on_hand > loc.reserved else b":0")
                held = fragments[id(loc)] = _Fragment(loc, fragment, flag)
            parts.append(held.document)
            flags.append(held.sellable)
            on_hand += loc.on_hand
            reserved += loc.reserved
        head = b'{"sku":%b,"total_on_hand":%d,"total_reserved":%d,"total_available":%d,"locations":[' % (
            orjson.dumps(stock.sku), on_hand, reserved, on_hand - reserved)  # fmt: skip
        document = b'%b%b],"as_of":"%b"}' % (head, b",".join(parts), rfc3339_ms(stock.as_of).encode())
        return document, b"{%b}" % b",".join(flags)


class StockWriter:
    """Fenced, batched writer of `SkuStock` records, and of the sellable sets derived from them.

    With each SKU's stock it keeps, in the same Lua call, per-location sets of
    the SKUs with `available > 0` and a set of the SKUs available somewhere
    (`keys.sellable_at`, `keys.sellable_anywhere`): the recommendations API
    filters candidates against them in its own round trip. The call touches
    keys of several hash slots, and names the location sets it changes only
    inside the script, so it needs a single Redis node or Sentinel (as the
    flow sink already does), not Cluster.

    Delivery: each call is one pipeline round trip; a record whose version is
    not newer than Redis's is ignored, so at-least-once delivery from the flow
    gives exactly-once effects.
    """

    def __init__(self, client: redis.Redis, generation: str = "") -> None:
        self.generation = generation
        self._client = client
        self._shape = DocumentShaper()
        self._script = LuaScript(_WRITE_STOCK_MANY)
        prefix, suffix = keys.sellable_at("\0").split("\0")
        self._head: list[bytes | str | int] = [
            keys.GENERATION_FIELD, generation, keys.VERSION_FIELD, keys.DOC_FIELD, keys.SELLABLE_FIELD, prefix, suffix,
        ]  # fmt: skip
        self._anywhere = keys.sellable_anywhere()
        self.scripts = (self._script,)  # for `run_pipeline`

    def write_batch(self, stocks: Iterable[SkuStock]) -> int:
        """Write the newest record per SKU of `stocks`; returns how many Redis accepted."""
        stocks = list(stocks)
        return run_counting(self._client, lambda pipe: self.queue(pipe, stocks), self.scripts)

    def queue(self, pipe: redis.client.Pipeline, stocks: Iterable[SkuStock]) -> tuple[int, int]:
        """Add the fenced writes of the newest record per SKU to `pipe`, many SKUs per call.

        Lets a sink send stock, alerts and dead letters in one round trip.
        Returns (replies queued, SKUs queued); each reply is the number of
        SKUs it applied, so a sink sums the replies to count what was applied.
        """
        newest = newest_per_key(stocks, _SKU)
        shape, stock_key = self._shape.shape, keys.stock
        latest = list(newest.values())
        replies = 0
        for start in range(0, len(latest), STOCK_CHUNK):
            hashes: list[str] = []
            args: list[bytes | str | int] = self._head.copy()
            for stock in latest[start : start + STOCK_CHUNK]:
                document, sellable = shape(stock)
                hashes.append(stock_key(stock.sku))
                args += (stock.version, document, stock.sku, sellable)
            hashes.append(self._anywhere)
            self._script.queue(pipe, hashes, args)
            replies += 1
        return replies, len(newest)
