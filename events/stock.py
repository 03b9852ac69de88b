"""The inventory flow's output record: one SKU's stock, absolute and versioned."""

from __future__ import annotations

import msgspec


class LocationStock(msgspec.Struct, frozen=True, gc=False):
    """Stock of one SKU at one location, as CONTRACT.md "Stock semantics" defines it.

    Untracked by the garbage collector (`gc=False`: it holds only a string and
    numbers, never a cycle); what that buys: docs/performance.md, "Garbage collection".

    `updated_at` is the event time (epoch seconds) of the newest movement applied
    here, so a replay after recovery reproduces it exactly.
    """

    location_id: str
    on_hand: int
    reserved: int
    updated_at: float

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class SkuStock(msgspec.Struct, frozen=True, gc=False):
    """All locations of one SKU after `version` applied movements.

    `version` only grows within the flow's state; the Redis writer applies a
    `SkuStock` only if its version is newer than the stored one, so replayed
    output after a crash changes nothing (docs/architecture.md). Untracked by the
    garbage collector like `LocationStock`: it holds a tuple of them, never a cycle.
    """

    sku: str
    version: int
    as_of: float
    locations: tuple[LocationStock, ...]
