"""`operators.movements`: what each inventory event and online purchase does to one stock record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from events.models import (
    Adjustment,
    Count,
    Fulfilment,
    LineItem,
    OnlinePayment,
    OrderCancel,
    PosPayment,
    Purchase,
    Receipt,
    Reservation,
    Sale,
    TransferIn,
    TransferOut,
)
from operators.movements import Move, StockMovement, inventory_movement, purchase_movements, qty_by_sku

TS = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
EPOCH = TS.timestamp()
STOCK: dict[str, Any] = {"ts": TS, "schema_version": 1, "sku": "SKU-1", "location_id": "S1"}
SOURCE = ("omni.inventory", 3, 1234, b'{"type":"count"}')


def purchase(*items: LineItem, location: str = "W1") -> Purchase:
    return Purchase(
        event_id="buy-1",
        ts=TS,
        schema_version=1,
        session_id="sess-1",
        channel="app",
        order_id="O1",
        items=list(items),
        total=1.0,
        currency="EUR",
        fulfilment_location_id=location,
        payment=OnlinePayment(method="card", card_token="tok"),
    )


def test_receipt_raises_on_hand() -> None:
    move = inventory_movement(Receipt(event_id="e1", qty=5, **STOCK))

    assert move == StockMovement("SKU-1", "S1", Move.ON_HAND, 5, EPOCH, "e1")


def test_transfer_in_raises_on_hand() -> None:
    move = inventory_movement(TransferIn(event_id="e1", qty=4, transfer_id="X1", peer_location_id="W1", **STOCK))

    assert move == StockMovement("SKU-1", "S1", Move.ON_HAND, 4, EPOCH, "e1")


def test_transfer_out_lowers_on_hand() -> None:
    move = inventory_movement(TransferOut(event_id="e1", qty=4, transfer_id="X1", peer_location_id="W1", **STOCK))

    assert move == StockMovement("SKU-1", "S1", Move.ON_HAND, -4, EPOCH, "e1")


@pytest.mark.parametrize("qty", [-3, 2])
def test_adjustment_changes_on_hand_by_its_signed_qty(qty: int) -> None:
    move = inventory_movement(Adjustment(event_id="e1", qty=qty, reason="correction", **STOCK))

    assert move == StockMovement("SKU-1", "S1", Move.ON_HAND, qty, EPOCH, "e1")


def test_count_is_absolute_and_keeps_its_source() -> None:
    move = inventory_movement(Count(event_id="e1", on_hand=12, **STOCK), SOURCE)

    assert move == StockMovement("SKU-1", "S1", Move.COUNT, 12, EPOCH, "e1", None, SOURCE)


def test_count_of_zero_is_a_count() -> None:
    move = inventory_movement(Count(event_id="e1", on_hand=0, **STOCK))

    assert (move.kind, move.qty, move.source) == (Move.COUNT, 0, None)


def test_movement_keeps_source_on_counts_only() -> None:
    move = inventory_movement(Receipt(event_id="e1", qty=5, **STOCK), SOURCE)

    assert move.source is None


def test_fulfilment_carries_its_order_id() -> None:
    move = inventory_movement(Fulfilment(event_id="e1", order_id="O7", qty=2, **STOCK))

    assert move == StockMovement("SKU-1", "S1", Move.FULFIL, 2, EPOCH, "e1", "O7")


def test_an_order_cancel_is_not_a_movement_of_its_own() -> None:
    # It may name a whole order: the order book (operators.order_book) turns it into movements.
    with pytest.raises(TypeError, match="OrderCancel"):
        inventory_movement(OrderCancel(event_id="e1", order_id="O7", **STOCK))  # type: ignore[arg-type]


def test_a_reservation_holds_its_qty_under_its_id_until_ts_plus_hold() -> None:
    move = inventory_movement(Reservation(event_id="e1", reservation_id="R7", qty=2, hold_s=900.0, **STOCK))

    assert move == StockMovement("SKU-1", "S1", Move.HOLD, 2, EPOCH, "e1", "R7", None, EPOCH + 900.0)


def test_movement_ts_is_epoch_seconds_whatever_the_offset() -> None:
    plus_two = TS.astimezone(timezone(timedelta(hours=2)))

    move = inventory_movement(Receipt(event_id="e1", qty=1, **{**STOCK, "ts": plus_two}))

    assert move.ts == EPOCH == 1_795_309_200.0


def test_inventory_movement_refuses_a_pos_event() -> None:
    sale = Sale(
        event_id="e1",
        ts=TS,
        schema_version=1,
        store_id="S1",
        register_id="R1",
        cashier_id="C1",
        txn_id="T1",
        currency="EUR",
        items=[LineItem("SKU-1", 1, 1.0)],
        total=1.0,
        payment=PosPayment(method="cash"),
    )

    with pytest.raises(TypeError, match="not an inventory event: Sale"):
        inventory_movement(sale)  # type: ignore[arg-type]


def test_purchase_reserves_each_sku_at_the_fulfilment_location() -> None:
    order = purchase(LineItem("SKU-1", 2, 1.0), LineItem("SKU-2", 1, 1.0), location="W9")

    assert purchase_movements(order) == [
        StockMovement("SKU-1", "W9", Move.RESERVE, 2, EPOCH, "buy-1", "O1"),
        StockMovement("SKU-2", "W9", Move.RESERVE, 1, EPOCH, "buy-1", "O1"),
    ]


def test_purchase_with_two_lines_of_one_sku_is_one_movement_of_the_sum() -> None:
    order = purchase(LineItem("SKU-1", 2, 1.0), LineItem("SKU-2", 1, 1.0), LineItem("SKU-1", 3, 0.5))

    assert purchase_movements(order) == [
        StockMovement("SKU-1", "W1", Move.RESERVE, 5, EPOCH, "buy-1", "O1"),
        StockMovement("SKU-2", "W1", Move.RESERVE, 1, EPOCH, "buy-1", "O1"),
    ]


def test_qty_by_sku_sums_per_sku_in_first_seen_order() -> None:
    items = [LineItem("B", 1, 1.0), LineItem("A", 2, 1.0), LineItem("B", 4, 2.0)]

    assert list(qty_by_sku(items).items()) == [("B", 5), ("A", 2)]
