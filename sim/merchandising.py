"""Catalog traffic: the assortment's `product_upsert`s, then the merchandisers' `price_change`s.

Retail prices move mostly down: slow sellers (the less popular half) get marked
down, again if they still do not sell, while a few best sellers (the top tenth)
go up a little (a supplier's
increase passed on). Prices end in .99 where the cut allows, and never fall
below 30% of the list price (a clearance floor); a line marked down to the floor
goes back to its list price at its next change (the clearance ended).
"""

from __future__ import annotations

import math
from typing import Any

from events.topics import Topic
from sim.catalog import Product
from sim.run import Run

MARKDOWN_SHARE = 0.8
"""Share of price changes that are markdowns; the rest are rises."""
_MARKDOWN = (0.6, 0.9)
_RISE = (1.03, 1.1)
_FLOOR = 0.3


class Merchandising:
    """Publishes `omni.catalog` events and keeps each SKU's current price.

    Parameters
    ----------
    run
        The stream's shared state; its `currency` prices every change.

    Examples
    --------
    >>> import orjson
    >>> from sim.catalog import Catalog
    >>> run = Run(3, 1795305600.0, Catalog(seed=3, n_skus=20, n_stores=1, n_warehouses=1), [], "USD")
    >>> desk = Merchandising(run)
    >>> for t in range(10):
    ...     desk.price_change(1795305600.0 + t)
    >>> changes = [orjson.loads(record.value) for _, _, record, _ in sorted(run.schedule)]
    >>> sorted({c["type"] for c in changes}), all(c["currency"] == "USD" for c in changes)
    (['price_change'], True)
    >>> all(c["price"] >= round(0.3 * run.catalog.by_sku[c["sku"]].price, 2) for c in changes)
    True
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.prices: dict[str, float] = {}
        """The current price of each SKU whose price has changed (the others sell at list price)."""
        by_rank = sorted(run.catalog.products, key=lambda p: p.rank)
        self._slow_sellers = by_rank[len(by_rank) // 2 :]  # the tail of the popularity curve
        self._best_sellers = by_rank[: max(1, len(by_rank) // 10)]

    def publish_catalog(self, ts: float) -> None:
        """One `product_upsert` per SKU at `ts`: the assortment, before anything sells."""
        emit = self.run.emit
        for product in self.run.catalog.products:
            fields: dict[str, Any] = {"sku": product.sku, "name": product.name, "category": product.category}
            fields |= {"brand": product.brand, "price": product.price, "attributes": product.attributes}
            emit(Topic.CATALOG, product.key, "product_upsert", ts, fields)

    def price_change(self, t: float) -> None:
        """One `price_change` at `t`: a markdown of a slow seller, or a rise of a best seller."""
        run = self.run
        # One draw picks both the kind of change and the SKU (two draws per change in all): the
        # rest of the stream stays what it was before price changes had their own event type.
        roll = run.random()
        if roll < MARKDOWN_SHARE:
            product = self._slow_sellers[int(roll / MARKDOWN_SHARE * len(self._slow_sellers))]
            price = self._markdown(product, run.uniform(*_MARKDOWN))
        else:
            head = self._best_sellers
            product = head[int((roll - MARKDOWN_SHARE) / (1.0 - MARKDOWN_SHARE) * len(head))]
            price = _shelf_price_up(self.prices.get(product.sku, product.price) * run.uniform(*_RISE))
        self.prices[product.sku] = price
        fields = {"sku": product.sku, "price": price, "currency": run.currency}
        run.emit(Topic.CATALOG, product.key, "price_change", t, fields)

    def _markdown(self, product: Product, factor: float) -> float:
        current = self.prices.get(product.sku, product.price)
        floor = round(product.price * _FLOOR, 2)
        if current <= floor:
            return product.price  # cleared at the floor long enough: the markdown ends, back to list price
        price = round(round(current * factor) - 0.01, 2)
        if price >= current:  # a cheap line, where .99 rounding would not cut: a cent-exact cut
            price = round(current * factor, 2)
        return max(floor, price)


def _shelf_price_up(price: float) -> float:
    """`price` rounded up to the next .99 (a rise never ends in odd cents)."""
    return round(math.ceil(price + 0.01) - 0.01, 2)
