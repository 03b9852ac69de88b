"""The inventory flow's order and reservation records: one order line, one checkout hold, as the ledger keeps them.

Declared here, once for the flow that writes them (`operators.stock_ledger`)
and the readers that serve them (`state.order_reader`, `state.reservations`).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class OrderLineState(msgspec.Struct, frozen=True, gc=False):
    """What one order does to one SKU at one location, at `version`.

    `version` fences the stored line (`state.order_writer`): it counts the
    distinct events the line took (its purchase, fulfilments, cancels), so it
    is the same after any replay, and equal versions mean the same events.
    The quantities are raw sums; `reserved` and `cancelled` follow CONTRACT.md
    "Orders" (`operators.orders`).
    """

    order_id: str
    sku: str
    location_id: str
    purchased: int
    fulfilled: int
    cancelled_whole: bool  # a cancel without `qty` reached the line (the whole order, or the line)
    cancel_requested: int  # units named by partial cancels
    version: int
    updated_at: float  # event time of the newest event of the line


def line_quantities(purchased: int, fulfilled: int, cancelled_whole: bool, cancel_requested: int) -> tuple[int, int]:
    """(reserved, cancelled) of a line: what still holds stock, and what cancels released.

    Fulfilment wins over a cancel (the goods left); a cancel without qty
    releases all that remains, a partial one at most what remains.

    >>> line_quantities(5, 1, False, 0), line_quantities(5, 1, False, 2), line_quantities(5, 1, True, 0)
    ((4, 0), (2, 2), (0, 4))
    >>> line_quantities(2, 3, True, 0), line_quantities(0, 0, True, 0)  # over-fulfilled; cancel before purchase
    ((0, 0), (0, 0))
    """
    remaining = max(0, purchased - fulfilled)
    cancelled = remaining if cancelled_whole else min(cancel_requested, remaining)
    return remaining - cancelled, cancelled


class HoldStatus(StrEnum):
    """Where a checkout hold stands (CONTRACT.md "Reservations")."""

    PENDING = "pending"  # published, not decided yet (only the API says this)
    HELD = "held"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class ReservationState(msgspec.Struct, frozen=True, gc=False):
    """A reservation as the flow decided it: `status` and why, at `version` (fenced like `OrderLineState`)."""

    reservation_id: str
    sku: str
    location_id: str
    qty: int
    status: HoldStatus
    reason: str
    updated_at: float  # event time of the newest event of the reservation (its request, fulfilment, cancel)
    expires_at: float
    fulfilled: int
    version: int
