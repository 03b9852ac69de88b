"""The end-to-end oracle (`tests/e2e/expected_stock.py`) on hand-written cases, one contract rule each.

The oracle is the yardstick of the end-to-end test, so it is checked on its
own: every expected number below is worked out by hand from CONTRACT.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tests.e2e.expected_stock import ExpectedStock, expected_levels

_ids = iter(range(1, 1_000_000))


def at(minute: int, second: int = 0) -> str:
    return f"2026-11-22T01:{minute:02d}:{second:02d}.000Z"


def inv(type_: str, minute: int, sku: str = "A", location_id: str = "S1", *, event_id: str | None = None,
        **fields: Any) -> tuple[str, dict[str, Any]]:  # fmt: skip
    event = {"event_id": event_id or f"e{next(_ids)}", "type": type_, "ts": at(minute), "schema_version": 1,
             "sku": sku, "location_id": location_id, **fields}  # fmt: skip
    return "inventory", event


def till(type_: str, minute: int, txn_id: str, lines: Sequence[tuple[str, int]] = (), store_id: str = "S1",
         **fields: Any) -> tuple[str, dict[str, Any]]:  # fmt: skip
    event = {"event_id": f"e{next(_ids)}", "type": type_, "ts": at(minute), "schema_version": 1,
             "store_id": store_id, "register_id": "R1", "cashier_id": "C1", "txn_id": txn_id, "currency": "USD",
             **fields}  # fmt: skip
    if type_ != "void":
        event["items"] = [{"sku": sku, "qty": qty, "unit_price": 1.0} for sku, qty in lines]
    return "pos", event


def purchase(
    minute: int, order_id: str, lines: list[tuple[str, int]], location_id: str = "S1"
) -> tuple[str, dict[str, Any]]:
    event = {"event_id": f"e{next(_ids)}", "type": "purchase", "ts": at(minute), "schema_version": 1,
             "session_id": "SES", "channel": "web", "order_id": order_id, "currency": "USD",
             "items": [{"sku": sku, "qty": qty, "unit_price": 1.0} for sku, qty in lines], "total": 1.0,
             "fulfilment_location_id": location_id, "payment": {"method": "card"}}  # fmt: skip
    return "clickstream", event


def level(events: list[tuple[str, dict[str, Any]]], sku: str = "A", location_id: str = "S1") -> tuple[int, int, int]:
    return expected_levels(events)[sku, location_id].as_tuple()


def test_oracle_sums_movements_without_a_count() -> None:
    events = [
        inv("receipt", 1, qty=10),
        inv("transfer_in", 2, qty=5, transfer_id="X1", peer_location_id="W1"),
        inv("transfer_out", 3, qty=3, transfer_id="X2", peer_location_id="S2"),
        inv("adjustment", 4, qty=-2, reason="damage"),
        inv("adjustment", 5, qty=1, reason="found"),
    ]
    assert level(events) == (11, 0, 11)


def test_oracle_keeps_locations_and_skus_apart() -> None:
    levels = expected_levels(
        [inv("receipt", 1, qty=4), inv("receipt", 1, "B", qty=6), inv("receipt", 1, "A", "S2", qty=1)]
    )
    assert {pair: lv.as_tuple() for pair, lv in levels.items()} == {
        ("A", "S1"): (4, 0, 4),
        ("B", "S1"): (6, 0, 6),
        ("A", "S2"): (1, 0, 1),
    }


def test_oracle_count_replaces_changes_dated_at_or_before_it() -> None:
    events = [
        inv("receipt", 1, qty=10),
        inv("adjustment", 5, qty=-1, reason="shrink"),  # same ts as the count: already in it
        inv("receipt", 6, qty=3),  # after the count: on top
        inv("count", 5, on_hand=7),  # published last, dated in the middle
    ]
    assert level(events) == (10, 0, 10)


def test_oracle_uses_the_latest_count_by_ts_not_by_arrival() -> None:
    events = [
        inv("count", 10, on_hand=50),
        inv("receipt", 11, qty=2),
        inv("count", 3, on_hand=99),  # older count arriving later: superseded
    ]
    assert level(events) == (52, 0, 52)


def test_oracle_breaks_a_count_tie_by_the_larger_event_id() -> None:
    events = [inv("count", 4, on_hand=8, event_id="c-b"), inv("count", 4, on_hand=3, event_id="c-a")]
    assert level(events) == (8, 0, 8)
    assert level(list(reversed(events))) == (8, 0, 8)


def test_oracle_sale_and_return_move_on_hand_at_the_store() -> None:
    events = [
        inv("receipt", 1, qty=20),
        till("sale", 2, "T1", [("A", 2), ("A", 3), ("B", 1)]),  # lines of one SKU add up
        till("return", 3, "T2", [("A", 1)], original_txn_id="T1"),
    ]
    levels = expected_levels(events)
    assert levels["A", "S1"].as_tuple() == (16, 0, 16)
    assert levels["B", "S1"].as_tuple() == (-1, 0, -1)


def test_oracle_void_removes_the_sale_whether_before_or_after_it() -> None:
    sale = till("sale", 2, "T1", [("A", 4)])
    void = till("void", 3, "T9", original_txn_id="T1")
    base = [inv("receipt", 1, qty=10)]
    assert level([*base, sale, void]) == (10, 0, 10)
    assert level([*base, void, sale]) == (10, 0, 10)


def test_oracle_voiding_twice_is_voiding_once() -> None:
    events = [
        inv("receipt", 1, qty=10),
        till("sale", 2, "T1", [("A", 4)]),
        till("void", 3, "T8", original_txn_id="T1"),
        till("void", 4, "T9", original_txn_id="T1"),
    ]
    assert level(events) == (10, 0, 10)


def test_oracle_voided_sale_after_a_count_stays_removed() -> None:
    events = [
        inv("receipt", 1, qty=10),
        till("sale", 5, "T1", [("A", 4)]),
        inv("count", 3, on_hand=9),
        till("void", 6, "T9", original_txn_id="T1"),
    ]
    assert level(events) == (9, 0, 9)


def test_oracle_void_of_an_unknown_txn_changes_nothing() -> None:
    assert level([inv("receipt", 1, qty=10), till("void", 3, "T9", original_txn_id="T-GHOST")]) == (10, 0, 10)


def test_oracle_purchase_reserves_until_fulfilled() -> None:
    events = [
        inv("receipt", 1, qty=10),
        purchase(2, "O1", [("A", 3)]),
        inv("fulfilment", 3, order_id="O1", qty=1),
    ]
    assert level(events) == (9, 2, 7)
    assert level([*events, inv("fulfilment", 4, order_id="O1", qty=2)]) == (7, 0, 7)


def test_oracle_fulfilment_before_its_purchase_gives_the_same_stock() -> None:
    events = [
        inv("receipt", 1, qty=10),
        inv("fulfilment", 3, order_id="O1", qty=3),
        purchase(2, "O1", [("A", 3)]),
    ]
    assert level(events) == (7, 0, 7)


def test_oracle_over_fulfilment_never_makes_reserved_negative() -> None:
    events = [inv("receipt", 1, qty=10), purchase(2, "O1", [("A", 1)]), inv("fulfilment", 3, order_id="O1", qty=4)]
    assert level(events) == (6, 0, 6)


def test_oracle_cancel_releases_what_is_still_reserved() -> None:
    events = [
        inv("receipt", 1, qty=10),
        purchase(2, "O1", [("A", 5), ("B", 2)]),
        inv("fulfilment", 3, order_id="O1", qty=1),
        inv("order_cancel", 4, order_id="O1"),
    ]
    levels = expected_levels(events)
    assert levels["A", "S1"].as_tuple() == (9, 0, 9)
    assert levels["B", "S1"].as_tuple() == (0, 2, -2)  # the cancel named SKU A only


def test_oracle_cancel_before_its_purchase_still_cancels() -> None:
    events = [inv("order_cancel", 1, order_id="O1"), purchase(2, "O1", [("A", 5)])]
    assert level(events) == (0, 0, 0)


def test_oracle_whole_order_cancel_releases_every_line_whenever_it_arrives() -> None:
    whole = inv("order_cancel", 4, order_id="O1")
    del whole[1]["sku"], whole[1]["location_id"]
    lines = [("A", 5), ("B", 2), ("C", 1)]
    for events in ([purchase(2, "O1", lines), whole], [whole, purchase(2, "O1", lines)]):
        levels = expected_levels([inv("receipt", 1, qty=10), inv("fulfilment", 3, order_id="O1", qty=1), *events])
        assert {pair: lv.as_tuple() for pair, lv in levels.items()} == {
            ("A", "S1"): (9, 0, 9), ("B", "S1"): (0, 0, 0), ("C", "S1"): (0, 0, 0)}  # fmt: skip


def test_oracle_line_cancel_without_location_or_with_qty_releases_part() -> None:
    partial = inv("order_cancel", 3, order_id="O1", qty=2)
    del partial[1]["location_id"]  # the purchase's location
    again = inv("order_cancel", 4, order_id="O1", qty=2)
    events = [purchase(2, "O1", [("A", 5)]), partial, again, inv("fulfilment", 5, order_id="O1", qty=3)]
    # 5 purchased, 3 fulfilled: 2 remain, and the partial cancels (4 units) release at most those.
    assert level(events) == (-3, 0, -3)
    assert level(events[:2]) == (0, 3, -3)


def test_oracle_held_reservation_reserves_until_cancelled_or_lapsed() -> None:
    hold = inv("reservation", 1, reservation_id="R1", qty=2, hold_s=300.0)
    stock = ExpectedStock()
    for topic, event in [inv("receipt", 0, qty=5), hold]:
        stock.add(topic, event)
    assert stock.levels()["A", "S1"].as_tuple() == (5, 0, 5)  # not decided yet: rejected until told
    stock.decide("R1", held=True)
    assert stock.levels()["A", "S1"].as_tuple() == (5, 2, 3)
    stock.add(*inv("receipt", 6, "A", "S2", qty=1))  # the SKU's event time reaches 01:06 >= 01:01 + 300 s
    assert stock.levels()["A", "S1"].as_tuple() == (5, 0, 5)

    cancelled = ExpectedStock()
    for topic, event in [inv("receipt", 0, qty=5), hold, inv("order_cancel", 2, order_id="R1")]:
        cancelled.add(topic, event)
    cancelled.decide("R1", held=True)
    assert cancelled.levels()["A", "S1"].as_tuple() == (5, 0, 5)


def test_oracle_reserves_at_the_fulfilment_location_per_order_line() -> None:
    events = [
        purchase(1, "O1", [("A", 2)], location_id="W1"),
        purchase(2, "O2", [("A", 3)], location_id="W1"),
        inv("fulfilment", 3, location_id="W1", order_id="O2", qty=3),
        inv("fulfilment", 4, location_id="W2", order_id="O1", qty=2),  # another location: not O1's W1 line
    ]
    levels = expected_levels(events)
    assert levels["A", "W1"].as_tuple() == (-3, 2, -5)
    assert levels["A", "W2"].as_tuple() == (-2, 0, -2)


def test_oracle_counts_a_repeated_event_id_once() -> None:
    receipt = inv("receipt", 1, qty=10)
    sale = till("sale", 2, "T1", [("A", 1)])
    order = purchase(3, "O1", [("A", 2)])
    stock = ExpectedStock()
    for topic, event in [receipt, sale, order, receipt, sale, order]:
        stock.add(topic, event)
    assert stock.levels()["A", "S1"].as_tuple() == (9, 2, 7)
    assert stock.duplicates == 3


def test_oracle_ignores_clickstream_without_stock_effect() -> None:
    view = {"event_id": "v1", "type": "add_to_cart", "ts": at(1), "schema_version": 1, "session_id": "SES",
            "channel": "web", "sku": "A", "qty": 3}  # fmt: skip
    assert expected_levels([("clickstream", view)]) == {}


def test_oracle_compares_timestamps_across_offsets() -> None:
    events = [inv("receipt", 1, qty=10), inv("count", 0, on_hand=4)]
    # The count at 01:00Z written as 02:00+01:00 is still before the 01:01Z receipt.
    events[1][1]["ts"] = "2026-11-22T02:00:00+01:00"
    assert level(events) == (14, 0, 14)


def test_oracle_refuses_an_event_of_another_topic() -> None:
    with pytest.raises(ValueError):
        ExpectedStock().add("inventory", {**inv("receipt", 1, qty=1)[1], "type": "sale"})
