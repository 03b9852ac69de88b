"""Stock movements: what an input event does to one (sku, location) stock record.

Events carry baskets and orders; the ledger works per SKU. This module turns
inventory events and online purchases into movements, one per affected SKU
(lines of the same SKU in one basket are summed, so a basket is one movement
per SKU and its `event_id` stays a unique dedup key within that SKU).
POS events need the transaction journal (voids name a sale, not SKUs): see
`operators.txn_journal`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from events.models import (
    Adjustment,
    Count,
    Fulfilment,
    LineItem,
    Purchase,
    Receipt,
    Reservation,
    TransferIn,
    TransferOut,
)

StockEvent = Receipt | Adjustment | TransferOut | TransferIn | Count | Fulfilment | Reservation
"""The `omni.inventory` events that name one sku and location."""


class Move(IntEnum):
    """The kinds of effect a movement has on a stock record."""

    ON_HAND = 0  # signed change of on-hand at `ts`
    COUNT = 1  # absolute on-hand as of `ts`
    RESERVE = 2  # an online order line reserves `qty`
    FULFIL = 3  # an order line shipped `qty`: on-hand and the reservation drop
    CANCEL = 4  # an order line was cancelled: `qty` units of it, or (qty 0) all it still holds
    HOLD = 5  # a checkout hold asks for `qty` until `until`: held if available, else rejected


class StockMovement(NamedTuple):
    """One effect on the stock of `sku` at `location_id`.

    `event_id` is the dedup key within the SKU; `ts` is event time in epoch
    seconds. `order_id` is set for RESERVE, FULFIL, CANCEL and HOLD (the
    reservation id); `until` is when a HOLD lapses (event time); `prior` is a
    HOLD's decision when it was already made and published before a recovery
    replay (`HELD_BEFORE` or `REJECTED_BEFORE`), 0 when it is the ledger's to make.
    """

    sku: str
    location_id: str
    kind: Move
    qty: int
    ts: float
    event_id: str
    order_id: str | None = None
    source: tuple[str, int, int, bytes] | None = None  # (topic, partition, offset, raw) of a count, for its dead letter
    until: float = 0.0
    prior: int = 0


_RESERVE = Move.RESERVE  # hoisted: enum attribute lookups are slow on the hot path
_new_movement = tuple.__new__

HELD_BEFORE, REJECTED_BEFORE = 1, 2
"""`StockMovement.prior` of a hold already decided (and published) before a replay."""


def qty_by_sku(items: list[LineItem]) -> dict[str, int]:
    """Total quantity per SKU of a basket, in first-seen order."""
    totals: dict[str, int] = {}
    for item in items:
        totals[item.sku] = totals.get(item.sku, 0) + item.qty
    return totals


def inventory_movement(event: StockEvent, source: tuple[str, int, int, bytes] | None = None) -> StockMovement:
    """The movement of one `omni.inventory` event that names one sku and location (not `order_cancel`).

    An `order_cancel` may name a whole order: `operators.order_book` turns it into movements.

    `source` (topic, partition, offset, raw bytes) is kept on cycle counts only:
    a count too old to apply exactly becomes a dead letter that names it.

    >>> from datetime import datetime, UTC
    >>> receipt = Receipt(event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), schema_version=1,
    ...                   sku="SKU-1", location_id="S1", qty=5)
    >>> inventory_movement(receipt).qty
    5
    """
    ts = event.ts.timestamp()
    match event:
        case Receipt() | TransferIn():
            return StockMovement(event.sku, event.location_id, Move.ON_HAND, event.qty, ts, event.event_id)
        case TransferOut():
            return StockMovement(event.sku, event.location_id, Move.ON_HAND, -event.qty, ts, event.event_id)
        case Adjustment():
            return StockMovement(event.sku, event.location_id, Move.ON_HAND, event.qty, ts, event.event_id)
        case Count():
            return StockMovement(
                event.sku, event.location_id, Move.COUNT, event.on_hand, ts, event.event_id, None, source
            )
        case Fulfilment():
            return StockMovement(
                event.sku, event.location_id, Move.FULFIL, event.qty, ts, event.event_id, event.order_id
            )
        case Reservation():
            return StockMovement(event.sku, event.location_id, Move.HOLD, event.qty, ts, event.event_id,
                                 event.reservation_id, None, ts + event.hold_s)  # fmt: skip
    raise TypeError(f"not an inventory event: {type(event).__name__}")


def purchase_movements(purchase: Purchase, ts: float | None = None) -> list[StockMovement]:
    """The reservations an online order makes at its fulfilment location, one per SKU.

    `ts`: `purchase.ts` in epoch seconds, when the caller has it already (an aware datetime's
    `timestamp()` asks its time zone for the offset: about a microsecond with a named zone).
    """
    if ts is None:
        ts = purchase.ts.timestamp()
    location_id, event_id, order_id = purchase.fulfilment_location_id, purchase.event_id, purchase.order_id
    # The tuple made in C: a NamedTuple's own `__new__` with defaults is a Python call per line.
    return [
        _new_movement(StockMovement, (sku, location_id, _RESERVE, qty, ts, event_id, order_id, None, 0.0, 0))
        for sku, qty in qty_by_sku(purchase.items).items()
    ]
