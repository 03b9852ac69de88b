"""Registered shoppers with latent tastes, shared by the web shop and the stores.

Each shopper prefers one or two categories and draws most views, carts and
baskets from them, so that co-visitation and per-user affinity carry real
signal for the recommender. The same shopper also shops in stores under the
loyalty id (`customer_id` = `user_id`) and pays with the same card token, which
links the channels the way an omnichannel retailer sees them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.catalog import Catalog

COUNTRIES = ("US", "US", "US", "US", "CA", "GB", "DE", "FR")  # mostly one home market
CARD_BINS = ("411111", "424242", "510510", "555555", "378282", "601111")


@dataclass(frozen=True, slots=True)
class Shopper:
    """One registered customer: id, tastes, home market, device, card and nearest sites."""

    user_id: str
    categories: tuple[str, ...]
    country: str
    device_id: str
    channel: str
    card_token: str
    card_bin: str
    home_store: str
    warehouse: str


def card_token(rng: random.Random) -> str:
    """A payment token as the payment gateway issues it (`tok_` + 16 hex)."""
    return f"tok_{rng.getrandbits(64):016x}"


def make_shoppers(seed: int, n_users: int, catalog: Catalog) -> list[Shopper]:
    """`n_users` shoppers (`U-000001` ...), the same for the same seed and catalog.

    >>> catalog = Catalog(seed=7, n_skus=50, n_stores=2, n_warehouses=1)
    >>> shoppers = make_shoppers(7, 3, catalog)
    >>> [s.user_id for s in shoppers]
    ['U-000001', 'U-000002', 'U-000003']
    >>> all(1 <= len(s.categories) <= 2 for s in shoppers)
    True
    """
    rng = random.Random(f"shoppers-{seed}")
    shoppers = []
    for i in range(1, n_users + 1):
        n_tastes = 1 if rng.random() < 0.4 or len(catalog.categories) < 2 else 2
        shoppers.append(
            Shopper(
                user_id=f"U-{i:06d}",
                categories=tuple(rng.sample(catalog.categories, n_tastes)),
                country=rng.choice(COUNTRIES),
                device_id=f"D-{rng.getrandbits(40):010x}",
                channel="app" if rng.random() < 0.45 else "web",
                card_token=card_token(rng),
                card_bin=rng.choice(CARD_BINS),
                home_store=rng.choice(catalog.stores),
                warehouse=rng.choice(catalog.warehouses),
            )
        )
    return shoppers
