"""What the recommender needs to know about a SKU: its category, whether it is for sale, its price."""

from __future__ import annotations

from typing import Any

from events.models import PriceChange, ProductUpsert
from operators.recs.interactions import Interaction

CATALOG_EVENTS: frozenset[type] = frozenset({ProductUpsert, PriceChange})
"""The `omni.catalog` events `CatalogItem.apply` takes: route each to its SKU's item."""


class CatalogItem:
    """The catalog facts of one SKU, newest by event time wins.

    The recommend flow keys interactions by SKU through this state: it stamps
    each with the SKU's category (trending per category and profile affinities
    need it) and drops interactions with withdrawn products (`active=False`),
    which must stop being learned and recommended. A SKU never upserted is
    unknown, not withdrawn: its interactions pass through without a category,
    because the catalog topic may lag the clickstream.

    The price has its own event time: a `product_upsert` carries the full product,
    price included, and a `price_change` only the price. A price change for a SKU
    never upserted is kept (the catalog may lag its price feed); the SKU stays
    unknown for everything else until its upsert arrives, and an upsert older than
    the price change does not roll the price back.

    Parameters
    ----------
    sku
        The SKU this state describes.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> def upsert(ts, active=True, category="toys", price=9.5):
    ...     return ProductUpsert(event_id=f"p{ts}", ts=datetime.fromtimestamp(ts, UTC), schema_version=1,
    ...                          sku="SKU-1", name="Kite", category=category, price=price, active=active)
    >>> def price_change(ts, price):
    ...     return PriceChange(event_id=f"c{ts}", ts=datetime.fromtimestamp(ts, UTC), schema_version=1,
    ...                        sku="SKU-1", price=price, currency="USD")
    >>> item = CatalogItem("SKU-1")
    >>> item.apply(upsert(100))
    >>> item.apply(upsert(50, category="books"))  # older than what is applied: ignored
    >>> item.category, item.active, item.price
    ('toys', True, 9.5)
    >>> item.apply(price_change(150, 7.99))  # a markdown
    >>> item.apply(upsert(120, category="games", price=9.5))  # newer category, older price
    >>> item.category, item.price
    ('games', 7.99)
    >>> item.apply(upsert(200, active=False))
    >>> item.active
    False
    """

    def __init__(self, sku: str) -> None:
        self.sku = sku
        self.category: str | None = None
        self.active = True
        self.price: float | None = None
        self.updated_at = float("-inf")
        """Event time of the newest `product_upsert` applied."""
        self.price_at = float("-inf")
        """Event time of the price held: of the newest `product_upsert` or `price_change` applied."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots from before price changes: their price came with the upsert applied last.
        state.setdefault("price_at", state.get("updated_at", float("-inf")))
        self.__dict__.update(state)

    def apply(self, event: ProductUpsert | PriceChange) -> None:
        """Take the facts of `event` unless newer ones (by event time) are already applied."""
        ts = event.ts.timestamp()
        if ts >= self.price_at:
            self.price_at = ts
            self.price = event.price
        if isinstance(event, PriceChange) or ts < self.updated_at:
            return  # a late, older upsert must not roll the catalog back
        self.updated_at = ts
        self.category = event.category
        self.active = event.active

    @property
    def as_of(self) -> float:
        """Event time of the newest fact applied, upsert or price change."""
        return self.updated_at if self.updated_at >= self.price_at else self.price_at  # max(), without its call

    def get(self) -> dict[str, Any]:
        """The item document: what the catalog says of this SKU, live price included.

        `category` is None until the SKU's first upsert (a price change may lead
        it); `price` is None until a price is known.

        >>> from datetime import datetime, UTC
        >>> item = CatalogItem("SKU-1")
        >>> item.apply(PriceChange(event_id="c1", ts=datetime.fromtimestamp(60, UTC), schema_version=1,
        ...                        sku="SKU-1", price=4.5, currency="USD"))
        >>> item.get(), item.as_of
        ({'sku': 'SKU-1', 'active': True, 'category': None, 'price': 4.5}, 60.0)
        """
        return {"sku": self.sku, "active": self.active, "category": self.category, "price": self.price}

    def enrich(self, interaction: Interaction) -> Interaction | None:
        """`interaction` with this SKU's category; None when the product is withdrawn."""
        if not self.active:
            return None
        if self.category is None or interaction.category == self.category:
            return interaction
        return interaction._replace(category=self.category)
