"""The customers flow end to end: real broker, Redis and Bytewax, with the inventory flow upstream.

The issue's four journeys, in one stream: a cart bought in store within the window fires
nothing; a cart left alone fires exactly one `cart_abandoned` at its deadline; a view while
out of stock, then a restock at the till (through the inventory flow's `omni.availability`),
fires one `back_in_stock`; an opted-out customer gets nothing.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from events.timestamps import rfc3339_ms
from events.topics import Topic
from omnistream.settings import Settings
from state import keys
from state.doc_writer import read_doc
from tests.harness.flows import publish, run_to_end, stream_records
from tests.integration.customer_events import START, EventLog

pytestmark = pytest.mark.integration


def _customers_settings(settings: Settings, lateness_s: float = 5.0) -> Settings:
    # Short windows and a short idle horizon: the log spans minutes, and most partitions see a few events.
    return settings.model_copy(update={
        "customers": {"cart_window_s": 600.0, "payment_window_s": 600.0, "lateness_s": lateness_s,
                      "idle_partition_s": 60.0, "shards": 4},
    })  # fmt: skip


def _topic_records(settings: Settings, topic: Topic) -> list[dict[str, object]]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "t", "enable.partition.eof": True})
    name = settings.topic(topic)
    parts = consumer.list_topics(name, timeout=10).topics[name].partitions
    consumer.assign([TopicPartition(name, p, 0) for p in parts])
    out, ended = [], set()
    while len(ended) < len(parts):
        msg = consumer.poll(5.0)
        assert msg is not None, "the topic did not reach its end"
        if msg.error():
            ended.add(msg.partition())
            continue
        out.append(orjson.loads(msg.value()))
    consumer.close()
    return out


@pytest.mark.parametrize("lateness_s", [5.0, 0.25])
def test_the_four_journeys_give_exactly_the_expected_triggers(
    settings: Settings, redis_client: redis.Redis, lateness_s: float
) -> None:
    settings = _customers_settings(settings, lateness_s)
    log = EventLog()
    stock = Topic.INVENTORY
    log.add(stock, "receipt", 0, sku="SKU-B", location_id="S1", qty=1)
    log.till("sale", 5, "S1", "SKU-C", "erin")  # erin and frank shop at S1: it is their preferred store
    log.till("sale", 6, "S1", "SKU-C", "frank")
    log.add(Topic.CUSTOMERS, "consent", 7, customer_id="frank", marketing=False)
    log.till("sale", 10, "S1", "SKU-B", None)  # SKU-B sells out at S1
    alice_cart = log.click("add_to_cart", 20, "alice", sku="SKU-A", qty=1)
    bob_cart = log.click("add_to_cart", 30, "bob", sku="SKU-D", qty=1)
    frank_cart = log.click("add_to_cart", 31, "frank", sku="SKU-D", qty=1)  # opted out: left alone, no trigger
    erin_view = log.click("product_view", 100, "erin", sku="SKU-B")
    log.click("product_view", 101, "frank", sku="SKU-B")
    log.till("sale", 300, "S1", "SKU-A", "alice")  # alice buys her cart's item in store, within the window
    publish(settings, log.take())
    run_to_end(settings, flow="inventory")  # SKU-B: sellable at S1, then not (flips on omni.availability)
    # The customers flow takes this first part before the later traffic is published: read as one
    # backlog before the source has learnt where the till's partitions end, the clickstream's could
    # carry the clock past alice's deadline before her store purchase is read (docs/customers.md,
    # "Known limits"). Live, the topics move together.
    run_to_end(settings, flow="customers")

    log.till("return", 500, "S1", "SKU-B", None)  # brought back at the till: sellable again at S1
    for n in range(12):  # later traffic moves the stream's time past every deadline
        log.click("page_view", 640 + 30 * n, f"walker-{n % 3}", path="/")
    publish(settings, log.take())
    run_to_end(settings, flow="inventory")
    run_to_end(settings, flow="customers")

    triggers = _topic_records(settings, Topic.TRIGGERS)
    ids = Counter(t["trigger_id"] for t in triggers)
    assert set(ids) == {f"cart_abandoned:bob:SKU-D:{bob_cart}", f"back_in_stock:erin:SKU-B:{erin_view}"}
    assert all(n == 1 for n in ids.values()), ids  # one run, no replay: each once on the topic
    by_kind = {t["kind"]: t for t in triggers}
    assert by_kind["cart_abandoned"]["due_at"] == rfc3339_ms(START + 630)
    assert by_kind["back_in_stock"]["due_at"] == rfc3339_ms(START + 500)
    assert by_kind["back_in_stock"]["facts"]["location_id"] == "S1"
    assert by_kind["back_in_stock"]["source_event_ids"] == [erin_view]
    assert alice_cart not in str(triggers) and frank_cart not in str(triggers)
    # The Redis mirror holds each trigger once, as the API's stream serves them.
    mirrored = stream_records(settings.redis.url, keys.triggers_stream())
    assert sorted(t["trigger_id"] for t in mirrored) == sorted(ids)

    alice = orjson.loads(read_doc(redis_client, keys.customer("alice")) or b"null")
    assert alice["lifecycle"] == "new" and alice["rfm"]["orders"] == 1 and alice["channels"]["store"] == 1
    assert alice["rfm"]["last_purchase_at"] == rfc3339_ms(START + 300)
    frank = orjson.loads(read_doc(redis_client, keys.customer("frank")) or b"null")
    assert frank["marketing_consent"] is False and frank["preferred_store"] == "S1"
    assert {m.decode() for m in redis_client.zrange(keys.segment("new"), 0, -1)} == {"alice", "erin", "frank"}
    assert {m.decode() for m in redis_client.zrange(keys.segment("prospect"), 0, -1)} == {"bob"}  # page views: no one


def test_a_malformed_consent_and_an_event_from_the_future_are_dead_lettered(settings: Settings) -> None:
    settings = _customers_settings(settings)
    log = EventLog()
    log.till("sale", 10 * 365 * 86_400, "S1", "SKU-A", "gina")  # dated ten years ahead (pos: the inventory
    log.add(Topic.CUSTOMERS, "consent", 0, customer_id="gina", marketing="no")  # flow dead-letters it)
    log.add(Topic.CUSTOMERS, "consent", 10 * 365 * 86_400, customer_id="hal", marketing=True)  # ten years ahead
    log.till("sale", 0, "S1", "SKU-A", "gina")
    publish(settings, log.take())
    run_to_end(settings, flow="customers")

    letters = stream_records(settings.redis.url, keys.dlq_stream())
    assert sorted((d["source_topic"], d["error"].split(" ")[0]) for d in letters) == [
        (settings.topic(Topic.CUSTOMERS), "Event"),
        (settings.topic(Topic.CUSTOMERS), "Expected"),
    ]
    gina = orjson.loads(read_doc(redis.Redis.from_url(settings.redis.url), keys.customer("gina")) or b"null")
    assert gina["rfm"]["orders"] == 1  # the refused sale is not counted, the valid one is
