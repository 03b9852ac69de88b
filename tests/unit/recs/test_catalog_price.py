"""`CatalogItem` learns prices from `price_change` as well as `product_upsert`, newest by event time."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from events.models import PriceChange, ProductUpsert
from operators.recs.catalog import CATALOG_EVENTS, CatalogItem
from operators.recs.interactions import Interaction, InteractionKind

T0 = datetime(2026, 11, 22, tzinfo=UTC)
VIEW = Interaction("e1", 0.0, "u:U-1", "s:S-1", "SKU-1", InteractionKind.VIEW, "web")


def upsert(minute: int, price: float = 20.0, category: str = "toys", active: bool = True) -> ProductUpsert:
    return ProductUpsert(event_id=f"u{minute}", ts=T0 + timedelta(minutes=minute), schema_version=1, sku="SKU-1",
                         name="Kite", category=category, price=price, active=active)  # fmt: skip


def price_change(minute: int, price: float) -> PriceChange:
    ts = T0 + timedelta(minutes=minute)
    return PriceChange(event_id=f"c{minute}", ts=ts, schema_version=1, sku="SKU-1", price=price, currency="USD")


def test_a_price_change_sets_the_price_and_nothing_else() -> None:
    item = CatalogItem("SKU-1")
    item.apply(upsert(0, price=20.0))

    item.apply(price_change(10, 14.99))

    assert (item.price, item.category, item.active) == (14.99, "toys", True)
    assert item.updated_at == upsert(0).ts.timestamp()  # the product's facts are still those of the upsert
    assert item.price_at == price_change(10, 0).ts.timestamp()


def test_an_older_price_change_arriving_late_does_not_roll_the_price_back() -> None:
    item = CatalogItem("SKU-1")
    item.apply(price_change(10, 14.99))

    item.apply(price_change(5, 17.99))

    assert item.price == 14.99


def test_an_upsert_older_than_the_price_change_keeps_the_newer_price_but_gives_its_category() -> None:
    item = CatalogItem("SKU-1")
    item.apply(upsert(0, category="toys"))
    item.apply(price_change(10, 14.99))

    item.apply(upsert(5, price=20.0, category="games"))

    assert (item.price, item.category) == (14.99, "games")


def test_an_upsert_newer_than_the_price_change_sets_the_price_again() -> None:
    item = CatalogItem("SKU-1")
    item.apply(price_change(10, 14.99))

    item.apply(upsert(20, price=22.0))

    assert item.price == 22.0


def test_a_price_change_for_an_unknown_sku_is_kept_and_the_sku_stays_unknown() -> None:
    item = CatalogItem("SKU-1")

    item.apply(price_change(10, 9.99))

    assert item.price == 9.99
    assert (item.category, item.active, item.updated_at) == (None, True, float("-inf"))
    assert item.enrich(VIEW) == VIEW  # unknown: its interactions pass through unstamped


def test_the_first_upsert_after_a_kept_price_change_keeps_the_newer_price() -> None:
    item = CatalogItem("SKU-1")
    item.apply(price_change(10, 9.99))

    item.apply(upsert(0, price=20.0, category="toys"))

    assert (item.price, item.category) == (9.99, "toys")


def test_a_price_change_does_not_bring_back_a_withdrawn_product() -> None:
    item = CatalogItem("SKU-1")
    item.apply(upsert(0, active=False))

    item.apply(price_change(10, 5.0))

    assert not item.active
    assert item.enrich(VIEW) is None


def test_catalog_events_are_what_apply_takes() -> None:
    assert {ProductUpsert, PriceChange} == CATALOG_EVENTS


def test_a_snapshot_from_before_price_changes_loads_with_the_upserts_time_as_the_prices() -> None:
    item = CatalogItem("SKU-1")
    item.apply(upsert(10, price=20.0))
    old = pickle.loads(pickle.dumps(item))
    del old.__dict__["price_at"]  # the state an older version pickled
    restored = pickle.loads(pickle.dumps(old))

    restored.apply(price_change(5, 9.0))  # older than the upsert that set the price

    assert restored.price == 20.0
    assert restored.price_at == upsert(10).ts.timestamp()
