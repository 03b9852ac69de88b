"""Steps of the recommendation flow: the catalog forgets the oldest-known SKU first; shoppers drop redeliveries."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from events.models import PriceChange, ProductUpsert
from flows.recommend_stages import CatalogLogic, ShopperLogic, Stage
from omnistream.settings import Settings
from operators.keyed_shards import ShardBatch
from operators.recs.interactions import Interaction, InteractionKind
from state import keys
from state.doc_writer import FencedDoc

TS = datetime(2026, 1, 1, tzinfo=UTC)
CAPACITY = 100  # the smallest the settings allow


def upsert(sku: str, category: str = "toys") -> ProductUpsert:
    return ProductUpsert(event_id=f"p-{sku}", ts=TS, schema_version=1, sku=sku, name=sku, category=category, price=1.0)


def view(sku: str, event_id: str = "", ts: float = 0.0) -> Interaction:
    return Interaction(event_id or f"v-{sku}", TS.timestamp() + ts, "s:S-1", "s:S-1", sku, InteractionKind.VIEW, "web")


def stamped(logic: CatalogLogic, resume: bytes | None, batch: list[Any]) -> tuple[dict[str, Any], bytes]:
    """What the step made of `batch`: each view's category, each written item's category; then its snapshot."""
    step = logic(resume)
    out, _ = step.on_batch([batch])
    views = {i.sku: i.category for item in out if type(item) is ShardBatch for i in item.items}
    docs = {doc.key: orjson.loads(doc.doc)["category"] for doc in out if type(doc) is FencedDoc}
    return views | docs, step.snapshot()


def test_catalog_step_past_its_capacity_forgets_the_oldest_known_sku_first() -> None:
    logic = CatalogLogic(Settings(rec_catalog_capacity=CAPACITY, rec_shards=1))
    _, snapshot = stamped(logic, None, [upsert(f"SKU-{i:03d}") for i in range(CAPACITY)])
    # An update of SKU-000 does not make it newer-known: SKU-100 and SKU-101 push out SKU-000 and SKU-001.
    later = [upsert("SKU-000", "games"), upsert("SKU-100"), upsert("SKU-101")]
    seen, _ = stamped(logic, snapshot, [*later, *(view(f"SKU-{i:03d}") for i in (0, 1, 2, 101))])
    assert seen == {
        "SKU-000": None,
        "SKU-001": None,
        "SKU-002": "toys",
        "SKU-101": "toys",
        keys.rec_item("SKU-000"): "games",  # forgotten within the batch that changed it: still written
        keys.rec_item("SKU-100"): "toys",
        keys.rec_item("SKU-101"): "toys",
    }


def test_catalog_step_resumes_from_a_snapshot_of_a_plain_dict_and_still_evicts_in_order() -> None:
    logic = CatalogLogic(Settings(rec_catalog_capacity=CAPACITY, rec_shards=1))
    _, snapshot = stamped(logic, None, [upsert(f"SKU-{i:03d}") for i in range(CAPACITY)])
    earlier = pickle.dumps(dict(pickle.loads(snapshot)), protocol=pickle.HIGHEST_PROTOCOL)  # as earlier releases
    seen, _ = stamped(logic, earlier, [upsert("SKU-100"), view("SKU-000"), view("SKU-001")])
    assert seen == {"SKU-000": None, "SKU-001": "toys", keys.rec_item("SKU-100"): "toys"}


def test_a_price_change_rewrites_the_item_document_above_the_upserts_version_as_of_its_own_time() -> None:
    step = CatalogLogic(Settings(rec_shards=1))(None)
    markdown = PriceChange(event_id="c1", ts=TS + timedelta(minutes=1), schema_version=1, sku="SKU-1", price=0.5,
                           currency="USD")  # fmt: skip
    (upserted,), _ = step.on_batch([[upsert("SKU-1")]])
    (marked_down,), _ = step.on_batch([[markdown]])
    assert type(upserted) is FencedDoc and type(marked_down) is FencedDoc
    assert marked_down.version > upserted.version  # the version fence lets it over the upsert's document
    assert marked_down.as_of == TS.timestamp() + 60
    assert orjson.loads(marked_down.doc) == {"sku": "SKU-1", "active": True, "category": "toys", "price": 0.5}


def shopper_outputs(batches: list[list[Interaction]]) -> list[list[Any]]:
    """The shoppers step's output per batch, resumed from its own snapshot between batches."""
    logic, resume, outputs = ShopperLogic(Settings(rec_shards=1)), None, []
    for batch in batches:
        step = logic(resume)
        outputs.append(step.on_batch([batch])[0])
        resume = step.snapshot()
    return outputs


def test_shoppers_step_drops_redeliveries_within_a_batch_and_across_snapshots() -> None:
    first, second = [view("SKU-1", "e1"), view("SKU-2", "e2", 5.0)], [view("SKU-3", "e3", 10.0)]
    redelivered = [[*first, first[1], first[0]], [first[1], *second, second[0]]]
    assert shopper_outputs(redelivered) == shopper_outputs([first, second])


def test_shoppers_step_learns_a_double_click_twice() -> None:
    clicks = [view("SKU-1", "e1"), view("SKU-2", "e2", 5.0), view("SKU-2", "e3", 5.0)]  # two event ids
    (out,) = shopper_outputs([clicks])
    covisits = [(c.item, c.other) for routed in out if type(routed) is ShardBatch and routed.stage is Stage.NEIGHBOURS
                for c in routed.items]  # fmt: skip
    assert covisits == [("SKU-2", "SKU-1"), ("SKU-1", "SKU-2")] * 2
    (trending,) = next(routed.items for routed in out if type(routed) is ShardBatch and routed.stage is Stage.TRENDING)
    assert trending["global", "SKU-2"][0] == 2.0
