"""The customers flow's wiring, run in process: injected source and sink, no broker, no Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from bytewax.testing import TestingSink, TestingSource, run_main
from prometheus_client import REGISTRY

from events.availability import AvailabilityChange
from events.dead_letter import DeadLetter
from events.timestamps import rfc3339_ms
from events.topics import Topic
from events.triggers import Trigger
from flows.customers import build_flow
from flows.customers_stages import CustomerLogic, Stage, StockLogic
from flows.kafka_source import KafkaRecord
from flows.sinks import FlowRecord
from omnistream.settings import Settings
from operators.customers.records import Flip, Tick
from state import keys
from state.customer_writer import CustomerDoc
from state.doc_writer import FencedDoc
from tests.unit.events.examples import BASKET, POS_PAYMENT, click, envelope, till

# A partition 60 s behind the newest no longer holds the clock back: these logs are short and sparse.
SETTINGS = Settings(customers_shards=2, customers_cart_window_s=600.0, customers_payment_window_s=600.0,
                    customers_lateness_s=5.0, customers_cooldown_s=3600.0, customers_idle_partition_s=60.0)  # fmt: skip
START = datetime(2026, 11, 22, 1, 0, tzinfo=UTC).timestamp()


def at(offset_s: float) -> str:
    return rfc3339_ms(START + offset_s)


class Log:
    """Records in the order the flow reads them, with per-topic offsets."""

    def __init__(self) -> None:
        self.records: list[KafkaRecord] = []
        self.offsets: dict[Topic, int] = {}

    def add(self, topic: Topic, payload: dict[str, Any] | bytes) -> None:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        value = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        self.records.append(KafkaRecord(SETTINGS.topic(topic), 0, offset, value))

    def click(self, type_: str, event_id: str, offset_s: float, user: str, **fields: Any) -> None:
        self.add(Topic.CLICKSTREAM, {**click(type_, **fields), "user_id": user, "event_id": event_id,
                                     "ts": at(offset_s)})  # fmt: skip

    def sale(self, event_id: str, offset_s: float, customer: str | None, store: str = "S1", total: float = 9.0) -> None:
        self.add(Topic.POS, {**till("sale", items=BASKET, total=total, payment=POS_PAYMENT), "customer_id": customer,
                             "store_id": store, "event_id": event_id, "ts": at(offset_s)})  # fmt: skip

    def flip(self, sku: str, location: str, offset_s: float, sellable: bool, version: int) -> None:
        change = AvailabilityChange(sku=sku, location_id=location, sellable=sellable, available=int(sellable),
                                    version=version, ts=START + offset_s)  # fmt: skip
        self.add(Topic.AVAILABILITY, msgspec.json.encode(change))

    def page(self, event_id: str, offset_s: float) -> None:
        """Traffic of an unrelated shopper: moves the stream's time on."""
        self.click("page_view", event_id, offset_s, "someone-else", path="/")


def run(log: Log) -> list[FlowRecord]:
    out: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, source=TestingSource(log.records, batch_size=3), sink=TestingSink(out)))
    return out


def triggers(out: list[FlowRecord]) -> list[tuple[str, str, str]]:
    return sorted((t.trigger_id, t.kind.value, t.due_at) for t in out if type(t) is Trigger)


def newest_docs(out: list[FlowRecord]) -> dict[str, dict[str, Any]]:
    newest: dict[str, CustomerDoc] = {}
    for item in out:
        if type(item) is CustomerDoc:
            held = newest.get(item.customer_id)
            if held is None or item.version > held.version:
                newest[item.customer_id] = item
    return {cid: orjson.loads(doc.doc) for cid, doc in newest.items()}


def test_a_cart_bought_in_store_fires_nothing_and_one_left_alone_fires_once_at_its_deadline() -> None:
    log = Log()
    log.click("add_to_cart", "a1", 0, "alice", sku="SKU-1", qty=1)  # then bought in store: settled
    log.click("add_to_cart", "b1", 10, "bob", sku="SKU-9", qty=1)  # left alone
    log.sale("s1", 300, "alice")  # BASKET holds SKU-1
    log.click("add_to_cart", "b1", 10, "bob", sku="SKU-9", qty=1)  # a producer's retry: same event id
    log.page("p1", 700)  # the stream's time passes both deadlines (600 s + 5 s lateness)
    log.page("p2", 800)

    out = run(log)

    assert triggers(out) == [("cart_abandoned:bob:SKU-9:b1", "cart_abandoned", at(610))]
    bob = next(t for t in out if type(t) is Trigger)
    assert bob.facts == {"sku": "SKU-9", "added_at": START + 10, "window_s": 600.0}
    assert bob.source_event_ids == ["b1"]
    docs = newest_docs(out)
    # The RFM histograms count each buyer once per scope: alice bought (in store; her country is DE from her web
    # cart), bob did not.
    populations = {d.key: orjson.loads(d.doc) for d in out if type(d) is FencedDoc}
    assert set(populations) == {keys.customer_population("global"), keys.customer_population("country:DE")}
    for population in populations.values():
        assert [sum(n for _, n in population[h]) for h in ("recency", "frequency", "monetary")] == [1, 1, 1]
    assert docs["alice"]["rfm"]["buckets"] is not None and docs["bob"]["rfm"]["buckets"] is None
    assert docs["alice"]["lifecycle"] == "new"
    assert docs["alice"]["rfm"]["orders"] == 1 and docs["alice"]["rfm"]["spend"] == 9.0
    assert docs["alice"]["channels"] == {"store": 1, "web": 0, "app": 0}
    assert docs["alice"]["preferred_store"] == "S1"
    assert docs["bob"]["lifecycle"] == "prospect"


def test_a_failed_payment_fires_unless_a_purchase_follows_within_the_window() -> None:
    log = Log()
    common = {"amount": 9.0, "currency": "EUR"}
    log.click("payment_result", "f1", 0, "carol", payment_ref="O-1", status="declined", **common)
    log.click("payment_result", "f2", 0, "dan", payment_ref="O-2", status="declined", **common)
    log.click("payment_result", "f3", 60, "dan", payment_ref="O-2", status="approved", **common)
    log.page("p1", 900)

    assert triggers(run(log)) == [("payment_failed_recovery:carol:O-1", "payment_failed_recovery", at(600))]


def test_a_view_while_out_of_stock_fires_back_in_stock_when_the_store_restocks_and_consent_is_honoured() -> None:
    log = Log()
    log.sale("s0", 0, "erin", store="S1")
    log.sale("s1", 0, "frank", store="S1")
    log.add(Topic.CUSTOMERS, {**envelope("consent", customer_id="frank", marketing=False), "ts": at(1)})
    log.flip("SKU-5", "S1", 5, False, 1)
    log.click("product_view", "v1", 20, "erin", sku="SKU-5")
    log.click("product_view", "v2", 20, "frank", sku="SKU-5")  # opted out: nothing for him
    log.click("product_view", "v3", 40, "erin", sku="SKU-7")  # SKU-7: availability unknown, no watch
    log.flip("SKU-5", "S1", 100, True, 2)
    log.page("p1", 200)

    assert triggers(run(log)) == [("back_in_stock:erin:SKU-5:v1", "back_in_stock", at(100))]


def test_garbage_on_its_own_topics_and_events_from_the_future_become_dead_letters() -> None:
    ten_years = 10 * 365 * 86_400
    log = Log()
    log.add(Topic.CUSTOMERS, b"{not json")
    log.add(Topic.CUSTOMERS, {**envelope("consent", customer_id="x", marketing=True), "ts": at(0)})
    log.add(Topic.AVAILABILITY, b'{"sku": 3}')
    log.add(Topic.CUSTOMERS, {**envelope("consent", customer_id="y", marketing=True), "ts": at(ten_years)})
    log.sale("s-future", ten_years, "gina")  # dated ten years ahead: the inventory flow dead-letters pos events
    log.sale("s-ok", 0, "gina", total=20.0)
    skipped = REGISTRY.get_sample_value("omnistream_flow_skipped_total", {"flow": "customers", "topic": "pos"}) or 0.0

    out = run(log)

    letters = sorted((d.source_topic, d.offset, d.reason.value) for d in out if type(d) is DeadLetter)
    assert letters == [
        (SETTINGS.topic(Topic.AVAILABILITY), 0, "wrong_type"),
        (SETTINGS.topic(Topic.CUSTOMERS), 0, "not_json"),
        (SETTINGS.topic(Topic.CUSTOMERS), 2, "refused"),
    ]
    after = REGISTRY.get_sample_value("omnistream_flow_skipped_total", {"flow": "customers", "topic": "pos"})
    assert after == skipped + 1  # refused here too, counted, and dead-lettered once (by its owner)
    assert newest_docs(out)["gina"]["rfm"]["spend"] == 20.0  # the refused sale counts for nothing


def test_the_relay_ticks_every_gate_shard_each_move_and_the_stock_shards_once_per_sixteenth_of_the_watch_window() -> (
    None
):

    relay = CustomerLogic(SETTINGS)(None)
    step_s = SETTINGS.customers.watch_window_s / 16
    told: list[tuple[int, int]] = []  # per watermark move: (gate shards ticked, stock shards ticked)
    for watermark in (START, START + 1.0, START + step_s - 1.0, START + step_s, START + step_s + 5.0):
        out, _ = relay.on_batch([[Tick((), (), watermark, relay=True)]])
        stages = [batch.stage for batch in out]
        told.append((stages.count(Stage.GATE), stages.count(Stage.STOCK)))
    assert told == [(2, 2), (2, 0), (2, 0), (2, 2), (2, 0)]  # customers_shards=2

    stock = StockLogic(SETTINGS)(None)
    out, _ = stock.on_batch([[Flip("SKU-1", "S1", START, False, 1), Tick((), (), START + 60.0, relay=True)]])
    assert out == []  # no candidate, and no tick passed on to the gate
