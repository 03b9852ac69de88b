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
from events.stock import SkuStock


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

    def __len__(self) -> int:
        return len(self.skus)

    def changes(self, stock: SkuStock) -> list[AvailabilityChange]:
        known = self.skus.get(stock.sku)
        if known is None:
            known = self.skus[stock.sku] = {}
        out: list[AvailabilityChange] = []
        for loc in stock.locations:
            available = loc.on_hand - loc.reserved
            sellable = available > 0
            if known.get(loc.location_id) is not sellable:
                known[sys.intern(loc.location_id)] = sellable
                change = AvailabilityChange(sku=stock.sku, location_id=loc.location_id, sellable=sellable,
                                            available=available, version=stock.version, ts=loc.updated_at)  # fmt: skip
                out.append(change)
        return out
