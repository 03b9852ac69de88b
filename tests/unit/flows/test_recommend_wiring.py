"""The recommend flow's wiring, run in process: injected source and sink, no broker, no Redis."""

from __future__ import annotations

import time
from typing import Any

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main
from prometheus_client import REGISTRY

from events.dead_letter import DeadLetter
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.recommend import build_flow
from flows.sinks import FlowRecord
from omnistream.settings import Settings
from state import keys
from state.doc_writer import FencedDoc
from tests.unit.events.examples import click, envelope

SETTINGS = Settings(rec_shards=4, rec_knn_sessions=100_000)  # the session-kNN step wired too (off by default)
T1, T2, T3 = "2026-11-22T01:00:00.000Z", "2026-11-22T01:00:30.000Z", "2026-11-22T01:01:00.000Z"
CARD = {"method": "card", "card_token": "tok_1", "card_bin": "411111", "billing_country": "DE"}


def record(topic: Topic, offset: int, payload: dict[str, Any]) -> KafkaRecord:
    return KafkaRecord(SETTINGS.topic(topic), 0, offset, orjson.dumps(payload))


def view(event_id: str, sku: str, ts: str) -> dict[str, Any]:
    return {**click("product_view", sku=sku), "event_id": event_id, "ts": ts}


def run(records: list[KafkaRecord], settings: Settings = SETTINGS) -> list[FlowRecord]:
    out: list[FlowRecord] = []
    run_main(build_flow(settings, source=TestingSource(records, batch_size=2), sink=TestingSink(out)))
    return out


def latest(out: list[FlowRecord]) -> dict[str, Any]:
    """The newest document per key, parsed: what Redis holds once the fence has kept the highest version."""
    newest: dict[str, FencedDoc] = {}
    for item in out:
        if type(item) is FencedDoc and (item.key not in newest or item.version > newest[item.key].version):
            newest[item.key] = item
    return {key: orjson.loads(doc.doc) for key, doc in newest.items()}


def test_views_a_purchase_and_the_catalog_become_documents_and_a_malformed_upsert_a_dead_letter() -> None:
    kettle = envelope("product_upsert", sku="SKU-1", name="Kettle", category="kitchen", price=29.99)
    purchase = {**click("purchase", order_id="O1", items=[{"sku": "SKU-2", "qty": 1, "unit_price": 3.0}],
                        total=3.0, currency="EUR", fulfilment_location_id="W1", payment=CARD),
                "event_id": "p1", "ts": T3}  # fmt: skip
    out = run([
        record(Topic.CATALOG, 0, kettle),
        record(Topic.CATALOG, 1, {"type": "product_upsert", "sku": 3}),
        record(Topic.CLICKSTREAM, 0, view("v1", "SKU-1", T1)),
        record(Topic.CLICKSTREAM, 1, view("v2", "SKU-2", T2)),
        record(Topic.CLICKSTREAM, 2, purchase),
    ])  # fmt: skip

    letters = [item for item in out if type(item) is DeadLetter]
    assert [(letter.source_topic, letter.offset) for letter in letters] == [(SETTINGS.topic(Topic.CATALOG), 1)]
    assert "sku" in letters[0].error
    docs = latest(out)
    assert set(docs) == {
        keys.rec_item("SKU-1"),
        keys.rec_profile("u:user-1"),
        keys.rec_similar("u:user-1"),
        keys.rec_neighbours("SKU-1"),
        keys.rec_neighbours("SKU-2"),
        *(keys.rec_trending(scope) for scope in ("global", "ch:web", "cat:kitchen", "loc:W1")),
    }
    assert docs[keys.rec_similar("u:user-1")] == []  # the only shopper: nobody like them yet
    assert docs[keys.rec_item("SKU-1")] == {"sku": "SKU-1", "active": True, "category": "kitchen", "price": 29.99}
    profile = docs[keys.rec_profile("u:user-1")]
    assert [(sku, kind, category) for sku, kind, _, category in profile["recent"]] == [
        ("SKU-2", 3, ""),  # the purchase, newest first; SKU-2 has no catalog entry
        ("SKU-1", 1, "kitchen"),  # stamped by the catalog step
    ]
    assert list(profile["categories"]) == ["kitchen"]
    assert [sku for sku, _, _ in docs[keys.rec_neighbours("SKU-1")]] == ["SKU-2"]
    assert [(sku, category) for sku, _, category in docs[keys.rec_neighbours("SKU-2")]] == [("SKU-1", "kitchen")]
    assert [sku for sku, _, _ in docs[keys.rec_trending("global")]] == ["SKU-2", "SKU-1"]  # a purchase weighs more
    assert [sku for sku, _, _ in docs[keys.rec_trending("cat:kitchen")]] == ["SKU-1"]
    assert [sku for sku, _, _ in docs[keys.rec_trending("loc:W1")]] == ["SKU-2"]  # where the order ships from


def test_a_shoppers_session_knn_list_names_what_similar_shoppers_went_on_to() -> None:
    def session_view(offset: int, session: str, sku: str, ts: str) -> KafkaRecord:
        event = {**view(f"e{offset}", sku, ts), "session_id": session}
        event.pop("user_id", None)
        return record(Topic.CLICKSTREAM, offset, event)

    out = run([
        session_view(0, "S-1", "SKU-1", T1), session_view(1, "S-1", "SKU-2", T2), session_view(2, "S-1", "SKU-3", T3),
        session_view(3, "S-2", "SKU-1", "2026-11-22T01:01:30.000Z"),
    ])  # fmt: skip

    similar = latest(out)[keys.rec_similar("s:S-2")]
    assert [sku for sku, _, _ in similar] == ["SKU-1", "SKU-2", "SKU-3"]  # S-1 went on from SKU-1 to 2, then 3
    assert similar[1][1] > similar[2][1]


def test_replicas_of_the_session_knn_index_write_the_same_lists_each_shopper_once_per_batch() -> None:
    records = []
    for offset in range(60):
        event = {**view(f"e{offset}", f"SKU-{(offset * 7) % 9}", f"2026-11-22T01:{offset:02d}:00.000Z"),
                 "session_id": f"S-{offset % 6}"}  # fmt: skip
        event.pop("user_id", None)
        records.append(record(Topic.CLICKSTREAM, offset, event))

    def similar_docs(replicas: int) -> list[tuple[str, int, bytes]]:
        out = run(records, Settings(rec_shards=4, rec_knn_sessions=100_000, rec_knn_replicas=replicas))
        return sorted((item.key, item.version, item.doc) for item in out
                      if type(item) is FencedDoc and item.key.startswith(keys.rec_similar("")[:-2]))  # fmt: skip

    one, three = similar_docs(1), similar_docs(3)
    assert one == three
    assert len({(key, version) for key, version, _ in three}) == len(three)  # one writer per shopper
    assert len({key for key, _, _ in three}) == 6 and any(doc != b"[]" for _, _, doc in three)


def test_a_served_answer_and_the_click_on_it_reach_the_experiment_tally() -> None:
    served = {"request_id": "r1", "variant": "blend", "actor": "u:user-1", "ts": 1795309200.0,
              "items": [{"sku": "SKU-2", "features": {"covisit": 1.0}}]}  # fmt: skip
    clicked = {**view("v1", "SKU-2", T2), "rec_request_id": "r1", "variant": "blend"}
    out = run([record(Topic.REC_SERVED, 0, served), record(Topic.REC_SERVED, 1, {"request_id": 7}),
               record(Topic.CLICKSTREAM, 0, clicked)])  # fmt: skip

    tally = latest(out)[keys.rec_experiment("blend")]
    assert (tally["requests"], tally["impressions"], tally["clicks"]) == (1, 1, 1)
    letters = [item for item in out if type(item) is DeadLetter]
    assert [(letter.source_topic, letter.offset) for letter in letters] == [(SETTINGS.topic(Topic.REC_SERVED), 1)]


def price_change(event_id: str, sku: str, price: float, ts: str) -> dict[str, Any]:
    return {**envelope("price_change", sku=sku, price=price, currency="EUR"), "event_id": event_id, "ts": ts}


def test_price_changes_reach_the_item_documents_and_a_late_older_upsert_keeps_the_newer_price() -> None:
    kettle = {**envelope("product_upsert", sku="SKU-1", name="Kettle", category="kitchen", price=29.99), "ts": T1}
    late_kettle = {**kettle, "event_id": "late", "category": "appliances", "price": 31.0}  # newer facts, older price
    out = run([
        record(Topic.CATALOG, 0, kettle),
        record(Topic.CATALOG, 1, price_change("c1", "SKU-1", 24.99, T3)),  # a markdown
        record(Topic.CATALOG, 2, {**late_kettle, "ts": T2}),
        record(Topic.CATALOG, 3, price_change("c2", "SKU-9", 5.0, T2)),  # the price feed ahead of the catalog
        record(Topic.CATALOG, 4, {**envelope("price_change", sku="SKU-1", price=-1.0, currency="EUR")}),
        record(Topic.CLICKSTREAM, 0, view("v1", "SKU-9", T3)),
    ])  # fmt: skip

    docs = latest(out)
    assert docs[keys.rec_item("SKU-1")] == {"sku": "SKU-1", "active": True, "category": "appliances", "price": 24.99}
    # Known by its price alone: not withdrawn, no category yet, and its views still count.
    assert docs[keys.rec_item("SKU-9")] == {"sku": "SKU-9", "active": True, "category": None, "price": 5.0}
    assert [(sku, category) for sku, _, _, category in docs[keys.rec_profile("u:user-1")]["recent"]] == [("SKU-9", "")]
    letters = [item for item in out if type(item) is DeadLetter]
    assert [(letter.source_topic, letter.offset) for letter in letters] == [(SETTINGS.topic(Topic.CATALOG), 4)]


def skipped(topic: Topic) -> float:
    labels = {"flow": "recommend", "topic": topic.value}
    return REGISTRY.get_sample_value("omnistream_flow_skipped_total", labels) or 0.0


def test_a_kafka_error_is_a_dead_letter_on_a_topic_the_flow_owns_and_counted_as_skipped_on_the_others() -> None:
    before = skipped(Topic.CLICKSTREAM)
    out = run([
        KafkaRecord(SETTINGS.topic(Topic.CATALOG), 0, 0, None, "Broker: Message corrupt"),
        KafkaRecord(SETTINGS.topic(Topic.CLICKSTREAM), 0, 0, None, "Broker: Message corrupt"),
    ])  # fmt: skip

    letters = [item for item in out if type(item) is DeadLetter]
    assert [(letter.source_topic, letter.error) for letter in letters] == [
        (SETTINGS.topic(Topic.CATALOG), "Kafka error: Broker: Message corrupt")
    ]
    assert skipped(Topic.CLICKSTREAM) == before + 1


def test_an_answer_dated_ahead_of_the_wall_clock_is_a_dead_letter_and_closes_no_open_answer() -> None:
    # `rec_served` is read raw, past the decoder's bound on event time, so the flow applies it there: an answer a
    # year ahead, taken, would move its shopper's feedback clock past every open answer, closing r1 unclicked.
    served = {"request_id": "r1", "variant": "blend", "actor": "u:user-1", "ts": 1795309200.0,
              "items": [{"sku": "SKU-2", "features": {"covisit": 1.0}}]}  # fmt: skip
    ahead = {**served, "request_id": "r-ahead", "ts": time.time() + 365 * 86_400.0}
    clicked = {**view("v1", "SKU-2", T2), "rec_request_id": "r1", "variant": "blend"}
    out = run([record(Topic.REC_SERVED, 0, served), record(Topic.REC_SERVED, 1, ahead),
               record(Topic.CLICKSTREAM, 0, clicked)])  # fmt: skip

    tally = latest(out)[keys.rec_experiment("blend")]
    assert (tally["requests"], tally["impressions"], tally["clicks"]) == (1, 1, 1)
    letters = [item for item in out if type(item) is DeadLetter]
    assert [(letter.source_topic, letter.offset) for letter in letters] == [(SETTINGS.topic(Topic.REC_SERVED), 1)]
    assert "ahead of the wall clock" in letters[0].error
