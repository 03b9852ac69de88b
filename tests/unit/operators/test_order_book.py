"""The order book (`operators.order_book`): purchases and cancels in, line movements out, in any order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from events.models import LineItem, OnlinePayment, OrderCancel, Purchase
from operators.movements import Move, StockMovement
from operators.order_book import OrderBook

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def purchase(event_id: str, order_id: str, lines: list[tuple[str, int]], minute: int = 0,
             location_id: str = "W1") -> Purchase:  # fmt: skip
    return Purchase(event_id=event_id, ts=T0 + timedelta(minutes=minute), schema_version=1, session_id="s",
                    channel="web", order_id=order_id, items=[LineItem(sku, qty, 1.0) for sku, qty in lines],
                    total=1.0, currency="EUR", fulfilment_location_id=location_id,
                    payment=OnlinePayment(method="card"))  # fmt: skip


def cancel(event_id: str, order_id: str, minute: int = 1, **fields: Any) -> OrderCancel:
    return OrderCancel(event_id=event_id, ts=T0 + timedelta(minutes=minute), schema_version=1, order_id=order_id,
                       **fields)  # fmt: skip


def moves_of(book: OrderBook, events: list[Purchase | OrderCancel]) -> set[tuple[str, str, str, int, str]]:
    return {(m.sku, m.location_id, m.kind.name, m.qty, m.event_id) for e in events for m in book.apply(e)}


def test_every_arrival_order_sends_the_same_movements() -> None:
    events: list[Purchase | OrderCancel] = [
        purchase("p1", "O1", [("A", 2), ("B", 3), ("A", 1)]),
        cancel("c1", "O1"),
        cancel("c2", "O1", sku="B", qty=1),
        cancel("c3", "O1", sku="A", location_id="S9"),
    ]
    expected = {("A", "W1", "RESERVE", 3, "p1"), ("B", "W1", "RESERVE", 3, "p1"),
                ("A", "W1", "CANCEL", 0, "c1"), ("B", "W1", "CANCEL", 0, "c1"),
                ("B", "W1", "CANCEL", 1, "c2"), ("A", "S9", "CANCEL", 0, "c3")}  # fmt: skip
    for order in itertools.permutations(events):
        assert moves_of(OrderBook(), list(order)) == expected, order


def test_a_redelivered_purchase_or_cancel_sends_nothing() -> None:
    book = OrderBook()
    first = moves_of(book, [purchase("p1", "O1", [("A", 1)]), cancel("c1", "O1", sku="A", qty=1)])
    assert len(first) == 2
    assert moves_of(book, [purchase("p1", "O1", [("A", 1)]), cancel("c1", "O1", sku="A", qty=1)]) == set()


def test_a_whole_order_cancel_reaches_a_second_purchase_of_the_order_too() -> None:
    book = OrderBook()
    moves_of(book, [purchase("p1", "O1", [("A", 1)]), cancel("c1", "O1")])
    assert moves_of(book, [purchase("p2", "O1", [("B", 2)], location_id="S2")]) == {
        ("B", "S2", "RESERVE", 2, "p2"), ("B", "S2", "CANCEL", 0, "c1")}  # fmt: skip


def test_a_cancel_whose_purchase_never_comes_is_forgotten_and_counted() -> None:
    book = OrderBook(retention_s=3_600.0)
    assert book.apply(cancel("c1", "O1")) == [] and len(book) == 1
    book.apply(purchase("p9", "O9", [("A", 1)], minute=120))  # event time moves two hours on
    assert (len(book), book.unmatched_cancels) == (1, 1)
    assert book.apply(purchase("p1", "O1", [("A", 1)], minute=121))[0].kind is Move.RESERVE  # too late to cancel


def test_the_book_survives_its_snapshot() -> None:
    book = OrderBook()
    book.apply(cancel("c1", "O1"))
    restored = OrderBook.from_bytes(book.to_bytes())
    assert restored.apply(purchase("p1", "O1", [("A", 1)])) == [
        StockMovement("A", "W1", Move.RESERVE, 1, T0.timestamp(), "p1", "O1"),
        StockMovement("A", "W1", Move.CANCEL, 0, (T0 + timedelta(minutes=1)).timestamp(), "c1", "O1"),
    ]
