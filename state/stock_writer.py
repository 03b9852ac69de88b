"""Writes `SkuStock` records to Redis: absolute, version-fenced, coalesced, pipelined.

The documents are shaped here, once per write, exactly as the API serves them,
so the API returns stored bytes without re-serialising (docs/performance.md: the
framework dominates the API's cost).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

import msgspec
import orjson
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from events.stock import LocationStock, SkuStock
from events.timestamps import rfc3339_ms
from state import keys
from state.fence import FENCE_FUNCTION, newest_per_key
from state.flag_sets import Flag, FlagSets
from state.pipeline_scripts import LuaScript, run_pipeline

# Whole-SKU writes matter: after a crash the replay may apply movements in a
# different interleaving, so only the newest version is known to be complete
# (the fence, as in `state.fence`, decides per SKU).
#
# Many SKUs per call: one EVALSHA per SKU made packing the arguments in
# redis-py the biggest cost of the flow while it tails the topics (small
# batches coalesce little). On Redis Cluster a call holds the SKUs of one hash
# slot only (`StockWriter` groups them); on a single node, a chunk of any.
#
# The call touches the stock hashes it names and nothing else: the sellable
# sets (other slots) get their own fenced calls (`state.flag_sets`), in the same
# pipeline, with only the flags that changed since this writer's last applied
# write of the SKU.
#
# KEYS: the chunk's stock hashes.
# ARGV: generation field, generation, version field, document field, sellable-map field,
#       then per SKU: version, document, sellable map (JSON object, location -> 1 or 0).
# Returns {applied, positions not applied, {position, sellable map} of hashes of another lineage replaced}:
# a writer forgets what it sent for a SKU not applied, and clears the sellable sets of the locations an
# earlier lineage had and this one has not.
# fmt: off
_WRITE_STOCK_MANY = FENCE_FUNCTION + """
local applied, rejected, replaced = 0, {}, {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local base = 5 + (i - 1) * 3
  local version = ARGV[base + 1]
  local passes, before = passes_fence(key, ARGV[1], ARGV[2], ARGV[3], version, ARGV[5])
  if passes then
    if before and redis.call('EXISTS', key) == 0 then
      replaced[#replaced + 1] = i
      replaced[#replaced + 1] = before
    end
    redis.call('HSET', key, ARGV[1], ARGV[2], ARGV[3], version, ARGV[4], ARGV[base + 2], ARGV[5], ARGV[base + 3])
    applied = applied + 1
  else
    rejected[#rejected + 1] = i
  end
end
return {applied, rejected, replaced}
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

    With each SKU's stock it keeps per-location sets of the SKUs with
    `available > 0` and a set of the SKUs available somewhere
    (`keys.sellable_at`, `keys.sellable_anywhere`): the recommendations API
    filters candidates against them. Every call names all the keys it touches
    and they share one hash slot, so the writer runs on a single node, Sentinel
    or Redis Cluster alike; on a Cluster the stock hashes of one call are those
    of one slot.

    A set flag is sent only when it differs from the one this writer last
    sent for an applied write of the SKU (most writes move a count, not the
    sign of `available`); after a restart, or a write the fence refused, the
    SKU's first write sends every flag again. Flags are fenced per member
    (`state.flag_sets`), so any of them replayed changes nothing.

    Delivery: each call is one pipeline round trip (two when a hash of an
    earlier lineage was replaced); a record whose version is not newer than
    Redis's is ignored, so at-least-once delivery from the flow gives
    exactly-once effects. A pipeline's replies go back through `settle`.
    """

    def __init__(self, client: redis.Redis, generation: str = "", max_remembered: int = 1 << 18) -> None:
        self.generation = generation
        self.max_remembered = max_remembered
        self._client = client
        self._shape = DocumentShaper()
        self._script = LuaScript(_WRITE_STOCK_MANY)
        self._flags = FlagSets(generation)
        self._head: list[bytes | str | int] = [
            keys.GENERATION_FIELD, generation, keys.VERSION_FIELD, keys.DOC_FIELD, keys.SELLABLE_FIELD,
        ]  # fmt: skip
        self._anywhere = keys.sellable_anywhere()
        self._by_slot = isinstance(client, RedisCluster)
        # SKU -> the sellable map (`DocumentShaper`'s bytes) the sets hold from this writer's last applied write of it.
        self._sent: dict[str, bytes] = {}
        self._queued: list[tuple[list[SkuStock], list[bytes]]] = []  # per hash call, what `settle` reads
        self.scripts = (self._script, self._flags.script)  # for `run_pipeline`

    def write_batch(self, stocks: Iterable[SkuStock]) -> int:
        """Write the newest record per SKU of `stocks`; returns how many Redis accepted."""
        stocks = list(stocks)
        (replies, _), answers = run_pipeline(self._client, lambda pipe: self.queue(pipe, stocks), self.scripts)
        return self.settle(answers[:replies])

    def queue(self, pipe: redis.client.Pipeline, stocks: Iterable[SkuStock]) -> tuple[int, int]:
        """Add the fenced writes of the newest record per SKU to `pipe`, many SKUs per call.

        Lets a sink send stock, alerts and dead letters in one round trip.
        Returns (replies queued, SKUs queued); pass those replies, in order, to
        `settle`, which counts what was applied.
        """
        newest = newest_per_key(stocks, _SKU)
        shape, stock_key, sent = self._shape.shape, keys.stock, self._sent
        at: dict[str, list[Flag]] = {}
        anywhere: list[Flag] = []
        groups: dict[int, list[tuple[SkuStock, bytes, bytes]]] = {}
        for stock in newest.values():
            document, sellable = shape(stock)
            was_map = sent.get(stock.sku)
            if sellable != was_map:  # the common case, a count that moved and no sign, costs one comparison
                self._queue_flags(stock, sellable, was_map, at, anywhere)
            slot = key_slot(stock_key(stock.sku).encode()) if self._by_slot else 0
            groups.setdefault(slot, []).append((stock, document, sellable))

        self._queued = []
        for group in groups.values():
            for start in range(0, len(group), STOCK_CHUNK):
                chunk = group[start : start + STOCK_CHUNK]
                hashes: list[str] = []
                args: list[bytes | str | int] = self._head.copy()
                for stock, document, sellable in chunk:
                    hashes.append(stock_key(stock.sku))
                    args += (stock.version, document, sellable)
                self._script.queue(pipe, hashes, args)
                self._queued.append(([stock for stock, _, _ in chunk], [sellable for _, _, sellable in chunk]))
        replies = len(self._queued)
        for location, flags in at.items():
            replies += self._flags.queue(pipe, keys.sellable_at(location), flags)
        replies += self._flags.queue(pipe, self._anywhere, anywhere)
        return replies, len(newest)

    @staticmethod
    def _queue_flags(
        stock: SkuStock, sellable: bytes, was_map: bytes | None, at: dict[str, list[Flag]], anywhere: list[Flag]
    ) -> None:
        """The flags of `stock` that differ from the sellable map last sent (all of them when none was)."""
        sku, version = stock.sku, stock.version
        now: dict[str, int] = orjson.loads(sellable)
        was: dict[str, int] | None = orjson.loads(was_map) if was_map is not None else None
        for location, flag in now.items():
            if was is None or was.get(location) != flag:
                at.setdefault(location, []).append((sku, version, flag == 1))
        if was is not None:
            for location, flag in was.items():
                if flag == 1 and location not in now:
                    at.setdefault(location, []).append((sku, version, False))
        somewhere = 1 in now.values()
        if was is None or (1 in was.values()) is not somewhere:
            anywhere.append((sku, version, somewhere))

    def settle(self, replies: Sequence[Any]) -> int:
        """How many SKUs the replies of the last `queue` applied; remembers what the sets now hold.

        Clears, in one more round trip, the sellable sets of locations a replaced
        hash of an earlier lineage had and the new one has not.
        """
        applied = 0
        sent = self._sent
        leftovers: dict[str, list[Flag]] = {}
        for (stocks, maps), reply in zip(self._queued, replies, strict=False):
            count, rejected, replaced = reply
            applied += int(count)
            if len(sent) + len(stocks) > self.max_remembered:
                sent.clear()  # forgetting only costs a full set of flags at a SKU's next write
            for stock, sellable in zip(stocks, maps, strict=True):
                sent[stock.sku] = sellable
            for position in rejected:
                sent.pop(stocks[int(position) - 1].sku, None)
            for position, before in zip(replaced[::2], replaced[1::2], strict=True):
                stock = stocks[int(position) - 1]
                now = orjson.loads(maps[int(position) - 1])
                for location, flag in orjson.loads(before).items():
                    if flag == 1 and location not in now:
                        leftovers.setdefault(location, []).append((stock.sku, stock.version, False))
        self._queued = []
        if leftovers:
            queue = self._flags.queue
            run_pipeline(
                self._client,
                lambda pipe: [queue(pipe, keys.sellable_at(loc), flags) for loc, flags in leftovers.items()],
                (self._flags.script,),
            )
        return applied
