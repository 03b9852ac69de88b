"""The recommendation flow's catalog step: bounded, it forgets the oldest-known SKU first, across snapshots."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import orjson

from events.models import ProductUpsert
from flows.recommend import CatalogLogic
from omnistream.settings import Settings
from operators.recs.interactions import Interaction, InteractionKind
from state import keys
from state.doc_writer import FencedDoc

TS = datetime(2026, 1, 1, tzinfo=UTC)
CAPACITY = 100  # the smallest the settings allow


def upsert(sku: str, category: str = "toys") -> ProductUpsert:
    return ProductUpsert(event_id=f"p-{sku}", ts=TS, schema_version=1, sku=sku, name=sku, category=category, price=1.0)


def view(sku: str) -> Interaction:
    return Interaction(f"v-{sku}", TS.timestamp(), "s:S-1", "s:S-1", sku, InteractionKind.VIEW, "web")


def stamped(logic: CatalogLogic, resume: bytes | None, batch: list[Any]) -> tuple[dict[str, Any], bytes]:
    """What the step made of `batch`: each view's category, each written item's category; then its snapshot."""
    step = logic(resume)
    out, _ = step.on_batch([batch])
    views = {i.sku: i.category for item in out if type(item) is tuple for i in item[1]}
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
