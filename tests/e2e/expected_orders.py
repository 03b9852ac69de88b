"""The test oracle of orders: each order's lines and status computed from CONTRACT.md "Orders" alone.

Like `tests/e2e/expected_stock.py` it shares no code with `operators/`,
`state/` or `flows/`: it keeps every event and works the answer out at the
end, so the order events arrived in cannot matter.

The rules, per order line (`order_id`, `sku`, `location_id`):

- `purchase` (`omni.clickstream`): each item's qty is purchased at the
  purchase's `fulfilment_location_id`;
- `fulfilment`: qty fulfilled at its own `sku` and `location_id`;
- `order_cancel` without `sku`: every line a purchase of the order reserved
  is cancelled whole; with `sku`: that line (at its `location_id`, else at the
  order's purchase location) is cancelled whole without `qty`, else by `qty`
  more units;
- a line's cancelled units: what remains after fulfilment (purchased -
  fulfilled, never below 0) if cancelled whole, else the smaller of the
  partial cancels' sum and what remains; reserved = what remains - cancelled;
- a line exists once a purchase or a fulfilment names it (a cancel alone does
  not: an order is known from its purchase, or from goods leaving for it);
- order totals add the lines up; status: `awaiting_purchase` (nothing
  purchased), `open` / `partially_fulfilled` (something reserved, nothing / some
  fulfilled), `cancelled` / `fulfilled` / `closed` (nothing reserved, and
  nothing fulfilled / nothing cancelled / both);
- an `event_id` seen before changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Line = tuple[str, str]
"""(sku, location_id)"""


@dataclass
class _Order:
    purchase_location: str | None = None
    purchased: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    fulfilled: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    whole_cancels: int = 0
    line_cancels: list[tuple[str, str | None, int | None]] = field(default_factory=list)  # sku, location, qty


@dataclass(frozen=True)
class ExpectedLine:
    purchased: int
    reserved: int
    fulfilled: int
    cancelled: int


class ExpectedOrders:
    """Expected lines and status of every order, from valid events of any topic in any order.

    >>> orders = ExpectedOrders()
    >>> def ev(event_id, type_, **fields):
    ...     return {"event_id": event_id, "type": type_, "ts": "2026-11-22T01:00:00Z", "schema_version": 1, **fields}
    >>> orders.add("inventory", ev("e1", "order_cancel", order_id="O1"))  # before its purchase
    >>> orders.add("clickstream", ev("e2", "purchase", order_id="O1", fulfilment_location_id="W1",
    ...                              items=[{"sku": "A", "qty": 2, "unit_price": 1.0}]))
    >>> orders.order("O1")
    ('cancelled', {('A', 'W1'): ExpectedLine(purchased=2, reserved=0, fulfilled=0, cancelled=2)})
    """

    def __init__(self) -> None:
        self._event_ids: set[str] = set()
        self._orders: dict[str, _Order] = defaultdict(_Order)

    def add(self, topic: str, event: Mapping[str, Any]) -> None:
        if event["event_id"] in self._event_ids:
            return
        self._event_ids.add(event["event_id"])
        kind = event["type"]
        if str(topic) == "clickstream" and kind == "purchase":
            order = self._orders[event["order_id"]]
            location = event["fulfilment_location_id"]
            if order.purchase_location is None:
                order.purchase_location = location
            for item in event["items"]:
                order.purchased[item["sku"], location] += item["qty"]
        elif kind == "fulfilment":
            self._orders[event["order_id"]].fulfilled[event["sku"], event["location_id"]] += event["qty"]
        elif kind == "order_cancel":
            order = self._orders[event["order_id"]]
            if event.get("sku") is None:
                order.whole_cancels += 1
            else:
                order.line_cancels.append((event["sku"], event.get("location_id"), event.get("qty")))

    def order_ids(self) -> list[str]:
        """Orders with at least one line."""
        return sorted(order_id for order_id in self._orders if self.order(order_id)[1])

    def order(self, order_id: str) -> tuple[str, dict[Line, ExpectedLine]]:
        """(status, lines) of an order; no lines when no event names one."""
        order = self._orders[order_id]
        whole: set[Line] = set()
        partial: dict[Line, int] = defaultdict(int)
        named: set[Line] = set(order.purchased) | set(order.fulfilled)
        if order.whole_cancels:
            whole |= set(order.purchased)
        for sku, location, qty in order.line_cancels:
            location = location or order.purchase_location
            if location is None:
                continue  # waits for a purchase that never came
            if qty is None:
                whole.add((sku, location))
            else:
                partial[sku, location] += qty
        lines = {}
        for line in named:
            purchased, fulfilled = order.purchased.get(line, 0), order.fulfilled.get(line, 0)
            remaining = max(0, purchased - fulfilled)
            cancelled = remaining if line in whole else min(partial.get(line, 0), remaining)
            lines[line] = ExpectedLine(purchased, remaining - cancelled, fulfilled, cancelled)
        return _status(lines), lines

    def fulfilled_units(self, order_id: str, line: Line) -> int:
        """Units fulfilled for `order_id` at `line` (sku, location_id)."""
        order = self._orders.get(order_id)
        return 0 if order is None else order.fulfilled.get(line, 0)

    def reserved_by_line(self) -> dict[tuple[str, str, str], int]:
        """(order_id, sku, location_id) -> reserved units, for every line of every order."""
        return {
            (order_id, *line): expected.reserved
            for order_id in self._orders
            for line, expected in self.order(order_id)[1].items()
        }


def _status(lines: Mapping[Line, ExpectedLine]) -> str:
    purchased = sum(line.purchased for line in lines.values())
    reserved = sum(line.reserved for line in lines.values())
    fulfilled = sum(line.fulfilled for line in lines.values())
    cancelled = sum(line.cancelled for line in lines.values())
    if purchased == 0:
        return "awaiting_purchase"
    if reserved:
        return "partially_fulfilled" if fulfilled else "open"
    if not fulfilled:
        return "cancelled"
    return "closed" if cancelled else "fulfilled"
