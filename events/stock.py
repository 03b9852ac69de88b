"""The inventory flow's output record: one SKU's stock, absolute and versioned."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LocationStock:
    """Stock of one SKU at one location, as CONTRACT.md "Stock semantics" defines it.

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


@dataclass(frozen=True, slots=True)
class SkuStock:
    """All locations of one SKU after `version` applied movements.

    `version` only grows within the flow's state; the Redis writer applies a
    `SkuStock` only if its version is newer than the stored one, so replayed
    output after a crash changes nothing (ARCHITECTURE.md).
    """

    sku: str
    version: int
    as_of: float
    locations: tuple[LocationStock, ...]
