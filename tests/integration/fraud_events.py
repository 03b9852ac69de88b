"""Hand-made contract events for the fraud flow's tests: sales, purchases, labels, adjustments."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson

from events.timestamps import rfc3339_ms
from events.topics import Topic

T0 = 1763856000.0  # 2025-11-23T00:00:00Z, a Sunday: weeks of event time after it stay in the past (every flow
# refuses events dated ahead of the wall clock, `OMNISTREAM_MAX_FUTURE_S`)
RULES = Path(__file__).resolve().parents[2] / "deploy" / "fraud" / "rules.toml"
_ids = itertools.count(1)


def _envelope(kind: str, ts: float) -> dict[str, Any]:
    return {"event_id": f"ev-{next(_ids)}-{kind}", "type": kind, "ts": rfc3339_ms(ts), "schema_version": 1}


def sale(txn_id: str, ts: float, *, store: str = "STORE-01", register: str = "R1", total: float = 25.0,
         card_token: str | None = "tok_store_shopper", customer_id: str | None = None,
         entry_mode: str = "chip") -> tuple[Topic, bytes, bytes]:  # fmt: skip
    payment: dict[str, Any] = {"method": "card" if card_token else "cash"}
    if card_token:
        payment |= {"card_token": card_token, "card_bin": "411111", "entry_mode": entry_mode}
    event = _envelope("sale", ts) | {
        "store_id": store, "register_id": f"{store}-{register}", "cashier_id": f"{store}-C1", "txn_id": txn_id,
        "currency": "USD", "customer_id": customer_id,
        "items": [{"sku": "SKU-1", "qty": 1, "unit_price": total}], "total": total, "payment": payment,
    }  # fmt: skip
    return Topic.POS, store.encode(), orjson.dumps(event)


def purchase(order_id: str, ts: float, *, card_token: str, user_id: str | None = None, total: float = 40.0,
             ip_country: str = "US", billing_country: str = "US", shipping_country: str = "US",
             device_id: str | None = "D-1", session_id: str | None = None) -> tuple[Topic, bytes, bytes]:  # fmt: skip
    session_id = session_id or f"S-{order_id}"
    event = _envelope("purchase", ts) | {
        "session_id": session_id, "user_id": user_id, "device_id": device_id, "channel": "web",
        "ip_country": ip_country, "order_id": order_id, "currency": "USD", "fulfilment_location_id": "WH-01",
        "items": [{"sku": "SKU-1", "qty": 1, "unit_price": total}], "total": total,
        "payment": {"method": "card", "card_token": card_token, "card_bin": "411111",
                    "billing_country": billing_country},
        "shipping_country": shipping_country,
    }  # fmt: skip
    return Topic.CLICKSTREAM, (user_id or session_id).encode(), orjson.dumps(event)


def label(ts: float, *, txn_id: str | None = None, order_id: str | None = None,
          verdict: str = "fraud") -> tuple[Topic, bytes, bytes]:  # fmt: skip
    event = _envelope("fraud_label", ts) | {"label": verdict, "source": "chargeback"}
    if txn_id:
        event["txn_id"] = txn_id
    if order_id:
        event["order_id"] = order_id
    return Topic.LABELS, (txn_id or order_id or "").encode(), orjson.dumps(event)


def burst(card_token: str, start_ts: float, n: int, gap_s: float = 20.0, prefix: str = "BURST") -> list[Any]:
    """Card testing: `n` small guest orders on one card, `gap_s` apart, from one session (one partition: in order)."""
    return [purchase(f"{prefix}-{i}", start_ts + i * gap_s, card_token=card_token, total=1.0 + i % 3,
                     session_id=f"S-{prefix}") for i in range(n)]  # fmt: skip


def normal_shopper(user_id: str, card_token: str, start_ts: float, n: int = 4) -> list[Any]:
    """A registered shopper buying every few hours from home, same device, modest baskets."""
    return [purchase(f"{user_id}-O{i}", start_ts + i * 4 * 3600.0, card_token=card_token, user_id=user_id,
                     total=35.0 + 5 * i) for i in range(n)]  # fmt: skip
