"""Inventory traffic: opening stock, deliveries, transfers, adjustments, cycle counts, order picking.

The stockroom also replenishes: when tracked on-hand of a SKU drops below a
reorder point, a store gets a transfer from a warehouse and a warehouse gets a
vendor receipt, so a long run neither empties every shelf nor only grows.
"""

from __future__ import annotations

from typing import Any

from events.topics import Topic
from sim.catalog import Product
from sim.run import COUNT, MOVEMENT, RESTOCK_ARRIVAL, Effect, Run

_STORE_REORDER_POINT = 3
_WAREHOUSE_REORDER_POINT = 20
_ADJUSTMENT_REASONS = ("damage", "shrink", "correction", "found")


class Stockroom:
    """Publishes `omni.inventory` events and keeps the tracked on-hand they imply.

    Parameters
    ----------
    run
        The stream's shared state.
    late_count_rate
        Share of cycle counts published late: dated before a movement of the same
        SKU and location that was already published (CONTRACT.md: a count covers
        movements up to its `ts`, whenever it arrives).
    hold_share
        Share of activities that are a checkout hold (`reservation`).
    """

    def __init__(self, run: Run, late_count_rate: float, hold_share: float = 0.05) -> None:
        self.run = run
        self.late_count_rate = late_count_rate
        self.hold_share = hold_share
        self._stores = frozenset(run.catalog.stores)
        self._pending_restock: set[tuple[str, str]] = set()

    # --- publishing -----------------------------------------------------------

    def seed_stock(self, ts: float) -> None:
        """Opening stock: every SKU at every warehouse, the store assortment at every store."""
        catalog = self.run.catalog
        for product in catalog.products:
            depth = (product.rank + 1) ** 0.5  # best sellers get deep stock
            for warehouse in catalog.warehouses:
                self._receipt(product, warehouse, 30 + int(400 / depth), ts)
            if catalog.in_stores(product):
                for store in catalog.stores:
                    self._receipt(product, store, 8 + int(60 / depth), ts)

    def activity(self, t: float) -> None:
        """One stock-room event at `t`: a delivery, an adjustment, a transfer, a checkout hold or a cycle count."""
        roll = self.run.random()
        if roll < 0.25:
            self._delivery(t)
        elif roll < 0.40:
            self._adjustment(t)
        elif roll < 0.55:
            self._transfer(t)
        elif roll < 0.55 + self.hold_share:
            self.hold(t)
        else:
            self._count(t)

    def shrink_spike(self, location_id: str, start_ts: float, end_ts: float, n_adjustments: int) -> None:
        """A run of shrink write-offs at one location (theft, a faulty handheld), spread over the window.

        Each writes off one unit of a SKU the location stocks, dated inside the window; they are
        published at their own times like any adjustment.
        """
        run = self.run
        step = (end_ts - start_ts) / max(1, n_adjustments)
        for i in range(n_adjustments):
            product = self._stocked_product(location_id)
            for _ in range(5):  # prefer a SKU on the shelf: a write-off of nothing would be a data error
                if run.on_hand.get((product.sku, location_id), 0) > 0:
                    break
                product = self._stocked_product(location_id)
            ts = start_ts + i * step + run.uniform(0.0, step)
            fields = {"sku": product.sku, "location_id": location_id, "qty": -1, "reason": "shrink"}
            self._emit(product, "adjustment", ts, fields, ((product.sku, location_id, -1, ts, MOVEMENT),))

    def settle_order(
        self, order_id: str, location_id: str, lines: list[tuple[Product, int]], t: float, delay_s: float
    ) -> float | None:
        """Schedule what happens to an online order: picked, cancelled, partly both, or still open.

        Returns when the first of those events is published, or None when the order stays open.
        """
        run = self.run
        roll = run.random()
        if roll < 0.05:
            return None  # still open when the stream ends: its reservation stays
        at = first = t + delay_s
        if roll < 0.85:
            for product, qty in lines:
                if qty >= 2 and run.random() < 0.15:
                    part = 1 + int(run.random() * (qty - 1))  # two parcels for one line
                    self._fulfilment(order_id, product, location_id, part, at)
                    at += run.uniform(60.0, 600.0)
                    qty -= part
                self._fulfilment(order_id, product, location_id, qty, at)
                at += run.uniform(0.5, 30.0)
            return first
        if roll < 0.93:
            style = run.random()
            if style < 0.5:  # the order-management system cancels the order in one message
                self._whole_order_cancel(order_id, at)
                return first
            for product, _ in lines:  # line by line, with or without the location
                self._order_cancel(order_id, product, location_id if style < 0.75 else None, at)
                at += run.uniform(0.1, 2.0)
            return first
        # Picked what was on the shelf, then cancelled the rest: the rest of that line, or the whole order.
        product, qty = lines[0]
        picked = max(1, qty - 1)
        self._fulfilment(order_id, product, location_id, picked, at)
        at += run.uniform(30.0, 300.0)
        if run.random() < 0.5:
            if qty > picked:
                self._order_cancel(order_id, product, None, at, qty - picked)
            for product, _ in lines[1:]:
                self._order_cancel(order_id, product, location_id, at)
        else:
            self._whole_order_cancel(order_id, at)
        return first

    def hold(self, t: float) -> None:
        """A shopper's checkout or pick-up hold at a store (published by the API as a `reservation`).

        Some are released before they lapse: the shopper left, or paid for it another way.
        """
        run = self.run
        product = run.catalog.draw_in_store(run.rng)
        store = run.pick(run.catalog.stores)
        reservation_id = run.new_id("R")
        hold_s = run.pick((300.0, 900.0, 1800.0))
        fields = {"reservation_id": reservation_id, "sku": product.sku, "location_id": store,
                  "qty": 1 + int(run.random() * 2), "hold_s": hold_s}  # fmt: skip
        self._emit(product, "reservation", t, fields)
        if run.random() < 0.3:
            self._order_cancel(reservation_id, product, store, t + run.uniform(10.0, hold_s))

    def apply(self, effects: tuple[Effect, ...]) -> None:
        """Update tracked on-hand once an event is published; reorder what ran low."""
        on_hand = self.run.on_hand
        for effect in effects:
            sku, location_id, delta, _, kind = effect
            key = (sku, location_id)
            level = max(0, on_hand.get(key, 0) + delta)
            on_hand[key] = level
            if kind == COUNT:
                continue
            self.run.recent_moves.append(effect)
            if kind == RESTOCK_ARRIVAL:
                self._pending_restock.discard(key)
            elif delta < 0 and key not in self._pending_restock:
                reorder_point = _STORE_REORDER_POINT if location_id in self._stores else _WAREHOUSE_REORDER_POINT
                if level < reorder_point:
                    self._pending_restock.add(key)
                    self._restock(self.run.catalog.by_sku[sku], location_id, self.run.clock)

    # --- event kinds ----------------------------------------------------------

    def _emit(
        self, product: Product, event_type: str, ts: float, fields: dict[str, Any], effects: tuple[Effect, ...] = ()
    ) -> None:
        self.run.emit(Topic.INVENTORY, product.key, event_type, ts, fields, effects=effects)

    def _receipt(self, product: Product, location_id: str, qty: int, ts: float, kind: int = MOVEMENT) -> None:
        fields = {"sku": product.sku, "location_id": location_id, "qty": qty}
        self._emit(product, "receipt", ts, fields, ((product.sku, location_id, qty, ts, kind),))

    def _delivery(self, t: float) -> None:
        run = self.run
        product = run.catalog.draw(run.rng)
        self._receipt(product, run.pick(run.catalog.warehouses), 12 * (1 + int(run.random() * 20)), t)

    def _adjustment(self, t: float) -> None:
        run = self.run
        location_id = run.pick(run.catalog.locations)
        product = self._stocked_product(location_id)
        reason = run.pick(_ADJUSTMENT_REASONS)
        on_hand = run.on_hand.get((product.sku, location_id), 0)
        if reason in ("damage", "shrink") and on_hand < 1:
            reason = "found"
        if reason == "found":
            qty = 1 + int(run.random() * 2)
        elif reason == "correction":
            qty = 1 + int(run.random() * 5)
            if on_hand >= qty and run.random() < 0.5:
                qty = -qty
        else:
            qty = -min(on_hand, 1 + int(run.random() * 3))
        fields = {"sku": product.sku, "location_id": location_id, "qty": qty, "reason": reason}
        self._emit(product, "adjustment", t, fields, ((product.sku, location_id, qty, t, MOVEMENT),))

    def _transfer(self, t: float) -> None:
        run = self.run
        product = run.catalog.draw_in_store(run.rng)
        store = run.pick(run.catalog.stores)
        source = run.pick(run.catalog.warehouses)
        if run.random() < 0.2:
            source = run.pick(run.catalog.stores)  # rebalancing between stores
        qty = 2 + int(run.random() * 20)
        if source != store and run.on_hand.get((product.sku, source), 0) >= qty:
            self._move(product, source, store, qty, t, MOVEMENT)

    def _move(self, product: Product, source: str, destination: str, qty: int, t: float, kind: int) -> None:
        """A transfer: `transfer_out` at `source` now, `transfer_in` at `destination` after transit."""
        run = self.run
        transfer_id = run.new_id("X")
        sku = product.sku
        fields = {"sku": sku, "location_id": source, "qty": qty, "transfer_id": transfer_id}
        fields["peer_location_id"] = destination
        self._emit(product, "transfer_out", t, fields, ((sku, source, -qty, t, MOVEMENT),))
        arrival = t + run.uniform(120.0, 1800.0)
        fields = {"sku": sku, "location_id": destination, "qty": qty, "transfer_id": transfer_id}
        fields["peer_location_id"] = source
        self._emit(product, "transfer_in", arrival, fields, ((sku, destination, qty, arrival, kind),))

    def _count(self, t: float) -> None:
        run = self.run
        if run.recent_moves and run.random() < self.late_count_rate:
            # Late: dated before a movement already published here, published now.
            sku, location_id, delta, moved_at, _ = run.pick(run.recent_moves)
            on_hand = max(0, run.on_hand.get((sku, location_id), 0) - delta)
            fields = {"sku": sku, "location_id": location_id, "on_hand": on_hand}
            count_ts = moved_at - run.uniform(1.0, 300.0)
            run.emit(Topic.INVENTORY, sku.encode(), "count", count_ts, fields, publish_at=t)
            return
        location_id = run.pick(run.catalog.locations)
        product = self._stocked_product(location_id)
        on_hand = run.on_hand.get((product.sku, location_id), 0)
        found = 0
        if run.random() < 0.2:
            found = max(-on_hand, run.pick((-3, -2, -1, -1, 1, 1, 2)))  # the shelf disagrees with the books
        fields = {"sku": product.sku, "location_id": location_id, "on_hand": on_hand + found}
        self._emit(product, "count", t, fields, ((product.sku, location_id, found, t, COUNT),))

    def _fulfilment(self, order_id: str, product: Product, location_id: str, qty: int, ts: float) -> None:
        fields = {"sku": product.sku, "location_id": location_id, "order_id": order_id, "qty": qty}
        self._emit(product, "fulfilment", ts, fields, ((product.sku, location_id, -qty, ts, MOVEMENT),))

    def _order_cancel(
        self, order_id: str, product: Product, location_id: str | None, ts: float, qty: int | None = None
    ) -> None:
        """A line cancel (keyed by `order_id`): all that remains of it, or `qty`; at `location_id` or the order's."""
        fields: dict[str, Any] = {"order_id": order_id, "sku": product.sku}
        if location_id is not None:
            fields["location_id"] = location_id
        if qty is not None:
            fields["qty"] = qty
        self.run.emit(Topic.INVENTORY, order_id.encode(), "order_cancel", ts, fields)

    def _whole_order_cancel(self, order_id: str, ts: float) -> None:
        self.run.emit(Topic.INVENTORY, order_id.encode(), "order_cancel", ts, {"order_id": order_id})

    def _restock(self, product: Product, location_id: str, t: float) -> None:
        run = self.run
        if location_id in self._stores:
            qty = 10 + int(40 / (product.rank + 1) ** 0.5) + int(run.random() * 10)
            for warehouse in run.catalog.warehouses:
                if run.on_hand.get((product.sku, warehouse), 0) >= qty + _WAREHOUSE_REORDER_POINT:
                    self._move(product, warehouse, location_id, qty, t + run.uniform(30.0, 600.0), RESTOCK_ARRIVAL)
                    return
        else:
            qty = 100 + int(run.random() * 300)
        # Direct delivery from the vendor.
        self._receipt(product, location_id, qty, t + run.uniform(300.0, 3600.0), RESTOCK_ARRIVAL)

    def _stocked_product(self, location_id: str) -> Product:
        catalog = self.run.catalog
        if location_id in self._stores:
            return catalog.draw_in_store(self.run.rng)
        return catalog.draw(self.run.rng)
