"""Sellable flips: which (SKU, location) pairs crossed `available > 0` in a batch of stock records.

The inventory flow keeps stock per SKU and location; consumers such as back-in-stock
watches only need to know when a location starts or stops being able to sell a SKU.
`SellableFlips` remembers, per SKU, whether each location was sellable in the last stock
record, and turns each new `SkuStock` into the changes since. A location seen for the first
time is announced either way, so a consumer knows where a SKU is unavailable, not only
where it is available.
"""

from __future__ import annotations

import sys

from events.availability import AvailabilityChange
from events.stock import LocationStock, SkuStock


class SellableFlips:
    """Per SKU, the sellable state of each location as last announced.

    >>> from events.stock import LocationStock
    >>> flips = SellableFlips()
    >>> stock = SkuStock("SKU-1", 1, 10.0, (LocationStock("S1", 0, 0, 10.0),))
    >>> [(c.location_id, c.sellable) for c in flips.changes(stock)]
    [('S1', False)]
    >>> flips.changes(SkuStock("SKU-1", 2, 11.0, (LocationStock("S1", 0, 0, 11.0),)))  # still nothing to sell
    []
    >>> [(c.location_id, c.sellable, c.ts) for c in flips.changes(SkuStock("SKU-1", 3, 12.0,
    ...                                                                    (LocationStock("S1", 4, 1, 12.0),)))]
    [('S1', True, 12.0)]
    """

    def __init__(self) -> None:
        self.skus: dict[str, dict[str, bool]] = {}
        # Per SKU, the locations of the last stock record seen (until `forget_seen`), see `changes`.
        self._seen: dict[str, tuple[LocationStock, ...]] = {}

    def __len__(self) -> int:
        return len(self.skus)

    def forget_seen(self) -> None:
        """Let go of the stock records kept since the last call (the flow calls it when it snapshots)."""
        self._seen.clear()

    def changes(self, stock: SkuStock) -> list[AvailabilityChange]:
        """What changed since the SKU's last record: each location whose sellable state differs from `skus`.

        `StockLedger.stock` hands on the very `LocationStock` of a location that did not change, and a
        location's state was brought up to date when its record was last seen here: only the locations
        that are not the same object as in the last record seen need a look (most of a stock record,
        which lists every location of the SKU, is unchanged). The last record is kept only until
        `forget_seen`, so memory holds the SKUs of one snapshot interval; without it, every location
        is looked at, which gives the same changes.
        """
        sku = stock.sku
        known = self.skus.get(sku)
        if known is None:
            known = self.skus[sku] = {}
        locations = stock.locations
        last = self._seen.get(sku)
        self._seen[sku] = locations
        if last is not None and len(last) == len(locations):  # same locations in the same (sorted) order
            locations = tuple([loc for loc, was in zip(locations, last, strict=True) if loc is not was])
        out: list[AvailabilityChange] = []
        for loc in locations:
            available = loc.on_hand - loc.reserved
            sellable = available > 0
            if known.get(loc.location_id) is not sellable:
                known[sys.intern(loc.location_id)] = sellable
                change = AvailabilityChange(sku=sku, location_id=loc.location_id, sellable=sellable,
                                            available=available, version=stock.version, ts=loc.updated_at)  # fmt: skip
                out.append(change)
        return out
