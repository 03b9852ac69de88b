"""The availability record of `omni.availability`: a SKU became sellable, or stopped being, at a location.

The inventory flow publishes one when a location's `available` crosses zero (CONTRACT.md
"Stock semantics"), so consumers that care about "in stock or not" (the customers flow's
back-in-stock watches) need not follow every movement. `version` is the SKU's stock version
at the change, so a record re-sent after a recovery replay is recognisably the same one.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from events.outputs import Destination
from events.topics import Topic


class AvailabilityChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """`sku` at `location_id` became sellable (`available > 0`) or not, at event time `ts` (epoch seconds)."""

    DESTINATION: ClassVar[Destination] = Destination(Topic.AVAILABILITY, "sku")

    sku: str
    location_id: str
    sellable: bool
    available: int
    version: int
    ts: float

    @property
    def change_id(self) -> str:
        """Derived from the SKU's stock version: the same change always has the same id."""
        return f"{self.sku}@{self.location_id}:{self.version}"


AVAILABILITY_DECODER = msgspec.json.Decoder(AvailabilityChange)
