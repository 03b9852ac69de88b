"""A simulated event log for the customers flow's oracle test: purchases in two channels, carts, declined
payments, views, consent changes and availability flips of a few hundred customers over ten days, with the
disorder of production (duplicates, cross-topic reordering, late events within the flow's lateness).

Every partition of every input topic gets an opening event at the start and a closing one at the end, so
the flow's event clock knows every partition from the first batch and passes the end on all of them: what
the oracle calls "the end of the log" is then the same time for both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from events.timestamps import rfc3339_ms
from events.topics import Topic

DAY = 86_400.0
START = 1793491200.0  # 2026-11-01T00:00:00Z
SPAN = 10 * DAY
END = START + SPAN + DAY  # the closing events: a day after the last activity
STORES = ("S1", "S2", "S3")
SKUS = tuple(f"SKU-{i:02d}" for i in range(40))
WATCHED = SKUS[:12]  # the SKUs whose availability flips
MAX_DELAY_S = 100.0  # below the test's lateness (120 s)


@dataclass
class Record:
    topic: Topic
    key: bytes | None
    value: bytes
    publish_at: float
    partition: int | None = None  # set only for the opening and closing events


@dataclass
class CustomerLog:
    """The log (in publish order) and the events it holds, parsed, for the oracle."""

    records: list[Record] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # each distinct event once (duplicates left out)
    duplicates: int = 0


def build(seed: int, n_customers: int, partitions: int, max_delay_s: float = MAX_DELAY_S) -> CustomerLog:
    """The log; `max_delay_s` scales the late events' delays (0: every partition in event-time order, the
    topics still read in whatever order the consumer fetches them, and retries still come later)."""
    rng = random.Random(seed)
    scale = max_delay_s / MAX_DELAY_S
    log = CustomerLog()
    n = 0

    def emit(topic: Topic, type_: str, ts: float, key: str, **fields: Any) -> str:
        nonlocal n
        n += 1
        event_id = f"e{n}"
        event = {"event_id": event_id, "type": type_, "ts": rfc3339_ms(ts), "schema_version": 1, **fields}
        value = orjson.dumps(event)
        roll = rng.random()
        delay = rng.uniform(0.0, 30.0) if roll < 0.3 else rng.uniform(60.0, MAX_DELAY_S) if roll < 0.32 else 0.0
        delay *= scale
        log.records.append(Record(topic, key.encode(), value, ts + delay))
        log.events.append({**event, "_topic": topic.value})
        if rng.random() < 0.02:  # the producer's retry: the same bytes again, a little later
            log.records.append(Record(topic, key.encode(), value, ts + delay + rng.uniform(0.5, 40.0)))
            log.duplicates += 1
        return event_id

    def click(type_: str, ts: float, user: str, **fields: Any) -> str:
        return emit(Topic.CLICKSTREAM, type_, ts, user, session_id=f"s-{user}", user_id=user, channel="web",
                    **fields)  # fmt: skip

    def sale(ts: float, store: str, customer: str, sku: str, price: float) -> None:
        emit(Topic.POS, "sale", ts, store, store_id=store, register_id="R1", cashier_id="K1", txn_id=f"T{n + 1}",
             currency="EUR", customer_id=customer, items=[{"sku": sku, "qty": 1, "unit_price": price}], total=price,
             payment={"method": "cash"})  # fmt: skip

    def order(ts: float, user: str, sku: str, price: float) -> None:
        click("purchase", ts, user, order_id=f"O{n + 1}", items=[{"sku": sku, "qty": 1, "unit_price": price}],
              total=price, currency="EUR", fulfilment_location_id="W1", payment={"method": "wallet"},
              shipping_country="DE")  # fmt: skip

    # Availability: each watched SKU flips between sellable and not at each store and the warehouse.
    for sku in WATCHED:
        for location in (*STORES, "W1"):
            t, sellable = START + rng.uniform(0, 600), rng.random() < 0.5
            while t < START + SPAN:
                change = {"sku": sku, "location_id": location, "sellable": sellable, "available": int(sellable),
                          "version": int(t), "ts": t}  # fmt: skip
                log.records.append(Record(Topic.AVAILABILITY, sku.encode(), orjson.dumps(change), t))
                log.events.append({**change, "_topic": Topic.AVAILABILITY.value})
                t += rng.uniform(0.3, 2.5) * DAY
                sellable = not sellable

    for c in range(n_customers):
        user = f"C{c:04d}"
        home = STORES[c % len(STORES)]
        # A first store visit on day 0 (their store is known before they browse), then a life of activity.
        t = START + rng.uniform(600, DAY / 2)
        sale(t, home, user, rng.choice(SKUS), round(rng.uniform(5, 60), 2))
        if rng.random() < 0.15:  # opts out at some point, some opt back in
            t_out = START + rng.uniform(0, SPAN)
            emit(Topic.CUSTOMERS, "consent", t_out, user, customer_id=user, marketing=False)
            if rng.random() < 0.4:
                emit(Topic.CUSTOMERS, "consent", t_out + rng.uniform(0.5, 3) * DAY, user, customer_id=user,
                     marketing=True)  # fmt: skip
        rate = rng.choice((0.3, 0.8, 2.0))  # activities per day
        quiet_from = START + rng.uniform(1, 4) * DAY if rng.random() < 0.3 else float("inf")
        quiet_until = quiet_from + rng.uniform(2.5, 5) * DAY
        t += 0.1 * DAY + rng.expovariate(rate) * DAY
        while t < START + SPAN:
            if quiet_from <= t < quiet_until:
                t = quiet_until
                continue
            sku, price = rng.choice(SKUS), round(rng.uniform(5, 120), 2)
            roll = rng.random()
            if roll < 0.3:
                sale(t, home, user, sku, price)
            elif roll < 0.45:
                order(t, user, sku, price)
            elif roll < 0.75:
                click("add_to_cart", t, user, sku=sku, qty=1)
                after = rng.random()
                if after < 0.3:
                    sale(t + rng.uniform(60, 1700), home, user, sku, price)  # bought in store within the window
                elif after < 0.45:
                    order(t + rng.uniform(60, 1700), user, sku, price)
                elif after < 0.55:
                    click("remove_from_cart", t + rng.uniform(30, 1500), user, sku=sku, qty=1)
                elif after < 0.62:
                    order(t + rng.uniform(1900, 4000), user, sku, price)  # bought, but after the window
            elif roll < 0.85:
                ref = f"P{c}-{int(t)}"
                common = {"payment_ref": ref, "amount": price, "currency": "EUR"}
                click("payment_result", t, user, status="declined", **common)
                after = rng.random()
                if after < 0.35:
                    click("payment_result", t + rng.uniform(30, 1500), user, status="approved", **common)
                elif after < 0.5:
                    sale(t + rng.uniform(60, 1700), home, user, sku, price)
            else:
                click("product_view", t, user, sku=rng.choice(WATCHED))
            t += rng.expovariate(rate) * DAY

    # Opening and closing events on every partition of every topic the flow reads.
    for edge, ts in (("open", START - 60.0), ("close", END)):
        for p in range(partitions):
            who = f"zz-{edge}-{p}"
            bodies = {
                Topic.CLICKSTREAM: {"type": "page_view", "session_id": who, "user_id": None, "channel": "web",
                                    "path": "/"},
                Topic.POS: {"type": "void", "store_id": who, "register_id": "R", "cashier_id": "K", "txn_id": who,
                            "currency": "EUR", "original_txn_id": who},
                Topic.CUSTOMERS: {"type": "consent", "customer_id": who, "marketing": True},
                Topic.AVAILABILITY: {"sku": who, "location_id": who, "sellable": True, "available": 1, "version": 1,
                                     "ts": ts},
            }  # fmt: skip
            for topic, body in bodies.items():
                if topic is not Topic.AVAILABILITY:
                    body = {"event_id": f"{who}-{topic.value}", "ts": rfc3339_ms(ts), "schema_version": 1, **body}
                record = Record(topic, None, orjson.dumps(body), ts if edge == "close" else -1.0, partition=p)
                log.records.append(record)
    log.records.sort(key=lambda r: r.publish_at)
    return log
