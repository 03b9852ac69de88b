"""The transaction book: absolute points after returns, voids, line and whole-order cancels, in any order."""

from __future__ import annotations

import itertools

from operators.loyalty.book import TxnBook
from operators.loyalty.records import Cancelled, Fulfilled, Line, Opened, Returned, ToBook, Voided
from operators.loyalty.rules import EarnRules

RULES = EarnRules("t", {"pos": 1000, "web": 2000, "app": 1000})
ORDER = Opened("O1", "C1", "web", 0.0, (Line("A", 4, 1000), Line("B", 2, 250)), "p")  # (40 + 5) x 2 = 90 points


def points_after(items: list[ToBook]) -> tuple[int, int]:
    book = TxnBook(RULES, retention_s=86_400 * 90)
    last = None
    for item in items:
        for out in book.apply([item]):
            last = (out.points, out.spend_cents)
    assert last is not None
    return last


def test_a_whole_order_cancel_keeps_only_what_was_fulfilled_in_any_order() -> None:
    actions: list[ToBook] = [Fulfilled("O1", "f1", 10.0, "A", 1), Cancelled("O1", "c1", 20.0, None, None)]
    for order in itertools.permutations([ORDER, *actions]):
        assert points_after(list(order)) == (20, 1000)  # 1 unit of A: 10.00 x 2


def test_a_partial_line_cancel_and_a_return_take_back_their_units() -> None:
    items: list[ToBook] = [ORDER, Cancelled("O1", "c1", 5.0, "A", 1), Returned("O1", "r1", 9.0, (("B", 1),))]
    assert points_after(items) == (65, 3250)  # 3 A and 1 B left: 32.50, x2 on the web = 65 points


def test_a_void_and_duplicates() -> None:
    sale = Opened("T1", "C1", "pos", 0.0, (Line("A", 1, 999),), "s")
    book = TxnBook(RULES, retention_s=86_400 * 90)
    assert [p.points for p in book.apply([sale, sale])] == [9]
    assert [p.points for p in book.apply([Voided("T1", "v", 1.0), Voided("T1", "v", 1.0)])] == [0]
    assert book.stats["duplicates"] == 2
