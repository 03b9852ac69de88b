"""`events.models`: one frozen struct per event `type`, named after it, with the contract's rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from events.decode import EVENT_TYPES, decode
from events.models import Adjustment, Envelope, FraudLabel, LineItem, OrderCancel, Receipt, event_type
from events.topics import Topic
from tests.unit.events.examples import EXAMPLES

TS = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
IDS = [p["type"] for _, p, _ in EXAMPLES]


@pytest.mark.parametrize(("topic", "payload", "cls"), EXAMPLES, ids=IDS)
def test_event_type_is_the_contracts_type(topic: Topic, payload: dict[str, Any], cls: type) -> None:
    event = msgspec.convert(payload, cls)

    assert event_type(event) == payload["type"]


@pytest.mark.parametrize(("topic", "payload", "cls"), EXAMPLES, ids=IDS)
def test_event_encodes_with_its_type_and_decodes_back_equal(topic: Topic, payload: dict[str, Any], cls: type) -> None:
    event = msgspec.convert(payload, cls)

    raw = msgspec.json.encode(event)

    assert msgspec.json.decode(raw)["type"] == payload["type"]
    assert decode(topic, raw, source_topic="t", partition=0, offset=0) == event


def test_every_contract_type_has_one_class_on_one_topic() -> None:
    tags = {
        topic: sorted(event_type(msgspec.convert(p, c)) for t, p, c in EXAMPLES if t == topic) for topic in EVENT_TYPES
    }

    assert tags == {
        Topic.CATALOG: ["price_change", "product_upsert"],
        Topic.CLICKSTREAM: [
            "add_to_cart",
            "checkout_started",
            "page_view",
            "payment_result",
            "product_view",
            "purchase",
            "remove_from_cart",
            "search",
        ],
        Topic.POS: ["return", "sale", "void"],
        Topic.INVENTORY: [
            "adjustment",
            "count",
            "fulfilment",
            "order_cancel",
            "receipt",
            "reservation",
            "transfer_in",
            "transfer_out",
        ],
        Topic.LABELS: ["fraud_label"],
        Topic.CUSTOMERS: ["consent"],
        Topic.MEMBERS: ["identity_link", "redemption"],
        Topic.WEATHER: ["weather"],
    }


@pytest.mark.parametrize(("topic", "payload", "cls"), EXAMPLES, ids=IDS)
def test_event_classes_are_frozen_envelopes(topic: Topic, payload: dict[str, Any], cls: type) -> None:
    event = msgspec.convert(payload, cls)

    assert isinstance(event, Envelope)
    with pytest.raises(AttributeError):
        event.event_id = "changed"


def test_an_order_cancel_names_an_order_or_one_line_of_it() -> None:
    whole = OrderCancel(event_id="e1", ts=TS, schema_version=1, order_id="O1")
    part = OrderCancel(event_id="e2", ts=TS, schema_version=1, order_id="O1", sku="SKU-1", qty=2)

    assert (whole.sku, whole.location_id, whole.qty) == (None, None, None)
    assert (part.sku, part.location_id, part.qty) == ("SKU-1", None, 2)
    with pytest.raises(ValueError, match="needs `sku`"):
        OrderCancel(event_id="e3", ts=TS, schema_version=1, order_id="O1", qty=2)
    with pytest.raises(ValueError, match="needs `sku`"):
        OrderCancel(event_id="e4", ts=TS, schema_version=1, order_id="O1", location_id="S1")


def test_adjustment_of_zero_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="!= 0"):
        Adjustment(event_id="e1", ts=TS, schema_version=1, sku="SKU-1", location_id="S1", qty=0, reason="correction")


def test_fraud_label_without_txn_id_or_order_id_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="`txn_id` or `order_id`"):
        FraudLabel(event_id="e1", ts=TS, schema_version=1, label="fraud", source="chargeback")


def test_fraud_label_with_order_id_only_is_built() -> None:
    label = FraudLabel(event_id="e1", ts=TS, schema_version=1, label="legit", source="manual_review", order_id="O1")

    assert (label.txn_id, label.order_id) == (None, "O1")


def test_line_item_is_positional_sku_qty_unit_price() -> None:
    assert LineItem("SKU-1", 2, 4.5) == LineItem(sku="SKU-1", qty=2, unit_price=4.5)


def test_convert_applies_the_same_rules_as_decode() -> None:
    payload = {
        "event_id": "e1",
        "type": "receipt",
        "ts": "2026-11-22T01:00:00Z",
        "schema_version": 1,
        "sku": "SKU-1",
        "location_id": "S1",
        "qty": 0,
    }

    with pytest.raises(msgspec.ValidationError, match=r"Expected `int` >= 1 - at `\$.qty`"):
        msgspec.convert(payload, Receipt)
