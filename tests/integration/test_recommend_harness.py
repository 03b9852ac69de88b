"""The quality harness measures what shoppers get: its in-process path and the live one give identical answers.

Live: the events go through the real broker, the inventory and recommend flows
write Redis, and the API answers over HTTP. Harness: the same events run through
the recommend dataflow in process (`benchmarks.recs_quality.flow_documents`),
and the same requests are answered from the documents it emitted
(`served_answer`), with stock from the same events' ledgers.

The lists (SKUs, order, reasons) are identical. Scores are equal to the API's
exactly when the harness reads the very documents Redis holds; from its own run
of the flow they agree within a few percent, because the flow's numbers depend
on its batches: the shoppers step adds up a batch's trending hits per SKU at the
batch's newest event time, and a throttled list is decayed to the clock of its
last write. Here one broker batch spans a whole step (half an hour of events),
the harness's batches 16 records. A session-kNN list is the index as of the
shopper's last click of a batch: here the loyalty card's till sales come after
S-NEW's views in the log but before them in time, and whether S-NEW's list
counts them depends on how the live consumer cut the step into batches, which
moves S-NEW's scores by up to a quarter (not its order): hence the wider bound.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from benchmarks.recs_quality import DocumentStore, Sellable, flow_documents, served_answer, stock_of
from events.topics import Topic
from omnistream.settings import Settings
from operators.recs.blend import RecRequest
from operators.recs.experiments import assign_variant, parse_variants
from operators.recs.interactions import actor_key
from serving.app import create_app
from state import keys
from state.connection import connect
from state.doc_writer import FencedDoc, read_doc
from tests.harness.api import issue_key, key_headers
from tests.harness.flows import publish, run_to_end
from tests.integration.test_recommend import (
    CATALOG,
    T0,
    browsing_history,
    product,
    receipt,
    till_sale,
    view,
)

pytestmark = pytest.mark.integration

REQUESTS: list[dict[str, Any]] = [
    {"session_id": "S-NEW", "location_id": "STORE-1"},  # a session with history: profile, neighbours, categories
    {"user_id": "U-7", "sku": "SKU-B", "location_id": "STORE-1", "k": 3},  # a product page, cold shopper
    {"user_id": "U-8", "sku": "SKU-A", "k": 20},  # anywhere
    {"user_id": "LOYAL", "location_id": "STORE-2", "channel": "web"},  # a loyalty card's till and web history
    {"session_id": "S-9", "location_id": "STORE-2", "channel": "store"},  # cold start: trending tiers
    {"sku": "SKU-E", "location_id": "STORE-1"},  # anonymous
]


def history() -> list[list[tuple[Topic, bytes, bytes]]]:
    """Catalog and stock, then what shoppers did, then a loyalty-card shopper's web views: published and run step
    by step, so that every view finds its category and one shopper's till and web events arrive in one order.

    No two SKUs share a history (the browsing sessions view C and D equally often, so three more views of D):
    equal scores would be ordered by the last bits of sums that each path adds up in its own batches.
    """
    opening = [product(sku, category) for sku, category in CATALOG.items()]
    opening += [receipt(sku, location, 1 if sku == "SKU-C" else 20) for sku in CATALOG for location in ("STORE-1",
                "STORE-2", "WH-1")]  # fmt: skip
    shoppers = browsing_history()
    shoppers += [view(f"S-D{n}", "SKU-D", T0 + 1_600 + n) for n in range(3)]
    shoppers += [view("S-NEW", "SKU-A", T0 + 1_800), view("S-NEW", "SKU-B", T0 + 1_810)]
    shoppers += [till_sale("STORE-2", sku, T0 + 1_000 + n, customer_id="LOYAL") for n, sku in enumerate("EEFA")]
    shoppers.append(till_sale("STORE-1", "SKU-C", T0 + 1_500))  # STORE-1's only SKU-C goes
    later = [view(f"LOYAL-s{n}", "SKU-F", T0 + 1_900 + n, user_id="LOYAL") for n in range(2)]
    return [opening, shoppers, later]


def stored_documents(settings: Settings) -> DocumentStore:
    """The recommendation documents Redis holds, as the harness's store."""
    client = connect(settings.redis.url)
    store = DocumentStore([])
    for raw_key in client.scan_iter(match=f"{keys.NAMESPACE}:rec:*"):
        key = raw_key.decode()
        if key != keys.rec_inactive():
            doc = read_doc(client, key)
            if doc is not None:
                store.docs[key] = FencedDoc(key, 1, doc)
    store.inactive = {sku.decode() for sku in client.smembers(keys.rec_inactive())}  # type: ignore[union-attr]
    return store


def answers(settings: Settings, store: DocumentStore, records: list[tuple[Topic, bytes]]) -> list[list[Any]]:
    stock = stock_of(records)
    variants = parse_variants(settings.rec.variants)
    out = []
    for params in REQUESTS:
        request = RecRequest(params.get("user_id"), params.get("session_id"), params.get("sku"),
                             params.get("location_id"), params.get("channel"))  # fmt: skip
        variant = assign_variant(actor_key(request.user_id, request.session_id) or "anonymous", variants,
                                 settings.rec.experiment_salt)  # fmt: skip
        sellable = Sellable(stock, request.location_id, store, set())
        items = served_answer(request, variant, params.get("k", 10), store, sellable)
        out.append([{"sku": i.sku, "score": round(i.score, 6), "reason": i.reason} for i in items])
    return out


def ranked(answer: list[Any]) -> list[tuple[str, str]]:
    return [(item["sku"], item["reason"]) for item in answer]


def test_harness_answers_are_the_api_answers_for_the_same_events(settings: Settings) -> None:
    steps = history()
    for step in steps:
        publish(settings, step)
        run_to_end(settings, flow="inventory")
        run_to_end(settings, flow="recommend")
    with TestClient(create_app(settings), headers=key_headers(issue_key(settings.redis.url).key)) as api:
        live = [api.get("/v1/recommendations", params=params).json()["items"] for params in REQUESTS]

    records = [(topic, value) for step in steps for topic, _, value in step]
    # One batch, as the live flow reads each step: a session-kNN list is the index as of the shopper's last click
    # of a batch, and the loyalty card's till sales come after S-NEW's views in the log but before them in time.
    from_flow = answers(settings, DocumentStore.final(flow_documents(records, settings, len(records))), records)
    from_redis = answers(settings, stored_documents(settings), records)

    assert all(live), f"every request should be answered: {live}"
    assert from_redis == live  # the API's combination, exactly
    assert [ranked(answer) for answer in from_flow] == [ranked(answer) for answer in live]
    for harness_answer, live_answer in zip(from_flow, live, strict=True):
        assert [i["score"] for i in harness_answer] == pytest.approx([i["score"] for i in live_answer], rel=0.35)
    assert "SKU-C" not in {item["sku"] for item in live[0]}  # sold out at STORE-1: filtered on both paths
