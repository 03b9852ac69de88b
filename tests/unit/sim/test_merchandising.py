"""Simulated price changes: mostly markdowns of slow sellers, a few rises of best sellers, shelf-priced and floored."""

from __future__ import annotations

import orjson

from events.models import PriceChange
from events.registry import REGISTRY
from sim.catalog import Catalog
from sim.merchandising import Merchandising
from sim.run import Run
from tests.unit.sim.conftest import Stream

START = 1795305600.0


def changes(n: int, n_skus: int = 200) -> tuple[Catalog, list[dict[str, object]]]:
    catalog = Catalog(seed=4, n_skus=n_skus, n_stores=2, n_warehouses=1)
    run = Run(4, START, catalog, [], "EUR")
    desk = Merchandising(run)
    for i in range(n):
        desk.price_change(START + i)
    return catalog, [orjson.loads(record.value) for _, _, record, _ in sorted(run.schedule)]


def test_price_changes_are_mostly_markdowns_of_slow_sellers_and_some_rises_of_best_sellers() -> None:
    catalog, events = changes(1000)
    last: dict[str, float] = {}
    markdowns = rises = clearances_ended = 0
    for event in events:
        product = catalog.by_sku[str(event["sku"])]
        before = last.get(product.sku, product.price)
        price = float(event["price"])  # type: ignore[arg-type]
        if price < before:
            markdowns += 1
            assert product.rank >= len(catalog.products) // 2  # the slow half
        elif product.rank < len(catalog.products) // 10:
            rises += 1
        else:
            assert price == product.price  # a slow seller's clearance ended: back to list price
            clearances_ended += 1
        last[product.sku] = price
    assert 700 <= markdowns + clearances_ended <= 900 and markdowns >= 600
    assert 100 <= rises <= 300


def test_markdowns_never_go_below_30_percent_of_list_price_and_rises_end_in_99() -> None:
    catalog, events = changes(3000, n_skus=20)  # few SKUs: each is marked down again and again
    for event in events:
        product = catalog.by_sku[str(event["sku"])]
        price = float(event["price"])  # type: ignore[arg-type]
        assert price >= round(0.3 * product.price, 2)
        if product.rank < 2:
            assert round(price % 1, 2) == 0.99


def test_price_changes_are_valid_catalog_events_keyed_by_sku_in_the_runs_currency(stream: Stream) -> None:
    records = [(r, e) for r, e in stream.valid if e["type"] == "price_change"]

    assert len(records) >= 5
    assert all(r.topic is REGISTRY.by_name["price_change"].topic and r.key == e["sku"].encode() for r, e in records)
    assert all(e["currency"] == "USD" and set(e) == {"event_id", "type", "ts", "schema_version", "sku", "price",
               "currency"} for _, e in records)  # fmt: skip
    assert PriceChange.__struct_config__.tag == "price_change"
