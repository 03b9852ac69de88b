"""The inventory pipeline end to end: simulator → Kafka → inventory flow → Redis → HTTP API.

A seeded simulator workload, with the faults the contract says consumers must
survive (duplicates, malformed payloads, late cycle counts, fulfilments ahead
of their purchase, voids ahead of their sale), is published to the broker; the
inventory flow runs until it has consumed everything; then every SKU ×
location is read back through the API and compared with `ExpectedStock`, an
oracle written from CONTRACT.md alone. Dead letters are checked against the
exact number of malformed payloads sent, in Redis and on the DLQ topic.
"""

from __future__ import annotations

import base64
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from events.dead_letter import DeadLetter
from events.decode import decode
from events.topics import Topic
from omnistream.settings import Settings
from sim.record import SimRecord
from sim.workload import Workload
from state import keys
from tests.e2e.conftest import RunningApi
from tests.e2e.expected_stock import ExpectedStock, Pair, parse_ts
from tests.harness.api import issue_key, key_headers
from tests.harness.flows import publish, run_to_end, stream_records

pytestmark = pytest.mark.e2e

STOCK_TOPICS = (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM)
"""The topics with a stock effect (CONTRACT.md "Stock semantics"): what the inventory flow consumes."""

WORKLOAD = dict(
    seed=20261122,
    n_skus=300,
    n_stores=6,
    n_warehouses=3,
    n_users=2000,
    events_per_s=10.0,  # ~1 h of event time: orders get picked, transfers arrive, counts land late
    duplicate_rate=0.02,
    malformed_rate=0.01,
    late_count_rate=0.5,
    early_order_rate=0.2,
    void_rate=0.08,
    early_void_rate=0.5,
)
N_RECORDS = 40_000
"""Records drawn from the simulator (all topics); about 39k fall on the stock topics."""

GHOST_SKUS = ("SKU-GHOST-1", "SKU-99999", "sku-00001")
"""SKUs no event names: the batch endpoint must list them in `missing`."""

BATCH_SIZE = 500  # CONTRACT.md: up to 500 SKUs per batch call
SAMPLE_SKUS = 40
SAMPLE_LOCATIONS = 80
MAX_REPORTED = 25


@dataclass
class Disorder:
    """How often the workload exercises each situation the contract makes consumers survive."""

    duplicates: int = 0
    stock_duplicates: int = 0  # duplicates of events that change stock
    malformed: Counter[str] = field(default_factory=Counter)
    late_counts: int = 0  # counts dated before a change at their SKU × location published earlier
    decisive_late_counts: int = 0  # ... that are the count setting on-hand at the end
    fulfilments_before_purchase: int = 0
    cancels_before_purchase: int = 0
    voids_before_sale: int = 0


def at(second: int) -> str:
    """A `ts` inside the workload's hour of event time (2026-11-22T00:30Z plus `second`)."""
    minute, second = divmod(second, 60)
    return f"2026-11-22T00:{30 + minute:02d}:{second:02d}.000Z"


def _record(topic: Topic, key: str, event_id: str, type_: str, ts: str, **fields: Any) -> SimRecord:
    event = {"event_id": event_id, "type": type_, "ts": ts, "schema_version": 1, **fields}
    return SimRecord(topic, key.encode(), orjson.dumps(event))


def _stock(event_id: str, type_: str, ts: str, sku: str, location_id: str, **fields: Any) -> SimRecord:
    return _record(Topic.INVENTORY, sku, event_id, type_, ts, sku=sku, location_id=location_id, **fields)


def _till(event_id: str, type_: str, ts: str, txn_id: str, lines: list[tuple[str, int]], **fields: Any) -> SimRecord:
    till = {"store_id": "STORE-01", "register_id": "STORE-01-R9", "cashier_id": "C-0199", "txn_id": txn_id,
            "currency": "USD", **fields}  # fmt: skip
    if type_ != "void":
        till |= {"items": [{"sku": sku, "qty": qty, "unit_price": 2.0} for sku, qty in lines],
                 "total": 2.0 * sum(qty for _, qty in lines), "payment": {"method": "cash"}}  # fmt: skip
    return _record(Topic.POS, "STORE-01", event_id, type_, ts, **till)


def _purchase(event_id: str, ts: str, order_id: str, lines: list[tuple[str, int]], location_id: str) -> SimRecord:
    return _record(Topic.CLICKSTREAM, "U-EDGE", event_id, "purchase", ts, session_id="S-EDGE", user_id="U-EDGE",
                   channel="web", order_id=order_id, currency="USD", total=1.0, fulfilment_location_id=location_id,
                   items=[{"sku": sku, "qty": qty, "unit_price": 1.0} for sku, qty in lines],
                   payment={"method": "card", "card_token": "tok_edge"})  # fmt: skip


def edge_cases() -> tuple[list[SimRecord], dict[Pair, tuple[int, int, int]]]:
    """Rules the simulator never hits, on SKUs of their own, with levels worked out by hand from CONTRACT.md.

    Published in this order after the workload.
    """
    records = [
        # A count dated exactly at a movement, written in another offset: the movement is in the count.
        _stock("edge-1-r", "receipt", at(0), "EDGE-1", "WH-01", qty=10),
        _stock("edge-1-a", "adjustment", at(60), "EDGE-1", "WH-01", qty=-2, reason="damage"),
        _stock("edge-1-r2", "receipt", at(120), "EDGE-1", "WH-01", qty=4),
        _stock("edge-1-c", "count", "2026-11-22T01:31:00.000+01:00", "EDGE-1", "WH-01", on_hand=5),
        # Two counts at one ts: the larger event_id wins, whichever arrives first.
        _stock("edge-2-c-b", "count", at(60), "EDGE-2", "WH-01", on_hand=20),
        _stock("edge-2-c-a", "count", at(60), "EDGE-2", "WH-01", on_hand=30),
        _stock("edge-2-r", "receipt", at(90), "EDGE-2", "WH-01", qty=1),
        # Lines of one SKU add up; a sale voided twice is voided once.
        _stock("edge-3-r", "receipt", at(0), "EDGE-3", "STORE-01", qty=10),
        _till("edge-3-s1", "sale", at(30), "EDGE-T3A", [("EDGE-3", 1), ("EDGE-3", 2)]),
        _till("edge-3-s2", "sale", at(40), "EDGE-T3B", [("EDGE-3", 1)]),
        _till("edge-3-v1", "void", at(50), "EDGE-T3V1", [], original_txn_id="EDGE-T3B"),
        _till("edge-3-v2", "void", at(55), "EDGE-T3V2", [], original_txn_id="EDGE-T3B"),
        # A void ahead of its sale, the sale dated after a count: the sale never happened.
        _stock("edge-4-r", "receipt", at(0), "EDGE-4", "STORE-01", qty=10),
        _stock("edge-4-c", "count", at(10), "EDGE-4", "STORE-01", on_hand=9),
        _till("edge-4-v", "void", at(30), "EDGE-T4V", [], original_txn_id="EDGE-T4"),
        _till("edge-4-s", "sale", at(20), "EDGE-T4", [("EDGE-4", 4)]),
        # Fulfilled more than ordered: reserved stops at 0.
        _stock("edge-5-r", "receipt", at(0), "EDGE-5", "WH-01", qty=10),
        _purchase("edge-5-p", at(10), "O-EDGE-5", [("EDGE-5", 2)], "WH-01"),
        _stock("edge-5-f", "fulfilment", at(60), "EDGE-5", "WH-01", order_id="O-EDGE-5", qty=3),
        # Cancelled before the purchase arrives: nothing stays reserved.
        _stock("edge-6-r", "receipt", at(0), "EDGE-6", "WH-01", qty=5),
        _stock("edge-6-x", "order_cancel", at(70), "EDGE-6", "WH-01", order_id="O-EDGE-6"),
        _purchase("edge-6-p", at(10), "O-EDGE-6", [("EDGE-6", 4)], "WH-01"),
        # A voided return is undone too (a void cancels the stock effect of its txn).
        _stock("edge-7-r", "receipt", at(0), "EDGE-7", "STORE-01", qty=5),
        _till("edge-7-ret", "return", at(20), "EDGE-T7", [("EDGE-7", 2)]),
        _till("edge-7-v", "void", at(25), "EDGE-T7V", [], original_txn_id="EDGE-T7"),
        # Two items of one SKU in an order make one line; a pick-up partly fulfilled.
        _stock("edge-8-r", "receipt", at(0), "EDGE-8", "STORE-01", qty=6),
        _purchase("edge-8-p", at(10), "O-EDGE-8", [("EDGE-8", 1), ("EDGE-8", 2)], "STORE-01"),
        _stock("edge-8-f", "fulfilment", at(60), "EDGE-8", "STORE-01", order_id="O-EDGE-8", qty=1),
        # A reused event_id changes nothing, even with another payload.
        _stock("edge-9-r", "receipt", at(0), "EDGE-9", "WH-01", qty=5),
        _stock("edge-9-r", "receipt", at(30), "EDGE-9", "WH-01", qty=7),
    ]
    expected = {
        ("EDGE-1", "WH-01"): (9, 0, 9),
        ("EDGE-2", "WH-01"): (21, 0, 21),
        ("EDGE-3", "STORE-01"): (7, 0, 7),
        ("EDGE-4", "STORE-01"): (9, 0, 9),
        ("EDGE-5", "WH-01"): (7, 0, 7),
        ("EDGE-6", "WH-01"): (5, 0, 5),
        ("EDGE-7", "STORE-01"): (5, 0, 5),
        ("EDGE-8", "STORE-01"): (5, 2, 3),
        ("EDGE-9", "WH-01"): (5, 0, 5),
    }
    return records, expected


def stock_records() -> list[SimRecord]:
    workload = Workload(**WORKLOAD)  # type: ignore[arg-type]
    return [record for record in workload.records(N_RECORDS) if record.topic in STOCK_TOPICS]


def expected_stock(records: Iterable[SimRecord]) -> ExpectedStock:
    """The oracle fed every valid record (the simulator flags the malformed ones)."""
    oracle = ExpectedStock()
    for record in records:
        if not record.malformed:
            oracle.add(record.topic.value, orjson.loads(record.value))
    return oracle


def disorder_of(records: list[SimRecord], oracle: ExpectedStock) -> Disorder:
    """What the workload really contains, found by replaying it in publish order."""
    found = Disorder()
    newest_change: dict[Pair, Any] = {}
    published_purchases: set[str] = set()
    published_sales: set[str] = set()
    early_fulfilled: set[str] = set()
    early_cancelled: set[str] = set()
    early_voided: set[str] = set()
    late_counts: list[tuple[Pair, str]] = []
    for record in records:
        if record.malformed:
            found.malformed[record.topic.value] += 1
            continue
        event = orjson.loads(record.value)
        kind = event["type"]
        if record.duplicate:
            found.duplicates += 1
            found.stock_duplicates += kind not in ("page_view", "search", "product_view", "add_to_cart",
                                                   "remove_from_cart", "checkout_started")  # fmt: skip
            continue
        ts = parse_ts(event["ts"])
        changed: list[Pair] = []
        if record.topic is Topic.INVENTORY:
            if kind == "order_cancel":
                if event["order_id"] not in published_purchases:
                    early_cancelled.add(event["order_id"])
                continue
            pair = (event["sku"], event["location_id"])
            if kind == "count":
                if pair in newest_change and ts < newest_change[pair]:
                    late_counts.append((pair, event["event_id"]))
            elif kind == "reservation":
                pass  # reserves, if held, but moves no on-hand
            else:
                changed.append(pair)
                if kind == "fulfilment" and event["order_id"] not in published_purchases:
                    early_fulfilled.add(event["order_id"])
        elif record.topic is Topic.POS:
            if kind == "void":
                if event["original_txn_id"] not in published_sales:
                    early_voided.add(event["original_txn_id"])
            else:
                published_sales.add(event["txn_id"])
                changed += [(item["sku"], event["store_id"]) for item in event["items"]]
        elif kind == "purchase":
            published_purchases.add(event["order_id"])
        for pair in changed:
            if pair not in newest_change or ts > newest_change[pair]:
                newest_change[pair] = ts
    # Only orders and sales that did arrive later count as "ahead of" them.
    found.fulfilments_before_purchase = len(early_fulfilled & published_purchases)
    found.cancels_before_purchase = len(early_cancelled & published_purchases)
    found.voids_before_sale = len(early_voided & published_sales)
    found.late_counts = len(late_counts)
    found.decisive_late_counts = sum(
        1 for pair, event_id in late_counts if (count := oracle.count_at(pair)) is not None and count[1] == event_id
    )
    return found


def expected_raw(value: bytes) -> str:
    """The DLQ record's `raw` for `value` (CONTRACT.md: first 4 KiB, base64 when not UTF-8).

    UTF-8 text cut inside a character by the 4 KiB limit is still text (without the cut character).
    """
    kept = value[:4096]
    for cut in range(4):  # a UTF-8 character is at most 4 bytes
        try:
            return kept[: len(kept) - cut].decode("utf-8")
        except UnicodeDecodeError:
            if len(kept) < 4096:
                break
    return base64.b64encode(kept).decode("ascii")


def read_batches(client: httpx.Client, skus: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every SKU's object and the `missing` list, through `GET /v1/inventory?skus=` in chunks of 500."""
    items: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for start in range(0, len(skus), BATCH_SIZE):
        chunk = skus[start : start + BATCH_SIZE]
        response = client.get("/v1/inventory", params={"skus": ",".join(chunk)})
        assert response.status_code == 200, f"batch read of {len(chunk)} SKUs: {response.status_code} {response.text}"
        body = response.json()
        assert set(body) == {"items", "missing"}, body.keys()
        for item in body["items"]:
            assert item["sku"] in chunk, f"batch answered an SKU it was not asked for: {item['sku']}"
            assert item["sku"] not in items, f"SKU {item['sku']} answered twice"
            items[item["sku"]] = item
        missing += body["missing"]
    return items, missing


def check_sku_object(item: dict[str, Any]) -> list[str]:
    """Internal consistency of one SKU object: available = on_hand - reserved, totals add up."""
    problems = []
    locations = item["locations"]
    for loc in locations:
        if loc["available"] != loc["on_hand"] - loc["reserved"]:
            problems.append(f"{item['sku']}@{loc['location_id']}: available != on_hand - reserved: {loc}")
    for total, name in (("total_on_hand", "on_hand"), ("total_reserved", "reserved"), ("total_available", "available")):
        if item[total] != sum(loc[name] for loc in locations):
            problems.append(f"{item['sku']}: {total}={item[total]} but the locations sum to "
                            f"{sum(loc[name] for loc in locations)}")  # fmt: skip
    if len({loc["location_id"] for loc in locations}) != len(locations):
        problems.append(f"{item['sku']}: a location is listed twice")
    return problems


def consume_topic(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every message of `topic`, from the beginning to the end, by explicit assignment (no group join)."""
    consumer = Consumer({
        "bootstrap.servers": settings.kafka.brokers,
        "group.id": f"e2e-{topic}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })  # fmt: skip
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        assert partitions, f"topic {topic} has no partitions"
        ends = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[tuple[bytes | None, bytes | None]] = []
        positions: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while any(positions.get(p, -1) + 1 < end for p, end in ends.items()):
            assert time.monotonic() < deadline, (
                f"{topic}: not at the end after {timeout_s:.0f} s: {positions} of {ends}"
            )
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is not None:
                    continue  # partition EOF
                messages.append((message.key(), message.value()))
                positions[message.partition() or 0] = message.offset() or 0
        return messages
    finally:
        consumer.close()


@pytest.mark.parametrize(
    "topology",
    [
        pytest.param({"processes": 1, "workers": 1}, id="one-worker"),
        # Keys spread over workers and processes: a till's sale and void, an order's
        # purchase and fulfilment, must still meet in one place.
        pytest.param({"processes": 2, "workers": 2}, id="cluster-2x2"),
    ],
)
def test_inventory_pipeline_serves_the_contract_stock_for_every_sku_and_location(
    settings: Settings, api: RunningApi, redis_url: str, topology: dict[str, int]
) -> None:
    workload = stock_records()
    oracle = expected_stock(workload)
    # The workload really exercises every fault, so coverage cannot quietly erode.
    disorder = disorder_of(workload, oracle)
    assert disorder.duplicates == oracle.duplicates > 0, (disorder, oracle.duplicates)
    edges, edge_levels = edge_cases()
    for record in edges:
        oracle.add(record.topic.value, orjson.loads(record.value))
    records = workload + edges
    expected = oracle.levels()
    assert {pair: expected[pair].as_tuple() for pair in edge_levels} == edge_levels, "the oracle misreads the contract"
    malformed = [record for record in records if record.malformed]

    assert len(records) > 30_000, len(records)
    assert len(oracle.skus()) >= 250 and len(expected) > 1500, (len(oracle.skus()), len(expected))
    assert disorder.stock_duplicates > 0, disorder
    assert set(disorder.malformed) == {t.value for t in STOCK_TOPICS}, disorder.malformed
    assert disorder.late_counts > 0 and disorder.decisive_late_counts > 0, disorder
    assert disorder.fulfilments_before_purchase > 0 and disorder.cancels_before_purchase > 0, disorder
    assert disorder.voids_before_sale > 0, disorder
    assert any(level.reserved > 0 for level in expected.values()), "no open reservation left to check"
    # The simulator's flag and the contract's decoder agree on what is malformed.
    disagreements = []
    for offset, record in enumerate(records):
        decoded = decode(record.topic, record.value, source_topic=record.topic.value, partition=0, offset=offset)
        if isinstance(decoded, DeadLetter) != record.malformed:
            disagreements.append((record.topic.value, record.malformed, record.value[:200]))
    assert not disagreements, f"{len(disagreements)} records the decoder and the simulator judge differently: " \
                              f"{disagreements[:5]}"  # fmt: skip

    started = time.monotonic()
    assert publish(settings, ((r.topic, r.key, r.value) for r in records)) == len(records)
    published_s = time.monotonic() - started
    run_to_end(settings.model_copy(update=topology))  # asserts the flow exited 0
    flow_s = time.monotonic() - started - published_s

    # Holds are decided first come, first served, in arrival order, which no oracle of the event set
    # can know: the flow's decisions are taken as given, and the stock must agree with them.
    store = redis.Redis.from_url(redis_url)
    undecided = []
    for reservation_id in oracle.reservation_ids():
        doc = store.hget(keys.reservation(reservation_id), keys.DOC_FIELD)
        if doc is None:
            undecided.append(reservation_id)
            continue
        oracle.decide(reservation_id, held=orjson.loads(doc)["status"] != "rejected")
    assert oracle.reservation_ids() and not undecided, f"{len(undecided)} reservations undecided: {undecided[:5]}"
    expected = oracle.levels()

    auth = key_headers(issue_key(settings.redis.url, "storefront").key)
    with httpx.Client(base_url=api.url, timeout=30.0, headers=auth) as client:
        wanted = sorted(oracle.skus())
        items, missing = read_batches(client, [*wanted, *GHOST_SKUS])

        problems = [p for item in items.values() for p in check_sku_object(item)]
        assert not problems, f"{len(problems)} inconsistent SKU objects, first: {problems[:MAX_REPORTED]}"
        assert sorted(missing) == sorted(GHOST_SKUS), (
            f"missing lists SKUs with stock: {sorted(set(missing) - set(GHOST_SKUS))[:50]}"
        )

        served: dict[Pair, tuple[int, int, int]] = {}
        for sku, item in items.items():
            for loc in item["locations"]:
                served[sku, loc["location_id"]] = (loc["on_hand"], loc["reserved"], loc["available"])
        mismatches = []
        for pair in sorted(expected):
            want = expected[pair].as_tuple()
            got = served.get(pair)
            if got != want:
                mismatches.append(f"{pair}: expected (on_hand, reserved, available)={want}, API {got}")
        for pair in sorted(served.keys() - expected.keys()):
            if served[pair] != (0, 0, 0):  # a location only a voided sale touched may be listed at zero
                mismatches.append(f"{pair}: unexpected location {served[pair]}")
        assert not mismatches, (
            f"{len(mismatches)} of {len(expected)} SKU × location levels differ from the contract "
            f"(oracle), first {MAX_REPORTED}:\n" + "\n".join(mismatches[:MAX_REPORTED])
        )

        # The single-SKU and single-location endpoints agree with the batch.
        rng = random.Random(7)
        for sku in rng.sample(wanted, SAMPLE_SKUS):
            response = client.get(f"/v1/inventory/{sku}")
            assert response.status_code == 200, response.text
            assert response.json() == items[sku], f"single-SKU read of {sku} differs from the batch"
        for sku, location_id in rng.sample(sorted(served), SAMPLE_LOCATIONS):
            response = client.get(f"/v1/inventory/{sku}/locations/{location_id}")
            assert response.status_code == 200, response.text
            (in_batch,) = [loc for loc in items[sku]["locations"] if loc["location_id"] == location_id]
            assert response.json() == {"sku": sku, **in_batch}, f"single-location read of {sku}@{location_id}"
        for sku in GHOST_SKUS:
            response = client.get(f"/v1/inventory/{sku}")
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "not_found"

        # Dead letters: exactly the malformed payloads, once each, in Redis and on Kafka.
        letters = stream_records(redis_url, keys.dlq_stream())
        assert len(letters) == len(malformed), (
            f"Redis DLQ holds {len(letters)} records, {len(malformed)} were malformed"
        )
        assert len({letter["dlq_id"] for letter in letters}) == len(letters), "a dlq_id repeats in the Redis stream"
        assert all(isinstance(letter["error"], str) and letter["error"] for letter in letters), (
            "a dead letter has no error"
        )
        assert Counter((letter["source_topic"], letter["raw"]) for letter in letters) == Counter(
            (settings.topic(record.topic), expected_raw(record.value)) for record in malformed
        ), "the Redis DLQ does not hold exactly the malformed payloads under their source topics"
        on_kafka = consume_topic(settings, settings.topic(Topic.DLQ))
        kafka_ids = {key for key, _ in on_kafka}
        assert all(orjson.loads(value or b"{}").get("error") for _, value in on_kafka), "a DLQ message has no error"
        assert len(kafka_ids) == len(malformed), (
            f"DLQ topic has {len(kafka_ids)} distinct dlq_ids, {len(malformed)} malformed"
        )
        assert kafka_ids == {str(letter["dlq_id"]).encode() for letter in letters}, (
            "Kafka and Redis DLQs name different records"
        )

        assert api.alive(), f"the API process died:\n{api.log_tail()}"
        assert client.get("/healthz").status_code == 200

    print(f"\n{len(records)} records ({disorder}), {len(expected)} SKU × location levels; "
          f"publish {published_s:.1f} s, flow {flow_s:.1f} s")  # fmt: skip
