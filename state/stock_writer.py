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

# Whole-SKU writes matter: after a crash the replay may apply movements in a
# different interleaving, so only the newest version is known to be complete
# (the fence itself: `state.fence`).

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
        self._fence = VersionFence(client, generation)

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
        fence, doc_field = self._fence, keys.DOC_FIELD
        for stock in newest.values():
            fence.queue(pipe, keys.stock(stock.sku), stock.version, [doc_field, self._shape(stock)])
        return len(newest)
