"""One valid payload per event type of CONTRACT.md v1, keyed by topic and `type`.

Shared by the decode and model tests; each test copies a payload before changing it.
"""

from __future__ import annotations

import copy
from typing import Any

from events.models import (
    AddToCart,
    Adjustment,
    CheckoutStarted,
    Consent,
    Count,
    FraudLabel,
    Fulfilment,
    IdentityLink,
    OrderCancel,
    PageView,
    PaymentResult,
    PriceChange,
    ProductUpsert,
    ProductView,
    Purchase,
    Receipt,
    Redemption,
    RemoveFromCart,
    Reservation,
    Return,
    Sale,
    Search,
    TransferIn,
    TransferOut,
    Void,
    Weather,
)
from events.topics import Topic

TS = "2026-11-22T01:23:45.123Z"


def envelope(type_: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"{type_}-1", "type": type_, "ts": TS, "schema_version": 1, **fields}


def click(type_: str, **fields: Any) -> dict[str, Any]:
    return envelope(
        type_, session_id="sess-1", user_id="user-1", device_id="dev-1", channel="web", ip_country="DE", **fields
    )


def till(type_: str, **fields: Any) -> dict[str, Any]:
    return envelope(
        type_,
        store_id="S1",
        register_id="R1",
        cashier_id="C1",
        txn_id="T1",
        customer_id="cust-1",
        currency="EUR",
        **fields,
    )


def stock(type_: str, **fields: Any) -> dict[str, Any]:
    return envelope(type_, sku="SKU-1", location_id="S1", **fields)


BASKET = [{"sku": "SKU-1", "qty": 2, "unit_price": 4.5}, {"sku": "SKU-2", "qty": 1, "unit_price": 0.0}]
POS_PAYMENT = {"method": "card", "card_token": "tok_1", "card_bin": "411111", "entry_mode": "chip"}

# (topic, payload, the class it decodes to)
EXAMPLES: list[tuple[Topic, dict[str, Any], type]] = [
    (
        Topic.CATALOG,
        envelope(
            "product_upsert",
            sku="SKU-1",
            name="Kettle",
            category="kitchen",
            brand="Acme",
            price=29.99,
            attributes={"colour": "red"},
            active=True,
        ),
        ProductUpsert,
    ),
    (Topic.CATALOG, envelope("price_change", sku="SKU-1", price=24.99, currency="EUR"), PriceChange),
    (Topic.CLICKSTREAM, click("page_view", path="/home"), PageView),
    (Topic.CLICKSTREAM, click("search", query="kettle"), Search),
    (Topic.CLICKSTREAM, click("product_view", sku="SKU-1", rec_request_id="rec-1", variant="B"), ProductView),
    (Topic.CLICKSTREAM, click("add_to_cart", sku="SKU-1", qty=2), AddToCart),
    (Topic.CLICKSTREAM, click("remove_from_cart", sku="SKU-1", qty=1), RemoveFromCart),
    (Topic.CLICKSTREAM, click("checkout_started", cart_value=59.98), CheckoutStarted),
    (
        Topic.CLICKSTREAM,
        click(
            "purchase",
            order_id="O1",
            items=BASKET,
            total=9.0,
            currency="EUR",
            fulfilment_location_id="W1",
            payment={"method": "card", "card_token": "tok_1", "card_bin": "411111", "billing_country": "DE"},
            shipping_country="DE",
        ),
        Purchase,
    ),
    (Topic.POS, till("sale", items=BASKET, total=9.0, payment=POS_PAYMENT), Sale),
    (Topic.POS, till("return", items=BASKET, total=9.0, payment={"method": "cash"}, original_txn_id="T0"), Return),
    (Topic.POS, till("void", original_txn_id="T0"), Void),
    (Topic.INVENTORY, stock("receipt", qty=5), Receipt),
    (Topic.INVENTORY, stock("adjustment", qty=-2, reason="damage"), Adjustment),
    (Topic.INVENTORY, stock("transfer_out", qty=3, transfer_id="X1", peer_location_id="W1"), TransferOut),
    (Topic.INVENTORY, stock("transfer_in", qty=3, transfer_id="X1", peer_location_id="W1"), TransferIn),
    (Topic.INVENTORY, stock("count", on_hand=12), Count),
    (Topic.INVENTORY, stock("fulfilment", order_id="O1", qty=1), Fulfilment),
    (Topic.INVENTORY, stock("order_cancel", order_id="O1", qty=1), OrderCancel),
    (Topic.INVENTORY, stock("reservation", reservation_id="R1", qty=1, hold_s=900.0), Reservation),
    (Topic.LABELS, envelope("fraud_label", txn_id="T1", label="fraud", source="chargeback"), FraudLabel),
    (
        Topic.CLICKSTREAM,
        click(
            "payment_result", payment_ref="O1", status="declined", amount=9.0, currency="EUR", decline_code="declined"
        ),
        PaymentResult,
    ),
    (Topic.CUSTOMERS, envelope("consent", customer_id="cust-1", marketing=False, source="web"), Consent),
    (Topic.MEMBERS, envelope("identity_link", user_id="user-1", customer_id="cust-1", channel="web"), IdentityLink),
    (
        Topic.MEMBERS,
        envelope("redemption", customer_id="cust-1", redemption_id="rd_1", points=200, channel="web", order_ref="O1"),
        Redemption,
    ),
    (
        Topic.WEATHER,
        envelope(
            "weather", location_id="S1", day="2026-11-23", kind="forecast", temperature_c=4.5, precipitation_mm=0.5
        ),
        Weather,
    ),
]

INPUT_TOPICS = (
    Topic.CATALOG,
    Topic.CLICKSTREAM,
    Topic.POS,
    Topic.INVENTORY,
    Topic.LABELS,
    Topic.CUSTOMERS,
    Topic.MEMBERS,
    Topic.WEATHER,
)


def example(type_: str) -> dict[str, Any]:
    """A fresh copy of the valid payload of `type_`."""
    for _, payload, _ in EXAMPLES:
        if payload["type"] == type_:
            return copy.deepcopy(payload)
    raise KeyError(type_)
