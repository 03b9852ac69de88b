"""Orders through the real inventory flow: whole-order and partial cancels, exact in any arrival order.

Real broker, real Redis, real Bytewax processes (tests/conftest.py). The
expectation is `tests/e2e/expected_orders.py`, an oracle written from
CONTRACT.md "Orders" that shares no code with the flow.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis

from events.timestamps import rfc3339_ms
from events.topics import Topic
from omnistream.settings import Settings
from operators.orders import order_document
from sim.workload import Workload
from state import keys
from state.order_writer import LINE_FIELD_PREFIX
from tests.e2e.expected_orders import ExpectedOrders
from tests.harness.flows import publish, run_to_end, start, stock_hashes

pytestmark = pytest.mark.integration

Record = tuple[Topic, bytes, bytes]
START = datetime(2026, 11, 22, tzinfo=UTC).timestamp()
LOCATIONS = ("WH-01", "STORE-01", "STORE-02")


def _event(event_id: str, type_: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "ts": rfc3339_ms(ts), "schema_version": 1, **fields}


def crafted_orders(n_orders: int, seed: int) -> tuple[list[Record], dict[str, int]]:
    """A log of orders with every fate a cancel can meet, published out of order, with duplicates.

    Returns the records in publish order and how many of each disorder the log holds
    (so that the test can insist the log really exercises it).
    """
    rng = random.Random(seed)
    pool = [f"OSKU-{n:03d}" for n in range(60)]
    timed: list[tuple[float, Record]] = []
    disorder = {"cancel_before_purchase": 0, "late": 0, "duplicates": 0, "whole": 0, "partial": 0, "no_location": 0}
    ids = iter(range(1, 10**9))
    for n in range(n_orders):
        order_id, location = f"CO-{seed}-{n}", rng.choice(LOCATIONS)
        lines = [(sku, rng.randint(1, 4)) for sku in rng.sample(pool, rng.randint(1, 3))]
        t0 = START + n * 3.0
        items = [{"sku": sku, "qty": qty, "unit_price": 2.5} for sku, qty in lines]
        purchase = _event(f"oe-{next(ids)}", "purchase", t0, session_id=f"s-{n}", channel="web", user_id=f"u-{n}",
                          order_id=order_id, items=items, total=2.5 * sum(q for _, q in lines), currency="EUR",
                          fulfilment_location_id=location, payment={"method": "card"})  # fmt: skip
        later: list[dict[str, Any]] = []
        at = t0 + rng.uniform(5.0, 60.0)
        fate = rng.random()
        if fate < 0.25:  # picked in full
            later += [_event(f"oe-{next(ids)}", "fulfilment", at, sku=s, location_id=location, order_id=order_id, qty=q)
                      for s, q in lines]  # fmt: skip
        elif fate < 0.50:  # the whole order cancelled in one message
            later.append(_event(f"oe-{next(ids)}", "order_cancel", at, order_id=order_id))
            disorder["whole"] += 1
        elif fate < 0.70:  # picked in part, then the rest of the order cancelled in one message
            sku, qty = lines[0]
            later.append(_event(f"oe-{next(ids)}", "fulfilment", at, sku=sku, location_id=location, order_id=order_id,
                                qty=max(1, qty - 1)))  # fmt: skip
            later.append(_event(f"oe-{next(ids)}", "order_cancel", at + 30.0, order_id=order_id))
            disorder["whole"] += 1
        elif fate < 0.85:  # part of a line cancelled (twice, sometimes beyond what remains), the rest picked
            sku, qty = lines[0]
            for _ in range(rng.randint(1, 2)):
                later.append(_event(f"oe-{next(ids)}", "order_cancel", at, order_id=order_id, sku=sku,
                                    qty=rng.randint(1, qty)))  # fmt: skip
                disorder["partial"] += 1
            later += [_event(f"oe-{next(ids)}", "fulfilment", at + 60.0, sku=s, location_id=location,
                             order_id=order_id, qty=1) for s, _ in lines]  # fmt: skip
        elif fate < 0.95:  # line by line, some without their location
            for sku, _ in lines:
                fields: dict[str, Any] = {"order_id": order_id, "sku": sku}
                if rng.random() < 0.5:
                    fields["location_id"] = location
                else:
                    disorder["no_location"] += 1
                later.append(_event(f"oe-{next(ids)}", "order_cancel", at, **fields))
        # else: still open
        events = [(Topic.CLICKSTREAM, f"u-{n}", purchase)]
        events += [(Topic.INVENTORY, e["order_id"] if e["type"] == "order_cancel" else e["sku"], e) for e in later]
        for topic, key, event in events:
            publish_at = orjson.loads(orjson.dumps(event))  # a copy for the record's bytes
            ts = datetime.fromisoformat(event["ts"]).timestamp()
            roll = rng.random()
            if roll < 0.15 and event["type"] != "purchase":
                at_publish = t0 - rng.uniform(1.0, 120.0)  # published before the purchase
                disorder["cancel_before_purchase"] += event["type"] == "order_cancel"
            elif roll < 0.25:
                at_publish = ts + rng.uniform(600.0, 3_000.0)  # late: published long after it happened
                disorder["late"] += 1
            else:
                at_publish = ts
            record = (topic, key.encode(), orjson.dumps(publish_at))
            timed.append((at_publish, record))
            if rng.random() < 0.05:
                timed.append((at_publish + rng.uniform(0.0, 600.0), record))  # the producer retried
                disorder["duplicates"] += 1
    timed.sort(key=lambda pair: pair[0])
    return [record for _, record in timed], disorder


def interleave(a: list[Record], b: list[Record], seed: int) -> Iterator[Record]:
    """Both logs, each in its own order, mixed at random."""
    rng = random.Random(seed)
    i = j = 0
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and rng.random() < len(a) / (len(a) + len(b))):
            yield a[i]
            i += 1
        else:
            yield b[j]
            j += 1


def expected_from(records: list[Record], malformed: set[bytes]) -> ExpectedOrders:
    """The oracle fed every valid record (the simulator flags the malformed ones)."""
    oracle = ExpectedOrders()
    for topic, _, value in records:
        if value not in malformed:
            oracle.add(topic.value, orjson.loads(value))
    return oracle


def stored_orders(redis_url: str) -> dict[str, dict[str, Any]]:
    """Every order the flow stored, as `GET /v1/orders/{order_id}` serves it."""
    client = redis.Redis.from_url(redis_url)
    prefix = LINE_FIELD_PREFIX.encode()
    orders = {}
    for key in client.scan_iter(match=keys.order("*"), count=1000):
        order_id = key.decode().split("{", 1)[1].rstrip("}")
        lines = [value for name, value in client.hgetall(key).items() if name.startswith(prefix)]
        orders[order_id] = orjson.loads(order_document(order_id, lines))
    return orders


def differences(oracle: ExpectedOrders, stored: dict[str, dict[str, Any]]) -> list[str]:
    """Key by key: every order the oracle expects against what the flow stored, and nothing else."""
    problems = []
    expected_ids = set(oracle.order_ids())
    for order_id in sorted(stored.keys() - expected_ids):
        problems.append(f"{order_id}: stored, not expected: {stored[order_id]}")
    for order_id in sorted(expected_ids):
        status, lines = oracle.order(order_id)
        want = {line: (e.purchased, e.reserved, e.fulfilled, e.cancelled) for line, e in lines.items()}
        doc = stored.get(order_id)
        if doc is None:
            problems.append(f"{order_id}: expected {status} {want}, not stored")
            continue
        got = {(x["sku"], x["location_id"]): (x["purchased"], x["reserved"], x["fulfilled"], x["cancelled"])
               for x in doc["lines"]}  # fmt: skip
        if (doc["status"], got) != (status, want):
            problems.append(f"{order_id}: expected {status} {want}, stored {doc['status']} {got}")
    return problems


def test_a_three_line_order_cancelled_with_one_event_keeps_nothing_reserved(settings: Settings) -> None:
    purchase = _event("p1", "purchase", START, session_id="s1", channel="web", order_id="O-3", currency="EUR",
                      items=[{"sku": s, "qty": 2, "unit_price": 1.0} for s in ("A", "B", "C")], total=6.0,
                      fulfilment_location_id="WH-01", payment={"method": "card"})  # fmt: skip
    receipts = [_event(f"r{s}", "receipt", START - 60, sku=s, location_id="WH-01", qty=5) for s in ("A", "B", "C")]
    cancel = _event("c1", "order_cancel", START + 60, order_id="O-3")
    publish(settings, [*((Topic.INVENTORY, r["sku"].encode(), orjson.dumps(r)) for r in receipts),
                       (Topic.CLICKSTREAM, b"s1", orjson.dumps(purchase)),
                       (Topic.INVENTORY, b"O-3", orjson.dumps(cancel))])  # fmt: skip
    run_to_end(settings)

    stock = stock_hashes(settings.redis.url)
    for sku in ("A", "B", "C"):
        doc = orjson.loads(stock[keys.stock(sku)][keys.STOCK_DOC_FIELD.encode()])
        assert (doc["total_on_hand"], doc["total_reserved"], doc["total_available"]) == (5, 0, 5), doc
    order = stored_orders(settings.redis.url)["O-3"]
    assert order["status"] == "cancelled"
    assert [(x["sku"], x["reserved"], x["cancelled"]) for x in order["lines"]] == [("A", 0, 2), ("B", 0, 2),
                                                                                  ("C", 0, 2)]  # fmt: skip


def test_order_state_matches_the_oracle_key_by_key_through_disorder_and_sigkills(settings: Settings) -> None:
    crafted, disorder = crafted_orders(1_500, seed=23)
    assert all(n > 20 for n in disorder.values()), disorder  # the log really holds every kind of disorder
    workload = Workload(seed=29, n_skus=300, n_stores=6, n_warehouses=2, n_users=500, early_order_rate=0.2,
                        duplicate_rate=0.02)  # fmt: skip
    sim_records = [r for r in workload.records(120_000) if r.topic in (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM)]
    simulated = [(r.topic, r.key or b"", r.value) for r in sim_records]
    records = list(interleave(simulated, crafted, seed=31))
    oracle = expected_from(records, {r.value for r in sim_records if r.malformed})
    assert len(oracle.order_ids()) > 2_000
    statuses = {oracle.order(order_id)[0] for order_id in oracle.order_ids()}
    assert statuses >= {"open", "partially_fulfilled", "fulfilled", "cancelled", "closed"}, statuses
    publish(settings, records)

    rng = random.Random(5)
    kills = 0
    for _ in range(3):
        before = stock_hashes(settings.redis.url)
        run = start(settings)
        deadline = time.monotonic() + 120
        while stock_hashes(settings.redis.url) == before and run.alive():  # past start-up and the last replay
            assert time.monotonic() < deadline, f"no progress in 120 s before kill {kills + 1}"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.4))
        if not run.alive():
            break
        run.kill()  # SIGKILL: no chance to flush or snapshot
        kills += 1
    assert kills >= 2, "the flow finished before it could be killed twice: make the log longer"
    run_to_end(settings)

    problems = differences(oracle, stored_orders(settings.redis.url))
    assert not problems, f"{len(problems)} orders differ from the oracle, first 10:\n" + "\n".join(problems[:10])
