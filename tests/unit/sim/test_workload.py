"""The simulated stream: deterministic, valid where it claims to be, and as disorderly as the contract allows."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from events.dead_letter import DeadLetter
from events.decode import decode
from events.topics import INPUT_TOPICS, Topic
from sim.keys import key_for
from sim.malformed import KINDS
from sim.record import SimRecord
from sim.workload import Workload
from tests.unit.sim.conftest import PARAMS, Stream

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MOVEMENT_TYPES = {"receipt", "adjustment", "transfer_out", "transfer_in", "fulfilment"}


def small(**overrides: object) -> Workload:
    params = dict(seed=5, n_skus=80, n_stores=3, n_warehouses=2, n_users=300) | overrides
    return Workload(**params)  # type: ignore[arg-type]


def is_dead_letter(record: SimRecord) -> bool:
    return isinstance(decode(record.topic, record.value, source_topic="x", partition=0, offset=0), DeadLetter)


# --- determinism ------------------------------------------------------------


def test_same_seed_gives_the_same_records_byte_for_byte() -> None:
    assert list(small().records(5000)) == list(small().records(5000))


def test_same_seed_gives_the_same_records_in_another_process() -> None:
    # Benchmarks and the end-to-end oracle regenerate the stream elsewhere: nothing may depend on hash order.
    script = (
        "import hashlib; from sim.workload import Workload; h = hashlib.sha256()\n"
        "for r in Workload(seed=5, n_skus=80, n_stores=3, n_warehouses=2, n_users=300).records(3000):\n"
        "    h.update(r.value)\n"
        "print(h.hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            check=True,
            text=True,
            cwd=Path(__file__).resolve().parents[3],
        ).stdout
        for hash_seed in (1, 2)
    }
    assert digests == {hashlib.sha256(b"".join(r.value for r in small().records(3000))).hexdigest() + "\n"}


def test_different_seeds_give_different_records() -> None:
    first, second = list(small(seed=1).records(3000)), list(small(seed=2).records(3000))
    assert [r.value for r in first] != [r.value for r in second]


def test_a_shorter_stream_is_a_prefix_of_a_longer_one() -> None:
    workload = small()
    longer = list(workload.records(4000))
    assert list(workload.records(1500)) == longer[:1500]


def test_records_restarts_the_stream_and_its_counters() -> None:
    workload = small(malformed_rate=0.05)
    list(workload.records(3000))
    first = dict(workload.malformed_count)
    list(workload.records(3000))
    assert workload.malformed_count == first
    assert sum(first.values()) > 0


def test_endless_stream_keeps_going() -> None:
    assert len(list(islice(small().records(), 12_000))) == 12_000


# --- the opening ------------------------------------------------------------


def test_stream_opens_with_every_product_then_the_opening_stock(stream: Stream) -> None:
    catalog = stream.workload.catalog
    head = stream.records[: len(catalog.products)]
    assert [r.key for r in head] == [p.sku.encode() for p in catalog.products]
    assert {r.topic for r in head} == {Topic.CATALOG}
    receipts = stream.records[len(head) : len(head) + len(catalog.products) * len(catalog.warehouses)]
    assert {orjson.loads(r.value)["type"] for r in receipts} == {"receipt"}


def test_opening_stock_covers_every_sku_at_every_warehouse_and_the_store_assortment(stream: Stream) -> None:
    catalog = stream.workload.catalog
    opening = [e for _, e in stream.valid if e["type"] == "receipt" and e["ts"] == "2026-11-22T00:00:01.000Z"]
    stocked = {(e["sku"], e["location_id"]) for e in opening}
    assert {(p.sku, w) for p in catalog.products for w in catalog.warehouses} <= stocked
    assert {(p.sku, s) for p in catalog.products if catalog.in_stores(p) for s in catalog.stores} <= stocked


# --- validity ---------------------------------------------------------------


def test_every_valid_record_decodes_and_every_malformed_one_is_dead_lettered(stream: Stream) -> None:
    wrong = [r for r in stream.records if is_dead_letter(r) != r.malformed]
    assert wrong == []
    assert sum(r.malformed for r in stream.records) > 100


def test_every_kind_of_malformation_is_dead_lettered() -> None:
    workload = small(malformed_rate=0.3)
    records = list(workload.records(8000))
    assert set(workload.malformed_kinds) == set(KINDS)
    assert [r for r in records if is_dead_letter(r) != r.malformed] == []


def test_malformed_counts_per_topic_are_exact(stream: Stream) -> None:
    flagged = Counter(r.topic for r in stream.records if r.malformed)
    assert {t: n for t, n in stream.workload.malformed_count.items() if n} == dict(flagged)
    assert sum(stream.workload.malformed_kinds.values()) == sum(flagged.values())
    assert stream.workload.published == {t: sum(r.topic is t for r in stream.records) for t in INPUT_TOPICS}


def test_timestamps_are_rfc3339_with_milliseconds_in_utc(stream: Stream) -> None:
    assert all(TS.match(e["ts"]) for _, e in stream.valid)


def test_event_ids_are_unique_except_for_duplicates(stream: Stream) -> None:
    ids = Counter(e["event_id"] for r, e in stream.valid if not r.duplicate)
    assert ids.most_common(1)[0][1] == 1


def test_keys_follow_the_contract(stream: Stream) -> None:
    expected_field = {
        Topic.CATALOG: lambda e: e["sku"],
        Topic.INVENTORY: lambda e: e["order_id"] if e["type"] == "order_cancel" else e["sku"],
        Topic.POS: lambda e: e["store_id"],
        Topic.CLICKSTREAM: lambda e: e["user_id"] or e["session_id"],
        Topic.LABELS: lambda e: e.get("txn_id") or e["order_id"],
        Topic.CUSTOMERS: lambda e: e["customer_id"],
        Topic.MEMBERS: lambda e: e["user_id"] if e["type"] == "identity_link" else e["customer_id"],
        Topic.WEATHER: lambda e: e["location_id"],
    }
    assert all(r.key == expected_field[r.topic](e).encode() for r, e in stream.valid)
    assert all(r.key == key_for(r.topic, r.value) for r in stream.records)


def test_payment_cards_are_tokens_never_numbers(stream: Stream) -> None:
    payments = [e["payment"] for _, e in stream.valid if "payment" in e]
    tokens = [p["card_token"] for p in payments if "card_token" in p]
    assert tokens and all(re.fullmatch(r"tok_[0-9a-f]{16}", t) for t in tokens)
    assert {p["method"] for p in payments} >= {"card", "cash", "wallet", "gift_card"}


def test_event_time_advances_at_about_the_asked_rate() -> None:
    workload = small(events_per_s=50.0, malformed_rate=0.0)
    last = list(workload.records(30_000))[-1]
    span_s = datetime.fromisoformat(orjson.loads(last.value)["ts"]).timestamp() - workload.start_ts
    assert 0.7 * 30_000 / 50.0 < span_s < 1.4 * 30_000 / 50.0


# --- duplicates -------------------------------------------------------------


def test_duplicates_repeat_an_earlier_record_byte_for_byte(stream: Stream) -> None:
    seen: set[tuple[Topic, bytes | None, bytes]] = set()
    duplicates = 0
    for record in stream.records:
        if record.duplicate:
            duplicates += 1
            assert (record.topic, record.key, record.value) in seen
        seen.add((record.topic, record.key, record.value))
    assert duplicates == sum(stream.workload.duplicate_count.values())
    assert duplicates > 100


def test_only_duplicates_repeat_an_event_id(stream: Stream) -> None:
    seen: set[str] = set()
    for record, event in stream.valid:
        assert (event["event_id"] in seen) == record.duplicate
        seen.add(event["event_id"])


# --- disorder the flows must survive ----------------------------------------


def test_some_cycle_counts_arrive_after_a_movement_they_predate(stream: Stream) -> None:
    newest_movement: dict[tuple[str | None, str | None], str] = {}
    late = on_time = 0
    for _, event in stream.valid:
        pair = (event.get("sku"), event.get("location_id"))
        if event["type"] in MOVEMENT_TYPES:
            newest_movement[pair] = max(newest_movement.get(pair, ""), event["ts"])
        elif event["type"] == "count":
            assert event["on_hand"] >= 0
            if event["ts"] < newest_movement.get(pair, ""):
                late += 1
            else:
                on_time += 1
    assert late > 10 and on_time > 10


def test_some_fulfilments_and_cancels_arrive_before_their_purchase(stream: Stream) -> None:
    purchased: set[str] = set()
    early: Counter[str] = Counter()
    for _, event in stream.valid:
        if event["type"] == "purchase":
            purchased.add(event["order_id"])
        elif event["type"] in ("fulfilment", "order_cancel") and event["order_id"] not in purchased:
            early[event["type"]] += 1
    assert early["fulfilment"] > 0 and early["order_cancel"] > 0
    # ... and they are early, not orphans: their purchase does come later.
    orders = {e["order_id"] for e in stream.of_type("fulfilment")} - purchased
    assert len(orders) < early["fulfilment"]


def test_fulfilments_stay_within_their_purchase_at_its_fulfilment_location(stream: Stream) -> None:
    purchases = {e["order_id"]: e for e in stream.of_type("purchase")}
    shipped: Counter[tuple[str, str]] = Counter()
    checked = 0
    for event in stream.of_type("fulfilment") + stream.of_type("order_cancel"):
        purchase = purchases.get(event["order_id"])
        if purchase is None:
            continue  # its purchase fell beyond the end of the sample (or it cancels a checkout hold)
        if "sku" not in event:
            continue  # a whole-order cancel
        assert event.get("location_id", purchase["fulfilment_location_id"]) == purchase["fulfilment_location_id"]
        lines = {line["sku"]: line["qty"] for line in purchase["items"]}
        assert event["sku"] in lines
        if event["type"] == "fulfilment":
            shipped[(event["order_id"], event["sku"])] += event["qty"]
            assert shipped[(event["order_id"], event["sku"])] <= lines[event["sku"]]
            checked += 1
    assert checked > 100
    assert any(e["fulfilment_location_id"].startswith("STORE-") for e in purchases.values())  # pick-up orders


def test_some_voids_arrive_before_their_sale_and_name_a_sale_of_the_same_store(stream: Stream) -> None:
    sales = {e["txn_id"]: e for e in stream.of_type("sale")}
    seen_sales: set[str] = set()
    early = 0
    for _, event in stream.valid:
        if event["type"] == "sale":
            seen_sales.add(event["txn_id"])
        elif event["type"] == "void":
            early += event["original_txn_id"] not in seen_sales
    voids = stream.of_type("void")
    assert 0 < early < len(voids)
    for void in voids:
        sale = sales.get(void["original_txn_id"])
        assert sale is None or sale["store_id"] == void["store_id"]


def test_returns_come_with_and_without_receipt(stream: Stream) -> None:
    sales = {e["txn_id"] for e in stream.of_type("sale")}
    returns = stream.of_type("return")
    with_receipt = [e for e in returns if "original_txn_id" in e]
    assert with_receipt and len(with_receipt) < len(returns)
    assert all(e["original_txn_id"] in sales for e in with_receipt)


def test_transfers_come_in_pairs(stream: Stream) -> None:
    sides: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for event in stream.of_type("transfer_out") + stream.of_type("transfer_in"):
        sides[event["transfer_id"]][event["type"]] = event
    pairs = [s for s in sides.values() if len(s) == 2]
    assert len(pairs) > 20
    for side in pairs:
        out, into = side["transfer_out"], side["transfer_in"]
        assert (out["sku"], out["qty"]) == (into["sku"], into["qty"])
        assert (out["location_id"], out["peer_location_id"]) == (into["peer_location_id"], into["location_id"])
        assert out["ts"] < into["ts"]
    assert all("transfer_out" in s for s in sides.values())  # nothing arrives that never left


def test_adjustments_are_signed_and_never_zero(stream: Stream) -> None:
    adjustments = stream.of_type("adjustment")
    assert {e["qty"] > 0 for e in adjustments} == {True, False}
    assert {e["reason"] for e in adjustments} == {"damage", "shrink", "correction", "found"}


# --- fraud ------------------------------------------------------------------


def test_fraud_labels_judge_earlier_payments_and_agree_with_the_ground_truth(stream: Stream) -> None:
    paid = {e["order_id"]: e["ts"] for e in stream.of_type("purchase")}
    paid |= {e["txn_id"]: e["ts"] for e in stream.of_type("sale") + stream.of_type("return")}
    labels = stream.of_type("fraud_label")
    assert {e["label"] for e in labels} == {"fraud", "legit"}
    for label in labels:
        payment_id = label.get("txn_id") or label["order_id"]
        assert paid[payment_id] < label["ts"]
        assert (label["label"] == "fraud") == (payment_id in stream.workload.fraud_ids)


def test_stolen_cards_are_tested_with_a_burst_of_orders(stream: Stream) -> None:
    fraud_orders = [e for e in stream.of_type("purchase") if e["order_id"] in stream.workload.fraud_ids]
    per_card = Counter(e["payment"]["card_token"] for e in fraud_orders)
    assert per_card and per_card.most_common(1)[0][1] >= 3
    assert all(e["ip_country"] != e["payment"]["billing_country"] for e in fraud_orders)


# --- signal for the recommender ---------------------------------------------


def test_a_session_views_products_of_a_single_category(stream: Stream) -> None:
    category = {p.sku: p.category for p in stream.workload.catalog.products}
    per_session: dict[str, set[str]] = defaultdict(set)
    for event in stream.of_type("product_view"):
        per_session[event["session_id"]].add(category[event["sku"]])
    assert len(per_session) > 500
    assert all(len(categories) == 1 for categories in per_session.values())


def test_shoppers_mostly_view_their_preferred_categories(stream: Stream) -> None:
    category = {p.sku: p.category for p in stream.workload.catalog.products}
    tastes = {s.user_id: s.categories for s in stream.workload.shoppers}
    views = [e for e in stream.of_type("product_view") if e["user_id"]]
    to_taste = sum(category[e["sku"]] in tastes[e["user_id"]] for e in views)
    assert to_taste > 0.85 * len(views)


def test_parameters_are_kept_under_their_own_names() -> None:
    workload = Workload(**PARAMS)
    assert {name: getattr(workload, name) for name in PARAMS} == PARAMS
