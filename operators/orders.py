"""An order as the API shows it: its lines added up, and its status (CONTRACT.md "Orders").

Each line's reserved and cancelled units are `events.orders.line_quantities`
of the counters the inventory flow stores; the API adds them up here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypedDict

import orjson


class OrderStatus(StrEnum):
    """Where an order stands, from its lines' totals."""

    AWAITING_PURCHASE = "awaiting_purchase"  # fulfilments or cancels came, the purchase not yet
    OPEN = "open"  # units reserved, none fulfilled
    PARTIALLY_FULFILLED = "partially_fulfilled"  # units reserved, some fulfilled
    FULFILLED = "fulfilled"  # nothing reserved, nothing cancelled
    CANCELLED = "cancelled"  # nothing reserved, nothing fulfilled
    CLOSED = "closed"  # nothing reserved: part fulfilled, the rest cancelled


class LineView(TypedDict):
    """One order line as served."""

    sku: str
    location_id: str
    purchased: int
    reserved: int
    fulfilled: int
    cancelled: int
    updated_at: str


def order_status(purchased: int, reserved: int, fulfilled: int, cancelled: int) -> OrderStatus:
    """The status of an order from its lines' totals.

    >>> [order_status(3, 3, 0, 0).value, order_status(3, 1, 2, 0).value, order_status(3, 0, 3, 0).value]
    ['open', 'partially_fulfilled', 'fulfilled']
    >>> [order_status(3, 0, 0, 3).value, order_status(3, 0, 1, 2).value, order_status(0, 0, 1, 0).value]
    ['cancelled', 'closed', 'awaiting_purchase']
    """
    if purchased == 0:
        return OrderStatus.AWAITING_PURCHASE
    if reserved > 0:
        return OrderStatus.PARTIALLY_FULFILLED if fulfilled else OrderStatus.OPEN
    if fulfilled == 0:
        return OrderStatus.CANCELLED
    return OrderStatus.CLOSED if cancelled else OrderStatus.FULFILLED


def order_document(order_id: str, lines: list[bytes]) -> bytes:
    """The `GET /v1/orders/{order_id}` object from its stored line documents (`state.order_writer.line_document`).

    Lines come sorted by SKU, then location; `as_of` is the newest line's `updated_at`.

    >>> line = b'{"sku":"A","location_id":"S1","purchased":2,"reserved":0,"fulfilled":1,"cancelled":1,'
    >>> order_document("O1", [line + b'"updated_at":"2026-01-01T00:00:00.000Z"}'])[:75]
    b'{"order_id":"O1","status":"closed","purchased":2,"reserved":0,"fulfilled":1'
    """
    parsed: list[LineView] = sorted((orjson.loads(line) for line in lines), key=lambda v: (v["sku"], v["location_id"]))
    totals = {name: sum(line[name] for line in parsed) for name in ("purchased", "reserved", "fulfilled", "cancelled")}
    status = order_status(totals["purchased"], totals["reserved"], totals["fulfilled"], totals["cancelled"])
    return orjson.dumps({
        "order_id": order_id,
        "status": status.value,
        **totals,
        "lines": parsed,
        "as_of": max((line["updated_at"] for line in parsed), default=None),
    })  # fmt: skip
