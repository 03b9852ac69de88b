"""What the recommender needs to know about a SKU: its category and whether it is for sale."""

from __future__ import annotations

from events.models import ProductUpsert
from operators.recs.interactions import Interaction


class CatalogItem:
    """The catalog facts of one SKU, newest `product_upsert` by event time wins.

    The recommend flow keys interactions by SKU through this state: it stamps
    each with the SKU's category (trending per category and profile affinities
    need it) and drops interactions with withdrawn products (`active=False`),
    which must stop being learned and recommended. A SKU never upserted is
    unknown, not withdrawn: its interactions pass through without a category,
    because the catalog topic may lag the clickstream.

    Parameters
    ----------
    sku
        The SKU this state describes.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> def upsert(ts, active=True, category="toys"):
    ...     return ProductUpsert(event_id=f"p{ts}", ts=datetime.fromtimestamp(ts, UTC), schema_version=1,
    ...                          sku="SKU-1", name="Kite", category=category, price=9.5, active=active)
    >>> item = CatalogItem("SKU-1")
    >>> item.apply(upsert(100))
    >>> item.apply(upsert(50, category="books"))  # older than what is applied: ignored
    >>> item.category, item.active, item.price
    ('toys', True, 9.5)
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

    def apply(self, upsert: ProductUpsert) -> None:
        """Take the facts of `upsert` unless a newer one (by event time) is already applied."""
        ts = upsert.ts.timestamp()
        if ts < self.updated_at:
            return  # a late, older upsert must not roll the catalog back
        self.updated_at = ts
        self.category = upsert.category
        self.active = upsert.active
        self.price = upsert.price

    def enrich(self, interaction: Interaction) -> Interaction | None:
        """`interaction` with this SKU's category; None when the product is withdrawn."""
        if not self.active:
            return None
        if self.category is None or interaction.category == self.category:
            return interaction
        return interaction._replace(category=self.category)
