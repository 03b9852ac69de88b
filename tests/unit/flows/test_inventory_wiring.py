"""The inventory flow wired to a test source and sink: whole runs with no broker and no Redis.

Raw Kafka records in (as the Kafka source reads them), every record the sink
would write out: stock per SKU, alerts and dead letters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main
from prometheus_client import REGISTRY

from events.alerts import Alert
from events.dead_letter import DeadLetter
from events.orders import OrderLineState, ReservationState
from events.stock import LocationStock, SkuStock
from events.topics import Topic
from flows.inventory import build_flow
from flows.kafka_source import KafkaRecord
from omnistream.settings import Settings

# No broker and no Redis listen here: a flow that tried to connect would fail.
SETTINGS = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", low_stock_threshold=1)
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC).timestamp()


def at(offset_s: float) -> str:
    return datetime.fromtimestamp(T0 + offset_s, UTC).isoformat().replace("+00:00", "Z")


def envelope(event_id: str, kind: str, offset_s: float) -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "ts": at(offset_s), "schema_version": 1}


def receipt(event_id: str, sku: str, location_id: str, qty: int, offset_s: float) -> dict[str, Any]:
    return envelope(event_id, "receipt", offset_s) | {"sku": sku, "location_id": location_id, "qty": qty}


def till(event_id: str, kind: str, txn_id: str, offset_s: float, **fields: Any) -> dict[str, Any]:
    return envelope(event_id, kind, offset_s) | {"store_id": "S1", "register_id": "R1", "cashier_id": "C1",
                                                 "txn_id": txn_id, "currency": "EUR", **fields}  # fmt: skip


def sale(event_id: str, txn_id: str, sku: str, qty: int, offset_s: float) -> dict[str, Any]:
    return till(event_id, "sale", txn_id, offset_s, items=[{"sku": sku, "qty": qty, "unit_price": 2.5}],
                total=2.5 * qty, payment={"method": "cash"})  # fmt: skip


class Topics:
    """Numbers each topic's records in order, as a partition's offsets would."""

    def __init__(self) -> None:
        self.offsets: dict[Topic, int] = {}
        self.records: list[KafkaRecord] = []

    def add(self, topic: Topic, value: dict[str, Any] | bytes, error: str | None = None) -> KafkaRecord:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        record = KafkaRecord(SETTINGS.topic(topic), 0, offset, raw, error)
        self.records.append(record)
        return record


def run(records: list[KafkaRecord]) -> list[Any]:
    out: list[Any] = []
    run_main(build_flow(SETTINGS, "test", source=TestingSource(records), sink=TestingSink(out)))
    return out


def latest_stock(out: list[Any]) -> dict[str, SkuStock]:
    latest: dict[str, SkuStock] = {}
    for record in out:
        if type(record) is SkuStock:
            assert record.sku not in latest or record.version > latest[record.sku].version, "versions must grow"
            latest[record.sku] = record
    return latest


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def shop_day() -> Iterator[tuple[Topic, dict[str, Any] | bytes]]:
    """Receipts, a sale and its void, a second sale, an online order shipped, a redelivery, bad input."""
    yield Topic.INVENTORY, receipt("rcv-1", "SKU-A", "WH-01", 10, 0)
    yield Topic.INVENTORY, receipt("rcv-2", "SKU-B", "WH-01", 5, 1)
    yield Topic.POS, sale("sale-1", "T1", "SKU-C", 2, 10)
    yield Topic.POS, till("void-1", "void", "T9", 20, original_txn_id="T1")
    yield Topic.POS, sale("sale-2", "T2", "SKU-C", 3, 30)
    yield Topic.CLICKSTREAM, envelope("view-1", "page_view", 39) | {"session_id": "s1", "channel": "web", "path": "/"}
    yield Topic.CLICKSTREAM, envelope("buy-1", "purchase", 40) | {
        "session_id": "s1", "channel": "web", "order_id": "O1", "total": 8.0, "currency": "EUR",
        "items": [{"sku": "SKU-B", "qty": 2, "unit_price": 4.0}],
        "fulfilment_location_id": "WH-01", "payment": {"method": "wallet"}}  # fmt: skip
    yield Topic.INVENTORY, envelope("ship-1", "fulfilment", 50) | {"sku": "SKU-B", "location_id": "WH-01",
                                                                   "order_id": "O1", "qty": 2}  # fmt: skip
    yield Topic.INVENTORY, receipt("rcv-1", "SKU-A", "WH-01", 10, 0)  # redelivered: same event_id
    yield Topic.INVENTORY, receipt("rcv-3", "SKU-A", "WH-01", 0, 60)  # breaks the contract: qty >= 1
    yield Topic.POS, b'{"event_id": "sale-3", "type": "sale", '  # cut short: not JSON


def test_inventory_flow_turns_a_shop_day_into_stock_per_sku() -> None:
    topics = Topics()
    for topic, value in shop_day():
        topics.add(topic, value)

    out = run(topics.records)

    assert latest_stock(out) == {
        # The redelivered receipt changes nothing: still one applied movement.
        "SKU-A": SkuStock("SKU-A", 1, T0, (LocationStock("WH-01", 10, 0, T0),)),
        # Received 5, 2 reserved by the order, then shipped: on hand and reserved both drop.
        "SKU-B": SkuStock("SKU-B", 3, T0 + 50, (LocationStock("WH-01", 3, 0, T0 + 50),)),
        # Sold 2 (voided: back), then 3, with no stock received: oversold by 3.
        "SKU-C": SkuStock("SKU-C", 3, T0 + 30, (LocationStock("S1", -3, 0, T0 + 30),)),
    }


def test_inventory_flow_raises_an_alert_each_time_a_sku_enters_oversell() -> None:
    topics = Topics()
    for topic, value in shop_day():
        topics.add(topic, value)

    alerts = [record for record in run(topics.records) if type(record) is Alert]

    # -2 (oversold), +2 by the void (out of stock: better, no alert), -3 (oversold again).
    assert [(a.kind, a.entity.id, a.source_event_ids) for a in alerts] == [
        ("oversell", "SKU-C@S1", ["sale-1"]),
        ("oversell", "SKU-C@S1", ["sale-2"]),
    ]


def test_inventory_flow_sends_malformed_events_and_kafka_errors_to_dead_letters() -> None:
    topics = Topics()
    for topic, value in shop_day():
        topics.add(topic, value)
    topics.add(Topic.CLICKSTREAM, b"", error="Broker: Message corrupt")

    letters = sorted((r for r in run(topics.records) if type(r) is DeadLetter), key=lambda r: r.dlq_id)

    inventory, pos, click = (SETTINGS.topic(t) for t in (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM))
    assert [(letter.dlq_id, letter.source_topic, letter.offset) for letter in letters] == [
        (f"{click}/0/2", click, 2),
        (f"{inventory}/0/4", inventory, 4),
        (f"{pos}/0/3", pos, 3),
    ]
    assert letters[0].error == "Kafka error: Broker: Message corrupt"
    assert letters[1].error == "Expected `int` >= 1 - at `$.qty`"
    assert letters[1].raw == orjson.dumps(receipt("rcv-3", "SKU-A", "WH-01", 0, 60)).decode()
    assert letters[2].error.startswith("Input data was truncated")
    assert letters[2].raw == '{"event_id": "sale-3", "type": "sale", '


def test_inventory_flow_counts_decoded_events_by_topic_and_type_and_the_redelivery() -> None:
    topics = Topics()
    for topic, value in shop_day():
        topics.add(topic, value)
    events = "omnistream_flow_events_total"
    counted = [(Topic.INVENTORY, "receipt"), (Topic.POS, "sale"), (Topic.CLICKSTREAM, "page_view")]
    before = {key: sample(events, flow="inventory", topic=key[0].value, type=key[1]) for key in counted}
    duplicates_before = sample("omnistream_flow_duplicates_dropped_total", flow="inventory")

    run(topics.records)

    after = {key: sample(events, flow="inventory", topic=key[0].value, type=key[1]) for key in counted}
    # Three receipts decoded (one of them redelivered), two sales, one page view; the bad ones are not events.
    assert [after[key] - before[key] for key in counted] == [3, 2, 1]
    assert sample("omnistream_flow_duplicates_dropped_total", flow="inventory") - duplicates_before == 1


def purchase(event_id: str, order_id: str, lines: list[tuple[str, int]], offset_s: float) -> dict[str, Any]:
    return envelope(event_id, "purchase", offset_s) | {
        "session_id": "sess-1", "channel": "web", "order_id": order_id, "currency": "EUR", "total": 1.0,
        "items": [{"sku": sku, "qty": qty, "unit_price": 1.0} for sku, qty in lines],
        "fulfilment_location_id": "W1", "payment": {"method": "card"},
    }  # fmt: skip


def order_lines(out: list[Any]) -> dict[tuple[str, str, str], OrderLineState]:
    newest: dict[tuple[str, str, str], OrderLineState] = {}
    for record in out:
        if type(record) is OrderLineState:
            key = (record.order_id, record.sku, record.location_id)
            if key not in newest or record.version > newest[key].version:
                newest[key] = record
    return newest


def test_a_whole_order_cancel_before_its_purchase_releases_every_line_of_it() -> None:
    topics = Topics()
    for n, sku in enumerate(("A", "B", "C")):
        topics.add(Topic.INVENTORY, receipt(f"r{n}", sku, "W1", 5, 0))
    topics.add(Topic.INVENTORY, envelope("c1", "order_cancel", 50) | {"order_id": "O1"})  # no sku: the whole order
    topics.add(Topic.CLICKSTREAM, purchase("p1", "O1", [("A", 2), ("B", 1), ("C", 3)], 40))
    topics.add(Topic.INVENTORY, envelope("c1", "order_cancel", 50) | {"order_id": "O1"})  # redelivered

    out = run(topics.records)

    stock = latest_stock(out)
    assert {sku: [(x.on_hand, x.reserved) for x in s.locations] for sku, s in stock.items()} == {
        "A": [(5, 0)], "B": [(5, 0)], "C": [(5, 0)]}  # fmt: skip
    lines = order_lines(out)
    assert {k: (x.purchased, x.cancelled_whole, x.version) for k, x in lines.items()} == {
        ("O1", "A", "W1"): (2, True, 4), ("O1", "B", "W1"): (1, True, 4), ("O1", "C", "W1"): (3, True, 4)}  # fmt: skip


def test_a_partial_line_cancel_without_location_waits_for_the_purchase_and_releases_its_qty() -> None:
    topics = Topics()
    topics.add(Topic.INVENTORY, receipt("r1", "A", "W1", 10, 0))
    topics.add(Topic.INVENTORY, envelope("c1", "order_cancel", 50) | {"order_id": "O1", "sku": "A", "qty": 2})
    topics.add(Topic.CLICKSTREAM, purchase("p1", "O1", [("A", 5)], 40))

    out = run(topics.records)

    assert [(x.on_hand, x.reserved) for x in latest_stock(out)["A"].locations] == [(10, 3)]
    assert order_lines(out)[("O1", "A", "W1")].cancel_requested == 2


def test_holds_are_decided_in_event_order_and_lapse_by_event_time() -> None:
    topics = Topics()
    topics.add(Topic.INVENTORY, receipt("r1", "A", "S1", 3, 0))
    for n, offset in enumerate((10, 11, 12)):
        hold = {"reservation_id": f"R{n}", "sku": "A", "location_id": "S1", "qty": 2, "hold_s": 60.0}
        topics.add(Topic.INVENTORY, envelope(f"R{n}", "reservation", offset) | hold)
    topics.add(Topic.INVENTORY, receipt("r2", "A", "S2", 1, 100))  # the SKU's event time passes R0's expiry

    out = run(topics.records)

    decided = {}
    for record in out:
        if type(record) is ReservationState:
            decided[record.reservation_id] = record.status.value
    assert decided == {"R0": "expired", "R1": "rejected", "R2": "rejected"}
    assert [(x.location_id, x.on_hand, x.reserved) for x in latest_stock(out)["A"].locations] == [
        ("S1", 3, 0), ("S2", 1, 0)]  # fmt: skip


def test_an_event_dated_far_ahead_of_the_wall_clock_is_a_dead_letter_and_lapses_no_hold() -> None:
    topics = Topics()
    topics.add(Topic.INVENTORY, receipt("r1", "A", "S1", 3, 0))
    hold = {"reservation_id": "R0", "sku": "A", "location_id": "S1", "qty": 2, "hold_s": 600.0}
    topics.add(Topic.INVENTORY, envelope("R0", "reservation", 10) | hold)
    year_ahead = datetime.now(UTC).timestamp() + 365 * 86_400.0 - T0  # a till whose clock is a year ahead
    topics.add(Topic.POS, sale("s1", "T1", "A", 1, year_ahead))
    topics.add(Topic.POS, sale("s2", "T2", "A", 1, 20))  # its own clock right: sold as usual

    out = run(topics.records)

    letters = [record for record in out if type(record) is DeadLetter]
    assert [letter.offset for letter in letters] == [0] and letters[0].source_topic == SETTINGS.topic(Topic.POS)
    assert "ahead of the wall clock" in letters[0].error
    decided = [record.status.value for record in out if type(record) is ReservationState]
    assert decided == ["held"]  # not lapsed by the sale dated a year ahead
    assert [(x.location_id, x.on_hand, x.reserved) for x in latest_stock(out)["A"].locations] == [("S1", 2, 2)]


def test_a_future_bound_past_the_calendar_refuses_nothing_rather_than_failing() -> None:
    from flows.decoding import _latest

    assert _latest(1e12) is None
    assert _latest(60.0) is not None
