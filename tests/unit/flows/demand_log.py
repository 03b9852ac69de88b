"""A simulated shop log for the demand flow: every event kind the flow reads, with the disorder of a real stream.

Three weeks at two stores and a warehouse over a dozen SKUs: opening receipts, till sales, returns and
voids, online orders of one to three lines, whole-order and line cancels, fulfilments, checkout holds,
transfers, adjustments, cycle counts (some dated before movements that arrived earlier), weather,
redeliveries, and events read a little out of order. Deterministic for a seed, so a run of the flow over
it can be compared with a recorded one (`tests/unit/flows/test_demand_golden.py`).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from events.topics import Topic
from flows.kafka_source import KafkaRecord
from omnistream.settings import Settings

LOCATIONS = ("STORE-1", "STORE-2", "WH-1")
SKUS = tuple(f"SKU-{i:02d}" for i in range(12))
START = datetime(2026, 10, 5, tzinfo=UTC)
SETTINGS = Settings(
    demand_locations="STORE-*=Europe/London,GB-ENG,3,0.95;WH-*=Europe/London,GB-ENG,7,0.9",
    demand_shards=3,
    demand_lateness_s=3600.0,
    demand_alpha=0.2,
)


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def simulated_log(seed: int = 22, days: int = 21, settings: Settings = SETTINGS) -> list[KafkaRecord]:
    """The shop's events as Kafka records, in the order a consumer would read them."""
    rng = random.Random(seed)
    events: list[tuple[float, Topic, dict[str, Any]]] = []
    counter = iter(range(10**9))

    def add(topic: Topic, at: datetime, type_: str, **fields: Any) -> dict[str, Any]:
        event = {"event_id": f"{type_}-{next(counter)}", "type": type_, "ts": _stamp(at), "schema_version": 1, **fields}
        events.append((at.timestamp(), topic, event))
        return event

    for location in LOCATIONS:
        for sku in SKUS:
            if rng.random() < 0.85:  # some pairs are never stocked: no reorders there
                add(Topic.INVENTORY, START - timedelta(hours=2), "receipt", sku=sku, location_id=location, qty=25)
    popularity = [1.0 / (1 + i) for i in range(len(SKUS))]
    txns: list[str] = []
    orders: list[tuple[str, str, list[str]]] = []
    for day in range(days):
        base = START + timedelta(days=day)
        for location in LOCATIONS[:2]:
            add(Topic.WEATHER, base + timedelta(hours=6), "weather", location_id=location,
                day=(base + timedelta(days=1)).date().isoformat(), kind="forecast",
                temperature_c=round(rng.uniform(5, 25), 1), precipitation_mm=0.0)  # fmt: skip
        for _ in range(rng.randint(25, 45)):
            at = base + timedelta(seconds=rng.uniform(8 * 3600, 22 * 3600))
            roll = rng.random()
            sku = rng.choices(SKUS, popularity)[0]
            if roll < 0.45:
                store = rng.choice(LOCATIONS[:2])
                txn = f"T{next(counter)}"
                lines = [{"sku": s, "qty": rng.randint(1, 3), "unit_price": 2.0}
                         for s in sorted({sku, *rng.choices(SKUS, popularity, k=rng.randint(0, 1))})]  # fmt: skip
                add(Topic.POS, at, "sale", store_id=store, register_id="R1", cashier_id="C1", txn_id=txn,
                    currency="GBP", items=lines, total=9.0, payment={"method": "cash"})  # fmt: skip
                txns.append(f"{store}|{txn}")
            elif roll < 0.50 and txns:
                store, txn = rng.choice(txns).split("|")
                add(Topic.POS, at, "void", store_id=store, register_id="R1", cashier_id="C1", txn_id=f"V{txn}",
                    currency="GBP", original_txn_id=txn)  # fmt: skip
            elif roll < 0.55:
                store = rng.choice(LOCATIONS[:2])
                add(Topic.POS, at, "return", store_id=store, register_id="R1", cashier_id="C1",
                    txn_id=f"R{next(counter)}", currency="GBP", items=[{"sku": sku, "qty": 1, "unit_price": 2.0}],
                    total=2.0, payment={"method": "cash"})  # fmt: skip
            elif roll < 0.75:
                location = rng.choice(LOCATIONS)
                order = f"O{next(counter)}"
                skus = sorted({sku, *rng.choices(SKUS, popularity, k=rng.randint(0, 2))})
                add(Topic.CLICKSTREAM, at, "purchase", session_id="s", channel="web", order_id=order,
                    items=[{"sku": s, "qty": rng.randint(1, 2), "unit_price": 3.0} for s in skus], total=9.0,
                    currency="GBP", fulfilment_location_id=location, payment={"method": "card"})  # fmt: skip
                orders.append((order, location, skus))
            elif roll < 0.80 and orders:
                order, location, skus = rng.choice(orders)
                if rng.random() < 0.5:
                    add(Topic.INVENTORY, at, "order_cancel", order_id=order)
                else:
                    add(Topic.INVENTORY, at, "order_cancel", order_id=order, sku=rng.choice(skus),
                        **({"location_id": location} if rng.random() < 0.5 else {}))  # fmt: skip
            elif roll < 0.85 and orders:
                order, location, skus = rng.choice(orders)
                add(Topic.INVENTORY, at, "fulfilment", sku=skus[0], location_id=location, order_id=order, qty=1)
            elif roll < 0.88:
                add(Topic.INVENTORY, at, "reservation", reservation_id=f"H{next(counter)}", sku=sku,
                    location_id=rng.choice(LOCATIONS), qty=rng.randint(1, 3), hold_s=1800.0)  # fmt: skip
            elif roll < 0.93:
                add(Topic.INVENTORY, at, "receipt", sku=sku, location_id=rng.choice(LOCATIONS), qty=rng.randint(10, 30))
            elif roll < 0.95:
                source, target = rng.sample(LOCATIONS, 2)
                add(Topic.INVENTORY, at, "transfer_out", sku=sku, location_id=source, qty=2, transfer_id="X",
                    peer_location_id=target)  # fmt: skip
                add(Topic.INVENTORY, at + timedelta(hours=1), "transfer_in", sku=sku, location_id=target, qty=2,
                    transfer_id="X", peer_location_id=source)  # fmt: skip
            elif roll < 0.97:
                add(Topic.INVENTORY, at, "adjustment", sku=sku, location_id=rng.choice(LOCATIONS), qty=-1,
                    reason="damage")  # fmt: skip
            else:  # a cycle count, dated up to two hours back: later movements apply on top
                add(Topic.INVENTORY, at - timedelta(seconds=rng.uniform(0, 7200)), "count", sku=sku,
                    location_id=rng.choice(LOCATIONS), on_hand=rng.randint(0, 20))  # fmt: skip
    # Read order: by time, with a tenth of the events up to 20 minutes late, and some redelivered.
    keyed = [(ts + (rng.uniform(0, 1200) if rng.random() < 0.1 else 0.0), i, topic, event)
             for i, (ts, topic, event) in enumerate(events)]  # fmt: skip
    keyed.sort(key=lambda row: (row[0], row[1]))
    records: list[KafkaRecord] = []
    offsets: dict[Topic, int] = {}
    for _, _, topic, event in keyed:
        for _ in range(2 if rng.random() < 0.03 else 1):
            offset = offsets[topic] = offsets.get(topic, -1) + 1
            records.append(KafkaRecord(settings.topic(topic), 0, offset, orjson.dumps(event)))
    return records
