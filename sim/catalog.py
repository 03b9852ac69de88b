"""The simulated retailer's assortment and sites: SKUs, stores and warehouses.

Demand in retail is long-tailed: a few SKUs sell most of the units. Popularity
follows a Zipf-like law (the SKU of popularity rank `r` weighs `1 / r**zipf_s`),
so hot keys, skewed partitions and top-N lists look like production. Stores
stock only the `store_assortment` most popular SKUs; warehouses stock all.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

CATEGORIES: dict[str, float] = {
    # category: typical unit price, so baskets and card spend have a realistic shape
    "grocery": 4.0,
    "dairy": 3.5,
    "beverages": 2.5,
    "snacks": 3.0,
    "household": 8.0,
    "personal-care": 7.0,
    "baby": 15.0,
    "pet": 18.0,
    "electronics": 180.0,
    "phones": 450.0,
    "computers": 750.0,
    "audio": 90.0,
    "toys": 25.0,
    "sports": 40.0,
    "outdoor": 60.0,
    "garden": 30.0,
    "home-decor": 35.0,
    "kitchen": 45.0,
    "furniture": 220.0,
    "womens-apparel": 38.0,
    "mens-apparel": 35.0,
    "shoes": 70.0,
    "beauty": 22.0,
    "books": 14.0,
}
BRANDS = (
    "Acme", "Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Vandelay", "Hooli",
    "Tyrell", "Wonka", "Soylent", "Aperture", "Cyberdyne", "Stark", "Wayne", "Umbrella",
    "Oscorp", "Gringott", "Pied Piper", "Dunder", "Monarch", "Bluth", "Sirius", "Zorg",
)  # fmt: skip
COLOURS = ("black", "white", "red", "blue", "green", "grey", "navy", "beige")
SIZES = ("XS", "S", "M", "L", "XL")
_SIZED = frozenset({"womens-apparel", "mens-apparel", "shoes", "sports"})


@dataclass(frozen=True, slots=True)
class Product:
    """One SKU as `product_upsert` publishes it; `rank` 0 is the best seller."""

    sku: str
    name: str
    category: str
    brand: str
    price: float
    attributes: dict[str, Any]
    rank: int
    key: bytes = field(repr=False)


class Catalog:
    """A deterministic assortment: SKUs with categories, brands, prices and popularity.

    The same `seed` and sizes always give the same catalog, so a benchmark, a test
    and a replay agree on every SKU. Draws take the caller's `random.Random`, so the
    catalog itself holds no random state and can be shared.

    Parameters
    ----------
    seed
        Seed of the assortment (names, categories, prices, popularity order).
    n_skus
        SKUs, named `SKU-00001` upwards.
    n_stores
        Stores, named `STORE-01` upwards.
    n_warehouses
        Warehouses, named `WH-01` upwards.
    zipf_s
        Popularity exponent: higher means a shorter head.
    store_assortment
        How many of the most popular SKUs each store carries (default: 1,000 or all).

    Examples
    --------
    >>> catalog = Catalog(seed=7, n_skus=100, n_stores=3, n_warehouses=1)
    >>> catalog.products[0].sku, catalog.stores, catalog.warehouses
    ('SKU-00001', ['STORE-01', 'STORE-02', 'STORE-03'], ['WH-01'])
    >>> catalog.draw(random.Random(1)).rank < 100
    True
    """

    def __init__(
        self,
        seed: int = 7,
        n_skus: int = 5000,
        n_stores: int = 20,
        n_warehouses: int = 3,
        zipf_s: float = 1.0,
        store_assortment: int | None = None,
    ) -> None:
        if n_skus < 1 or n_stores < 1 or n_warehouses < 1:
            raise ValueError("a catalog needs at least one SKU, one store and one warehouse")
        self.seed = seed
        self.n_skus = n_skus
        self.n_stores = n_stores
        self.n_warehouses = n_warehouses
        self.zipf_s = zipf_s
        self.store_assortment = min(n_skus, store_assortment or 1000)

        rng = random.Random(seed)
        self.stores = [f"STORE-{i:02d}" for i in range(1, n_stores + 1)]
        self.warehouses = [f"WH-{i:02d}" for i in range(1, n_warehouses + 1)]
        self.categories = list(CATEGORIES)[: min(len(CATEGORIES), n_skus)]
        self.products = _make_products(rng, n_skus, self.categories)
        self.by_sku = {p.sku: p for p in self.products}

        self._by_rank = sorted(self.products, key=lambda p: p.rank)
        self._cum = list(accumulate(1.0 / (p.rank + 1) ** zipf_s for p in self._by_rank))
        self._store_total = self._cum[self.store_assortment - 1]
        self._in_category: dict[str, list[Product]] = {c: [] for c in self.categories}
        for product in self._by_rank:
            self._in_category[product.category].append(product)
        self._category_cum = {
            c: list(accumulate(1.0 / (p.rank + 1) ** zipf_s for p in ps)) for c, ps in self._in_category.items()
        }
        # Per category, how many of its (rank-ordered) SKUs the stores carry.
        self._category_in_stores = {
            c: sum(1 for p in ps if p.rank < self.store_assortment) for c, ps in self._in_category.items()
        }

    def draw(self, rng: random.Random, category: str | None = None) -> Product:
        """A SKU drawn by popularity, from `category` when given."""
        if category is None:
            cum = self._cum
            return self._by_rank[bisect_right(cum, rng.random() * cum[-1], 0, len(cum) - 1)]
        cum = self._category_cum[category]
        return self._in_category[category][bisect_right(cum, rng.random() * cum[-1], 0, len(cum) - 1)]

    def draw_in_store(self, rng: random.Random, category: str | None = None) -> Product:
        """A SKU the stores carry, drawn by popularity, from `category` when it has any there."""
        if category is not None:
            n = self._category_in_stores[category]
            if n:
                cum = self._category_cum[category]
                return self._in_category[category][bisect_right(cum, rng.random() * cum[n - 1], 0, n - 1)]
        return self._by_rank[bisect_right(self._cum, rng.random() * self._store_total, 0, self.store_assortment - 1)]

    def popularity_of(self, category: str) -> tuple[list[Product], list[float]]:
        """The SKUs of `category` by rank, with cumulative popularity: for callers drawing in a tight loop."""
        return self._in_category[category], self._category_cum[category]

    def in_stores(self, product: Product) -> bool:
        """Whether the stores carry `product` (only the popular head of the assortment)."""
        return product.rank < self.store_assortment

    @property
    def locations(self) -> list[str]:
        """Every stock location: warehouses first, then stores."""
        return self.warehouses + self.stores


def _make_products(rng: random.Random, n_skus: int, categories: list[str]) -> list[Product]:
    ranks = list(range(n_skus))
    rng.shuffle(ranks)  # popularity is independent of the SKU number
    brands_of = {c: rng.sample(BRANDS, 4) for c in categories}
    products = []
    for i in range(n_skus):
        # Round-robin for the first SKUs so that every category has at least one.
        category = categories[i] if i < len(categories) else rng.choice(categories)
        brand = rng.choice(brands_of[category])
        # Shelf prices end in .99 (or are 0.49 for the cheapest items).
        price = max(0.49, round(round(CATEGORIES[category] * rng.lognormvariate(0.0, 0.45)) - 0.01, 2))
        attributes: dict[str, Any] = {"colour": rng.choice(COLOURS)}
        if category in _SIZED:
            attributes["size"] = rng.choice(SIZES)
        sku = f"SKU-{i + 1:05d}"
        name = f"{brand} {category.replace('-', ' ')} {i + 1}"
        products.append(Product(sku, name, category, brand, price, attributes, ranks[i], sku.encode()))
    return products
