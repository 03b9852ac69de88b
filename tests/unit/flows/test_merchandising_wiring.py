"""The merchandising flow wired to a test source and sink: whole runs with no broker and no Redis.

Raw Kafka records in (as the Kafka source reads them); out, every record the sink
would write: suggestion records for `omni.suggestions` and fenced documents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main
from prometheus_client import REGISTRY

from events.suggestions import MarkdownSuggestion, TransferSuggestion
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.merchandising import build_flow
from omnistream.settings import Settings
from state import keys
from state.doc_writer import FencedDoc

DAY = 86_400.0
T0 = datetime(2026, 9, 1, tzinfo=UTC).timestamp()
# No broker and no Redis listen here: a flow that tried to connect would fail.
SETTINGS = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", merch_shards=4,
                    merch_season_end=datetime(2026, 10, 15, tzinfo=UTC), merch_review_interval_s=DAY)  # fmt: skip


def at(day: float) -> str:
    return datetime.fromtimestamp(T0 + day * DAY, UTC).isoformat().replace("+00:00", "Z")


def envelope(event_id: str, kind: str, day: float) -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "ts": at(day), "schema_version": 1}


def stock(event_id: str, kind: str, sku: str, location: str, day: float, **fields: Any) -> dict[str, Any]:
    return envelope(event_id, kind, day) | {"sku": sku, "location_id": location, **fields}


def sale(event_id: str, store: str, sku: str, qty: int, day: float) -> dict[str, Any]:
    return envelope(event_id, "sale", day) | {
        "store_id": store, "register_id": "R1", "cashier_id": "C1", "txn_id": event_id, "currency": "EUR",
        "items": [{"sku": sku, "qty": qty, "unit_price": 20.0}], "total": 20.0 * qty,
        "payment": {"method": "cash"}}  # fmt: skip


def upsert(sku: str, price: float, day: float) -> dict[str, Any]:
    return envelope(f"up-{sku}", "product_upsert", day) | {"sku": sku, "name": sku, "category": "c", "price": price}


class Topics:
    def __init__(self) -> None:
        self.offsets: dict[Topic, int] = {}
        self.records: list[KafkaRecord] = []

    def add(self, topic: Topic, value: dict[str, Any] | bytes) -> None:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        self.records.append(KafkaRecord(SETTINGS.topic(topic), 0, offset, raw, None))


def run(records: list[KafkaRecord], batch_size: int = 1) -> list[Any]:
    out: list[Any] = []
    run_main(build_flow(SETTINGS, "test", source=TestingSource(records, batch_size), sink=TestingSink(out)))
    return out


def season(transfer: bool) -> Topics:
    """SKU-HOT sells 4 a day at STORE-01 (30 units) and 1 a day at STORE-02 (120); SKU-SLOW barely sells."""
    topics = Topics()
    topics.add(Topic.CATALOG, upsert("SKU-HOT", 20.0, 0))
    topics.add(Topic.CATALOG, upsert("SKU-SLOW", 50.0, 0))
    topics.add(Topic.INVENTORY, stock("r1", "receipt", "SKU-HOT", "STORE-01", 0, qty=30))
    topics.add(Topic.INVENTORY, stock("r2", "receipt", "SKU-HOT", "STORE-02", 0, qty=120))
    topics.add(Topic.INVENTORY, stock("r3", "receipt", "SKU-SLOW", "STORE-01", 0, qty=300))
    for day in range(1, 17):
        for n in range(4):
            topics.add(Topic.POS, sale(f"s-{day}-{n}", "STORE-01", "SKU-HOT", 1, day + n / 10))
        topics.add(Topic.POS, sale(f"t-{day}", "STORE-02", "SKU-HOT", 1, day))
    topics.add(Topic.POS, b'{"event_id": "cut')  # malformed: the inventory flow dead-letters it, not this one
    topics.add(Topic.POS, sale("slow-1", "STORE-01", "SKU-SLOW", 1, 10))
    topics.add(Topic.CLICKSTREAM, envelope("b1", "purchase", 16) | {
        "session_id": "s1", "channel": "web", "order_id": "O1", "total": 20.0, "currency": "EUR",
        "items": [{"sku": "SKU-HOT", "qty": 1, "unit_price": 20.0}], "fulfilment_location_id": "STORE-01",
        "payment": {"method": "wallet"}})  # fmt: skip
    if transfer:  # the planner carried the suggestion out
        topics.add(Topic.INVENTORY, stock("x1", "transfer_out", "SKU-HOT", "STORE-02", 17, qty=40, transfer_id="X1",
                                          peer_location_id="STORE-01"))  # fmt: skip
    return topics


def test_a_location_about_to_stock_out_gets_a_transfer_from_where_stock_sits() -> None:
    out = run(season(transfer=False).records)

    transfers = [r for r in out if type(r) is TransferSuggestion]
    assert transfers, "a transfer was suggested"
    first = transfers[0]
    assert (first.sku, first.from_location, first.to_location, first.status) == ("SKU-HOT", "STORE-02", "STORE-01",
                                                                                 "open")  # fmt: skip
    assert first.suggestion_id == "transfer:SKU-HOT:STORE-02:STORE-01" and first.qty >= 1
    assert first.expected_stockout_avoided > 0 and first.value >= first.cost
    assert [r.version for r in transfers] == sorted(r.version for r in transfers)
    docs = [r for r in out if type(r) is FencedDoc and r.key == keys.suggestions("transfer", "SKU-HOT")]
    last = msgspec.json.decode(docs[-1].doc)
    assert [(t["from_location"], t["to_location"], t["qty"]) for t in last] == [
        ("STORE-02", "STORE-01", transfers[-1].qty)]  # fmt: skip
    assert docs[-1].flag_set == keys.suggestion_skus("transfer") and docs[-1].flagged
    # No dead letters, stock or alerts: those are the inventory flow's.
    assert {type(r) for r in out} == {TransferSuggestion, MarkdownSuggestion, FencedDoc}


def test_a_transfer_carried_out_withdraws_the_suggestion() -> None:
    out = run(season(transfer=True).records)

    transfers = [r for r in out if type(r) is TransferSuggestion and r.sku == "SKU-HOT"]
    assert transfers[-1].status == "withdrawn"
    docs = [r for r in out if type(r) is FencedDoc and r.key == keys.suggestions("transfer", "SKU-HOT")]
    assert docs[-1].doc == b"[]" and not docs[-1].flagged


def test_a_slow_seller_gets_a_markdown_and_the_fast_seller_does_not() -> None:
    out = run(season(transfer=False).records)

    markdowns = [r for r in out if type(r) is MarkdownSuggestion]
    assert {r.sku for r in markdowns} == {"SKU-SLOW"}
    md = markdowns[-1]
    assert md.status == "open" and md.list_price == 50.0 and md.suggested_price == 40.0  # 20% off: one change
    # Made at the day-14 review (stock 14 days old), before the one sale: not re-published for it (same price).
    assert md.on_hand == 300 and md.ts == "2026-09-15T00:00:00.000Z" and md.cover_days > 21
    doc = [r for r in out if type(r) is FencedDoc and r.key == keys.suggestions("markdown", "SKU-SLOW")][-1]
    assert msgspec.json.decode(doc.doc)["suggested_price"] == 40.0 and doc.flagged


def test_published_suggestions_are_counted_by_kind_and_status() -> None:
    def count(kind: str, status: str) -> float:
        labels = {"flow": "merchandising", "kind": kind, "status": status}
        return REGISTRY.get_sample_value("omnistream_merch_suggestions_total", labels) or 0.0

    before = {(k, s): count(k, s) for k in ("transfer", "markdown") for s in ("open", "withdrawn")}
    out = run(season(transfer=True).records)
    published = {key: sum(1 for r in out if type(r) in (TransferSuggestion, MarkdownSuggestion)
                          and (r.kind, r.status) == key) for key in before}  # fmt: skip
    assert published[("transfer", "withdrawn")] >= 1 and published[("markdown", "open")] == 1
    assert {key: count(*key) - before[key] for key in before} == published


def test_a_replay_of_the_same_input_gives_the_same_records() -> None:
    records = season(transfer=True).records
    assert run(records) == run(records)


def in_event_time_order(records: list[KafkaRecord]) -> list[KafkaRecord]:
    """The records as a live stream would bring them: by event time (the malformed one first, it has none)."""

    def ts(record: KafkaRecord) -> str:
        try:
            return str(orjson.loads(record.value or b"")["ts"])
        except (orjson.JSONDecodeError, KeyError):
            return ""

    return sorted(records, key=ts)


def per_key(out: list[Any]) -> dict[str, list[Any]]:
    """Each suggestion's records and each document's writes, in order (the order between keys is not defined)."""
    keyed: dict[str, list[Any]] = {}
    for r in out:
        keyed.setdefault(r.key if type(r) is FencedDoc else r.suggestion_id, []).append(r)
    return keyed


@pytest.mark.parametrize("transfer", [False, True])
def test_the_same_events_cut_into_other_batches_give_the_same_suggestions(transfer: bool) -> None:
    """Reviews happen at steps of event time, never at batch ends: every batch split publishes the same records."""
    records = in_event_time_order(season(transfer).records)
    one_by_one = per_key(run(records))
    assert one_by_one["transfer:SKU-HOT:STORE-02:STORE-01"][0].status == "open"
    assert [r.sku for r in run(records) if type(r) is MarkdownSuggestion] == ["SKU-SLOW"]
    for batch_size in (2, 3, 4, 7, 11, 25, 64, len(records)):
        assert per_key(run(records, batch_size)) == one_by_one, f"batches of {batch_size}"


def big_order(topics: Topics, day: float) -> None:
    """An online order of 90 SKU-HOT from STORE-02: the units STORE-02 could spare for STORE-01, reserved."""
    topics.add(Topic.CLICKSTREAM, envelope("big", "purchase", day) | {
        "session_id": "s2", "channel": "web", "order_id": "O-BIG", "total": 1800.0, "currency": "EUR",
        "items": [{"sku": "SKU-HOT", "qty": 90, "unit_price": 20.0}], "fulfilment_location_id": "STORE-02",
        "payment": {"method": "wallet"}})  # fmt: skip


def transfer_doc(out: list[Any]) -> bytes:
    docs = [r for r in out if type(r) is FencedDoc and r.key == keys.suggestions("transfer", "SKU-HOT")]
    return docs[-1].doc if docs else b"[]"


@pytest.mark.parametrize("cancel_first", [False, True])
def test_a_whole_order_cancel_gives_the_order_s_units_back_in_any_arrival_order(cancel_first: bool) -> None:
    """An `order_cancel` naming only the order releases every line its purchase reserved, as in the inventory flow."""
    uncancelled = season(transfer=False)
    big_order(uncancelled, 15)
    cancelled = season(transfer=False)
    cancel = envelope("c-big", "order_cancel", 15.5) | {"order_id": "O-BIG"}
    if cancel_first:  # read before its purchase (another topic): the order book keeps it until the purchase comes
        cancelled.records.insert(0, KafkaRecord(SETTINGS.topic(Topic.INVENTORY), 0, 99, orjson.dumps(cancel), None))
        big_order(cancelled, 15)
    else:
        big_order(cancelled, 15)
        cancelled.add(Topic.INVENTORY, cancel)

    baseline = transfer_doc(run(season(transfer=False).records))
    assert baseline != b"[]", "STORE-02 can spare units for STORE-01"
    assert transfer_doc(run(uncancelled.records)) == b"[]", "the order reserved what STORE-02 could spare"
    assert transfer_doc(run(cancelled.records)) == baseline
