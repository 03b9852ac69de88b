"""Contract events for the loyalty tests, as (topic, key, JSON bytes): built by hand, not by the code under test."""

from __future__ import annotations

from typing import Any

import orjson

from events.timestamps import rfc3339_ms
from events.topics import Topic

T0 = 1732406400.0  # 2024-11-24T00:00:00Z, a Sunday: outside the sample rules' campaign window, and the 445 days of
# event time after it in the longest test (tests/integration/test_loyalty_oracle.py) stay in the past: every flow
# refuses events dated ahead of the wall clock (`OMNISTREAM_MAX_FUTURE_S`)
DAY = 86_400.0

Record = tuple[Topic, bytes, bytes]


def _env(event_id: str, kind: str, ts: float) -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "ts": rfc3339_ms(ts), "schema_version": 1}


def _lines(lines: list[tuple[str, int, float]]) -> list[dict[str, Any]]:
    return [{"sku": sku, "qty": qty, "unit_price": price} for sku, qty, price in lines]


def sale(txn: str, customer: str | None, ts: float, lines: list[tuple[str, int, float]], store: str = "S1") -> Record:
    body = {**_env(f"e-{txn}", "sale", ts), "store_id": store, "register_id": "R1", "cashier_id": "K1",
            "txn_id": txn, "currency": "EUR", "items": _lines(lines),
            "total": round(sum(q * p for _, q, p in lines), 2), "payment": {"method": "cash"}}  # fmt: skip
    if customer is not None:
        body["customer_id"] = customer
    return Topic.POS, store.encode(), orjson.dumps(body)


def return_(event_id: str, original: str, ts: float, lines: list[tuple[str, int, float]], store: str = "S1") -> Record:
    body = {**_env(event_id, "return", ts), "store_id": store, "register_id": "R1", "cashier_id": "K1",
            "txn_id": f"RET-{event_id}", "currency": "EUR", "items": _lines(lines),
            "total": round(sum(q * p for _, q, p in lines), 2), "payment": {"method": "cash"},
            "original_txn_id": original}  # fmt: skip
    return Topic.POS, store.encode(), orjson.dumps(body)


def void(event_id: str, original: str, ts: float, store: str = "S1") -> Record:
    body = {**_env(event_id, "void", ts), "store_id": store, "register_id": "R1", "cashier_id": "K1",
            "txn_id": f"V-{event_id}", "currency": "EUR", "original_txn_id": original}  # fmt: skip
    return Topic.POS, store.encode(), orjson.dumps(body)


def purchase(order: str, user: str, ts: float, lines: list[tuple[str, int, float]], channel: str = "web",
             **utm: str) -> Record:  # fmt: skip
    body = {**_env(f"e-{order}", "purchase", ts), "session_id": f"sess-{order}", "channel": channel,
            "user_id": user, "order_id": order, "items": _lines(lines),
            "total": round(sum(q * p for _, q, p in lines), 2), "currency": "EUR",
            "fulfilment_location_id": "WH-01", "payment": {"method": "wallet"}, **utm}  # fmt: skip
    return Topic.CLICKSTREAM, user.encode(), orjson.dumps(body)


def order_cancel(event_id: str, order: str, ts: float, sku: str, location: str = "WH-01") -> Record:
    body = {**_env(event_id, "order_cancel", ts), "sku": sku, "location_id": location, "order_id": order}
    return Topic.INVENTORY, sku.encode(), orjson.dumps(body)


def fulfilment(event_id: str, order: str, ts: float, sku: str, qty: int, location: str = "WH-01") -> Record:
    body = {**_env(event_id, "fulfilment", ts), "sku": sku, "location_id": location, "order_id": order, "qty": qty}
    return Topic.INVENTORY, sku.encode(), orjson.dumps(body)


def product(sku: str, category: str, ts: float = T0 - DAY) -> Record:
    body = {**_env(f"p-{sku}", "product_upsert", ts), "sku": sku, "name": sku, "category": category, "price": 1.0}
    return Topic.CATALOG, sku.encode(), orjson.dumps(body)


def link(user: str, customer: str, ts: float, event_id: str | None = None) -> Record:
    body = {**_env(event_id or f"l-{user}", "identity_link", ts), "user_id": user, "customer_id": customer,
            "channel": "web"}  # fmt: skip
    return Topic.MEMBERS, user.encode(), orjson.dumps(body)


def redemption(rid: str, customer: str, points: int, ts: float) -> Record:
    body = {**_env(f"r-{rid}", "redemption", ts), "customer_id": customer, "redemption_id": rid, "points": points,
            "channel": "web"}  # fmt: skip
    return Topic.MEMBERS, customer.encode(), orjson.dumps(body)


def page_view(event_id: str, user: str | None, session: str, ts: float, **utm: str) -> Record:
    body = {**_env(event_id, "page_view", ts), "session_id": session, "channel": "web", "path": "/", **utm}
    if user is not None:
        body["user_id"] = user
    return Topic.CLICKSTREAM, (user or session).encode(), orjson.dumps(body)
