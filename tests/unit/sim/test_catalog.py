"""The simulated assortment: deterministic, long-tailed, with every category stocked."""

from __future__ import annotations

import random
from collections import Counter

from sim.catalog import Catalog
from sim.shoppers import make_shoppers


def test_catalog_is_the_same_for_the_same_seed() -> None:
    assert Catalog(seed=3, n_skus=200).products == Catalog(seed=3, n_skus=200).products


def test_catalog_differs_between_seeds() -> None:
    first, second = Catalog(seed=3, n_skus=200), Catalog(seed=4, n_skus=200)
    assert [p.rank for p in first.products] != [p.rank for p in second.products]


def test_catalog_names_skus_stores_and_warehouses_in_order() -> None:
    catalog = Catalog(seed=1, n_skus=12, n_stores=2, n_warehouses=3)
    assert [p.sku for p in catalog.products][:3] == ["SKU-00001", "SKU-00002", "SKU-00003"]
    assert catalog.stores == ["STORE-01", "STORE-02"]
    assert catalog.warehouses == ["WH-01", "WH-02", "WH-03"]
    assert catalog.locations == ["WH-01", "WH-02", "WH-03", "STORE-01", "STORE-02"]


def test_every_category_has_a_sku_and_prices_are_shelf_prices() -> None:
    catalog = Catalog(seed=1, n_skus=100)
    assert set(catalog.categories) == {p.category for p in catalog.products}
    assert all(p.price > 0 and round(p.price, 2) == p.price for p in catalog.products)
    assert sorted(p.rank for p in catalog.products) == list(range(100))


def test_popularity_is_long_tailed() -> None:
    catalog = Catalog(seed=1, n_skus=1000)
    rng = random.Random(5)
    draws = Counter(catalog.draw(rng).rank for _ in range(20_000))
    top_decile = sum(n for rank, n in draws.items() if rank < 100)
    assert draws[0] == max(draws.values())
    assert top_decile > 0.5 * 20_000  # Zipf with s=1 over 1,000 SKUs puts ~2/3 of demand in the top 10 %


def test_category_draws_stay_in_the_category() -> None:
    catalog = Catalog(seed=1, n_skus=500)
    rng = random.Random(5)
    assert {catalog.draw(rng, "books").category for _ in range(200)} == {"books"}


def test_store_draws_only_give_skus_the_stores_carry() -> None:
    catalog = Catalog(seed=1, n_skus=500, store_assortment=50)
    rng = random.Random(5)
    drawn = [catalog.draw_in_store(rng, category) for category in catalog.categories for _ in range(50)]
    assert all(catalog.in_stores(p) and p.rank < 50 for p in drawn)


def test_shoppers_prefer_one_or_two_categories_and_hold_a_card_token() -> None:
    catalog = Catalog(seed=1, n_skus=300)
    shoppers = make_shoppers(1, 500, catalog)
    assert shoppers == make_shoppers(1, 500, catalog)
    assert {len(s.categories) for s in shoppers} == {1, 2}
    assert all(s.card_token.startswith("tok_") and len(s.card_token) == 20 for s in shoppers)
    assert len({s.card_token for s in shoppers}) == 500
