"""Small builders of payments, till actions and decoded events for the fraud engine's tests."""

from __future__ import annotations

from typing import Any

import orjson

from events.decode import decode
from events.models import Event
from events.timestamps import rfc3339_ms
from events.topics import Topic
from operators.fraud.payments import Payment, TillAction

T0 = 1795305600.0


def online(
    ts: float = 0.0,
    amount: float = 50.0,
    *,
    payment_id: str = "O-1",
    card_token: str | None = "tok_a",
    user_id: str | None = "U-1",
    device_id: str | None = "D-1",
    ip_country: str | None = "US",
    billing_country: str | None = "US",
    shipping_country: str | None = "US",
) -> Payment:
    return Payment(
        payment_id, "order_id", T0 + ts, amount, "USD", "card", card_token, "411111", None, "web", user_id,
        device_id, ip_country, billing_country, shipping_country, None, None, None, f"ev-{payment_id}",
    )  # fmt: skip


def till(
    ts: float = 0.0,
    amount: float = 20.0,
    *,
    payment_id: str = "T-1",
    card_token: str | None = "tok_a",
    entry_mode: str | None = "chip",
    store_id: str = "S1",
    customer_id: str | None = None,
) -> Payment:
    return Payment(
        payment_id, "txn_id", T0 + ts, amount, "USD", "card", card_token, "424242", entry_mode, "store",
        customer_id, None, None, None, None, store_id, f"{store_id}-R1", "C-1", f"ev-{payment_id}",
    )  # fmt: skip


def action(
    kind: str, ts: float, *, cashier_id: str = "C-1", with_receipt: bool = False, txn_id: str = "T"
) -> TillAction:
    return TillAction(kind, txn_id, T0 + ts, 20.0, "S1", "S1-R1", cashier_id, with_receipt, f"ev-{txn_id}")  # type: ignore[arg-type]


def event(topic: Topic, event_type: str, ts: float, event_id: str, **fields: Any) -> Event:
    raw = orjson.dumps({"event_id": event_id, "type": event_type, "ts": rfc3339_ms(T0 + ts), "schema_version": 1}
                       | fields)  # fmt: skip
    decoded = decode(topic, raw, source_topic=topic.value, partition=0, offset=0)
    assert not hasattr(decoded, "dlq_id"), decoded
    return decoded  # type: ignore[return-value]


def purchase_event(ts: float, order_id: str, *, card_token: str = "tok_a", total: float = 30.0,
                   ip_country: str = "US", billing_country: str = "US", user_id: str | None = None,
                   event_id: str | None = None) -> Event:  # fmt: skip
    return event(
        Topic.CLICKSTREAM, "purchase", ts, event_id or f"ev-{order_id}", session_id=f"S-{order_id}",
        channel="web", user_id=user_id, device_id="D-9", ip_country=ip_country, order_id=order_id,
        items=[{"sku": "SKU-1", "qty": 1, "unit_price": total}], total=total, currency="USD",
        fulfilment_location_id="WH-01", shipping_country=ip_country,
        payment={"method": "card", "card_token": card_token, "card_bin": "411111", "billing_country": billing_country},
    )  # fmt: skip


def sale_event(ts: float, txn_id: str, *, store_id: str = "S1", register_id: str = "S1-R1", total: float = 25.0,
               card_token: str | None = "tok_s", entry_mode: str = "chip") -> Event:  # fmt: skip
    payment: dict[str, Any] = {"method": "cash"}
    if card_token is not None:
        payment = {"method": "card", "card_token": card_token, "card_bin": "424242", "entry_mode": entry_mode}
    return event(
        Topic.POS, "sale", ts, f"ev-{txn_id}", store_id=store_id, register_id=register_id, cashier_id="C-1",
        txn_id=txn_id, currency="USD", items=[{"sku": "SKU-1", "qty": 1, "unit_price": total}], total=total,
        payment=payment,
    )  # fmt: skip
