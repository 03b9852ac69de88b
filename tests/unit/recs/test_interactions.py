from __future__ import annotations

from datetime import UTC, datetime

from events.models import (
    AddToCart,
    LineItem,
    OnlinePayment,
    PageView,
    PosPayment,
    ProductUpsert,
    ProductView,
    Purchase,
    Receipt,
    Sale,
)
from operators.recs.catalog import CatalogItem
from operators.recs.interactions import Interaction, InteractionKind, actor_key, interactions_of

TS = datetime(2026, 11, 22, tzinfo=UTC)
CLICK = {"schema_version": 1, "session_id": "S-1", "channel": "app", "ts": TS}
TILL = {"schema_version": 1, "store_id": "STORE-01", "register_id": "R1", "cashier_id": "C1", "currency": "USD"}
TILL["ts"] = TS


def test_anonymous_view_is_keyed_by_session_and_keeps_attribution() -> None:
    view = ProductView(event_id="e1", sku="SKU-1", rec_request_id="rec-1", variant="blend", **CLICK)
    [interaction] = interactions_of(view)
    assert interaction.actor == "s:S-1"
    assert interaction.session == "s:S-1"
    assert (interaction.kind, interaction.channel, interaction.location_id) == (InteractionKind.VIEW, "app", None)
    assert (interaction.rec_request_id, interaction.variant) == ("rec-1", "blend")
    assert interaction.ts == TS.timestamp()


def test_cart_of_a_known_user_is_keyed_by_user() -> None:
    [interaction] = interactions_of(AddToCart(event_id="e2", sku="SKU-2", qty=2, user_id="U-1", **CLICK))
    assert (interaction.actor, interaction.kind) == ("u:U-1", InteractionKind.CART)


def test_purchase_gives_one_interaction_per_sku_at_the_fulfilment_location() -> None:
    order = Purchase(
        event_id="e3", order_id="O-1", total=3.0, currency="USD", fulfilment_location_id="WH-01",
        items=[LineItem("SKU-1", 1, 1.0), LineItem("SKU-2", 1, 1.0), LineItem("SKU-1", 1, 1.0)],
        payment=OnlinePayment(method="wallet"), user_id="U-1", **CLICK,
    )  # fmt: skip
    lines = interactions_of(order)
    assert [(i.sku, i.kind, i.location_id, i.event_id) for i in lines] == [
        ("SKU-1", InteractionKind.PURCHASE, "WH-01", "e3"),
        ("SKU-2", InteractionKind.PURCHASE, "WH-01", "e3"),
    ]


def test_loyalty_till_sale_counts_as_an_in_store_purchase() -> None:
    sale = Sale(event_id="e4", txn_id="T-1", customer_id="U-7", total=1.0, items=[LineItem("SKU-3", 1, 1.0)],
                payment=PosPayment(method="cash"), **TILL)  # fmt: skip
    [interaction] = interactions_of(sale)
    assert (interaction.actor, interaction.session, interaction.channel, interaction.location_id) == (
        "u:U-7", "t:T-1", "store", "STORE-01",
    )  # fmt: skip


def test_anonymous_till_sale_and_other_events_give_nothing() -> None:
    sale = Sale(event_id="e5", txn_id="T-2", total=1.0, items=[LineItem("SKU-3", 1, 1.0)],
                payment=PosPayment(method="cash"), **TILL)  # fmt: skip
    receipt = Receipt(event_id="e6", ts=TS, schema_version=1, sku="SKU-1", location_id="S1", qty=1)
    page = PageView(event_id="e7", path="/", **CLICK)
    assert interactions_of(sale) == interactions_of(receipt) == interactions_of(page) == []
    assert interactions_of(None) == interactions_of({"type": "product_view"}) == []


def test_actor_key_prefers_the_user() -> None:
    assert actor_key("U-1", "S-1") == "u:U-1"
    assert actor_key("", "S-1") == "s:S-1"


def test_catalog_enriches_with_category_and_drops_withdrawn_products() -> None:
    item = CatalogItem("SKU-1")
    interaction = Interaction("e1", 0.0, "u:U-1", "s:S-1", "SKU-1", InteractionKind.VIEW, "web")
    assert item.enrich(interaction) == interaction  # unknown yet: passes through
    upsert = ProductUpsert(event_id="p1", ts=TS, schema_version=1, sku="SKU-1", name="Kite", category="toys", price=1.0)
    item.apply(upsert)
    enriched = item.enrich(interaction)
    assert enriched is not None and enriched.category == "toys"
    item.apply(ProductUpsert(event_id="p2", ts=TS, schema_version=1, sku="SKU-1", name="Kite", category="toys",
                             price=1.0, active=False))  # fmt: skip
    assert item.enrich(interaction) is None
