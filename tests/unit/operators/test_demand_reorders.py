"""Reorder planning of the demand flow: the (s, S) policy, days of cover, live stock per pair and the lifecycle."""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any

import pytest

from events.models import LineItem, OnlinePayment, OrderCancel, Purchase
from operators.demand.locations import LocationBook, LocationPlan
from operators.demand.reorders import (
    Outlook,
    ReorderPolicy,
    ReorderShard,
    cover_days,
    plan_reorder,
)
from operators.movements import Move, StockMovement

BOOK = LocationBook.parse("S1=UTC,GB,4,0.95")
DAY = 20_000
T0 = DAY * 86_400.0


def outlook(points: list[float], lower: list[float] | None = None, upper: list[float] | None = None) -> Outlook:
    return Outlook("S1", "A", DAY, points, lower or [0.0] * len(points), upper or [0.0] * len(points))


def test_the_reorder_point_is_lead_time_demand_plus_safety_stock_at_the_service_level() -> None:
    # Bands of +-3.84 around 5 a day are a normal's 80% band with sd 3 (variance 9, above Poisson's 5).
    half = NormalDist().inv_cdf(0.9) * 3.0
    view = outlook([5.0] * 28, [5.0 - half] * 28, [5.0 + half] * 28)
    plan = plan_reorder(25, view, LocationPlan("UTC", "GB", 4, 0.95), ReorderPolicy(review_days=3))
    z = NormalDist().inv_cdf(0.95)
    assert plan.lead_time_demand == pytest.approx(20.0)
    assert plan.safety_stock == pytest.approx(z * math.sqrt(4 * 9.0))
    assert plan.reorder_point == pytest.approx(20.0 + z * 6.0)
    assert plan.order_up_to == pytest.approx(35.0 + z * math.sqrt(7 * 9.0))
    assert plan.qty == math.ceil(plan.order_up_to - 25) and plan.cover_days == 5.0
    above = plan_reorder(30, view, LocationPlan("UTC", "GB", 4, 0.95), ReorderPolicy(review_days=3))
    assert above.qty == 0  # 30 > s = 29.87


def test_an_intermittent_sku_whose_band_is_zero_still_carries_poisson_risk() -> None:
    view = outlook([0.2] * 28)  # sells one day in five: an 80% band of [0, 0]
    plan = plan_reorder(1, view, LocationPlan("UTC", "GB", 7, 0.95), ReorderPolicy(review_days=7))
    assert plan.safety_stock == pytest.approx(NormalDist().inv_cdf(0.95) * math.sqrt(1.4))
    assert plan.qty > 0 and plan.cover_days == 5.0


def test_days_of_cover_follow_the_weekday_shape_and_beyond_the_horizon_its_mean_rate() -> None:
    week = [1.0, 1.0, 1.0, 1.0, 1.0, 6.0, 0.0]  # a busy Saturday, shut on Sunday
    assert cover_days(5, week) == 5.0
    assert cover_days(8, week) == 5.5
    assert cover_days(11, week) == 6.0  # through Saturday's 6
    assert cover_days(22, week) == 14.0  # past the 7-day horizon at its mean, 11/7 a day
    assert cover_days(3, [0.0] * 28) is None and cover_days(-2, week) == 0.0
    assert plan_reorder(0, outlook([0.0] * 28), LocationPlan("UTC", "GB"), ReorderPolicy()).qty == 0


def test_a_reorder_is_republished_only_on_a_material_change_and_withdrawn_when_stock_arrives() -> None:
    shard = ReorderShard(ReorderPolicy(review_days=3, change_share=0.25))
    receipt = StockMovement("A", "S1", Move.ON_HAND, 100, T0, "r1")
    records, _ = shard.apply([receipt, outlook([5.0] * 28, [3.0] * 28, [7.0] * 28)], BOOK)
    assert records == []
    sold = [StockMovement("A", "S1", Move.ON_HAND, -80, T0 + 60, "s1")]
    records, docs = shard.apply(sold, BOOK)
    assert [(r.status, r.available) for r in records] == [("open", 20)] and docs[0].open
    first = records[0]
    records, _ = shard.apply([StockMovement("A", "S1", Move.ON_HAND, -1, T0 + 120, "s2")], BOOK)
    assert records == []  # one unit more to order: not material
    records, _ = shard.apply([StockMovement("A", "S1", Move.ON_HAND, -15, T0 + 180, "s3")], BOOK)
    assert [r.status for r in records] == ["open"] and records[0].qty > first.qty
    assert records[0].version > first.version
    records, docs = shard.apply([StockMovement("A", "S1", Move.ON_HAND, 200, T0 + 240, "r2")], BOOK)
    assert [r.status for r in records] == ["withdrawn"] and docs[0].doc == b"null" and not docs[0].open
    records, _ = shard.apply([receipt], BOOK)  # a redelivered receipt changes nothing
    assert records == []


def test_online_orders_reserve_and_a_whole_order_cancel_releases_them_in_either_order() -> None:
    at = datetime.fromtimestamp(T0 + 3600, UTC)
    order = Purchase(event_id="p1", ts=at, schema_version=1, session_id="x", channel="web", order_id="O1",
                     items=[LineItem("A", 30, 1.0)], total=30.0, currency="GBP", fulfilment_location_id="S1",
                     payment=OnlinePayment(method="card"))  # fmt: skip
    cancel = OrderCancel(event_id="c1", ts=at, schema_version=1, order_id="O1")
    for first, second in ((order, cancel), (cancel, order)):
        shard = ReorderShard(ReorderPolicy())
        shard.apply([StockMovement("A", "S1", Move.ON_HAND, 40, T0, "r1"), outlook([1.0] * 28)], BOOK)
        shard.apply([first], BOOK)
        assert shard.available("S1", "A") == (10 if first is order else 40)
        shard.apply([second], BOOK)
        assert shard.available("S1", "A") == 40


def _stocked_shop_batches() -> list[list[Any]]:
    """Batches of a stocked shop: receipts, online orders selling it down, cancels, forecasts, a late count."""
    rng = random.Random(5)
    batches: list[list[Any]] = [[StockMovement(sku, "S1", Move.ON_HAND, 30, T0, f"r-{sku}") for sku in "ABCD"]]
    batches[0] += [Outlook("S1", sku, DAY, [2.0] * 28, [0.0] * 28, [4.0] * 28) for sku in "ABCD"]
    for b in range(12):
        batch: list[Any] = []
        for i in range(6):
            at = datetime.fromtimestamp(T0 + 600 * (6 * b + i), UTC)
            skus = sorted(set(rng.choices("ABCD", k=2)))
            lines = [LineItem(s, 2, 1.0) for s in skus]
            batch.append(Purchase(event_id=f"p{b}-{i}", ts=at, schema_version=1, session_id="x", channel="web",
                                  order_id=f"O{b}-{i}", items=lines, total=4.0, currency="GBP",
                                  fulfilment_location_id="S1", payment=OnlinePayment(method="card")))  # fmt: skip
        if b % 4 == 3:
            at = datetime.fromtimestamp(T0 + 600 * 6 * b, UTC)
            batch.append(OrderCancel(event_id=f"c{b}", ts=at, schema_version=1, order_id=f"O{b - 1}-0"))
            batch.append(StockMovement("B", "S1", Move.COUNT, 12, T0 + 600 * (6 * b - 3), f"n{b}"))
            batch.append(Outlook("S1", "A", DAY + b, [3.0] * 28, [1.0] * 28, [5.0] * 28))
        batches.append(batch)
    return batches


def test_a_shard_restored_from_its_snapshot_plans_as_one_that_never_stopped() -> None:
    batches = _stocked_shop_batches()
    straight = ReorderShard(ReorderPolicy())
    expected = [straight.apply(batch, BOOK) for batch in batches]
    assert any(records for records, _ in expected)
    for every in (1, 3):
        shard = ReorderShard(ReorderPolicy())
        got = []
        for index, batch in enumerate(batches):
            if index % every == 0:
                shard = pickle.loads(pickle.dumps(shard))  # only the ledgers moved since are re-encoded
            got.append(shard.apply(batch, BOOK))
        assert got == expected
        assert {sku: shard.available("S1", sku) for sku in "ABCD"} == {
            sku: straight.available("S1", sku) for sku in "ABCD"
        }


def _halfway() -> tuple[list[list[Any]], ReorderShard, list[Any], ReorderShard]:
    """The stocked shop's batches, a shard that took them all with its outputs, and one that took the first six."""
    batches = _stocked_shop_batches()
    straight = ReorderShard(ReorderPolicy())
    expected = [straight.apply(batch, BOOK) for batch in batches]
    shard = ReorderShard(ReorderPolicy())
    for batch in batches[:6]:
        shard.apply(batch, BOOK)
    return batches, straight, expected, shard


def test_a_snapshot_of_the_earlier_layout_still_restores() -> None:
    batches, straight, expected, shard = _halfway()
    # What pickle made of the slots dataclass before it had `__getstate__`: (None, {slot: value}).
    earlier = {
        name: getattr(shard, name) for name in ReorderShard.__slots__ if name not in ("levels", "encoded", "dirty")
    }
    earlier["known"] = _pairs(shard.known)  # kept as (location, SKU) pairs then
    restored = ReorderShard.__new__(ReorderShard)
    restored.__setstate__((None, pickle.loads(pickle.dumps(earlier))))
    assert [restored.apply(batch, BOOK) for batch in batches[6:]] == expected[6:]
    assert pickle.loads(pickle.dumps(restored)).ledgers.keys() == straight.ledgers.keys()


def _pairs(known: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(location_id, sku) for location_id, skus in known.items() for sku in skus}


def test_a_snapshot_that_kept_known_pairs_still_restores() -> None:
    """`_FORMAT` 2 kept the stocked pairs as a set of (location, SKU): they restore as the same pairs."""
    batches, _, expected, shard = _halfway()
    state = shard.__getstate__()
    assert state["known"], "the shard holds stocked pairs by now"
    state = {**state, "format": 2, "known": _pairs(state["known"])}
    restored = ReorderShard.__new__(ReorderShard)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    assert _pairs(restored.known) == _pairs(shard.known)
    assert [restored.apply(batch, BOOK) for batch in batches[6:]] == expected[6:]


def test_available_equals_the_inventory_flows_ledger_with_redeliveries_and_whole_order_cancels() -> None:
    """The shard applies the order book's movements without the ledger's dedup window; stock ends the same.

    The inventory flow's way (`OrderBook` then `StockLedger.apply` with its window) is the reference: purchases
    and cancels redelivered, a whole-order cancel before and between two purchases of one order (the book sends
    it again with the second), a line cancel.
    """
    from operators.order_book import OrderBook
    from operators.stock_ledger import StockLedger

    def purchase(event_id: str, order_id: str, minute: int, *skus: str) -> Purchase:
        return Purchase(event_id=event_id, ts=datetime.fromtimestamp(T0 + 60 * minute, UTC), schema_version=1,
                        session_id="x", channel="web", order_id=order_id, items=[LineItem(s, 3, 1.0) for s in skus],
                        total=3.0, currency="GBP", fulfilment_location_id="S1",
                        payment=OnlinePayment(method="card"))  # fmt: skip

    def cancel(event_id: str, order_id: str, minute: int, sku: str | None = None) -> OrderCancel:
        return OrderCancel(event_id=event_id, ts=datetime.fromtimestamp(T0 + 60 * minute, UTC), schema_version=1,
                           order_id=order_id, sku=sku, qty=1 if sku else None)  # fmt: skip

    stream: list[Any] = [
        purchase("p1", "O1", 1, "A", "B"),
        cancel("c1", "O1", 2),
        purchase("p1", "O1", 1, "A", "B"),
        purchase("p2", "O1", 3, "A"),
        cancel("c1", "O1", 2),  # the whole cancel reaches p2's line too
        cancel("c2", "O2", 4),
        purchase("p3", "O2", 5, "B", "C"),
        purchase("p4", "O3", 6, "C", "A"),
        cancel("c3", "O3", 7, "C"),
        cancel("c3", "O3", 7, "C"),
        purchase("p4", "O3", 6, "C", "A"),
    ]
    receipts = [StockMovement(sku, "S1", Move.ON_HAND, 20, T0, f"r-{sku}") for sku in "ABC"]
    shard = ReorderShard(ReorderPolicy())
    shard.apply([*receipts, *stream[:5]], BOOK)
    shard.apply(stream[5:], BOOK)
    book, ledgers = OrderBook(), {sku: StockLedger(sku) for sku in "ABC"}
    for move in receipts:
        ledgers[move.sku].apply(move)
    for event in stream:
        for move in book.apply(event):
            ledgers[move.sku].apply(move)
    expected = {sku: ledger.available_at("S1") for sku, ledger in ledgers.items()}
    assert expected == {"A": 17, "B": 20, "C": 18}  # O1 and O2 cancelled whole; O3 holds A and two units of C
    assert {sku: shard.available("S1", sku) for sku in "ABC"} == expected


def test_outlooks_are_encoded_again_only_after_a_forecast_arrives_and_older_snapshots_restore() -> None:
    """Forecasts change when a day closes: the snapshots in between write the encoding they wrote before."""
    batches, _, expected, shard = _halfway()
    first = shard.__getstate__()["outlooks"]
    shard.apply([StockMovement("A", "S1", Move.ON_HAND, 1, T0 + 10, "r-extra")], BOOK)
    assert shard.__getstate__()["outlooks"] is first  # stock moved, no forecast: the same bytes
    shard.apply([Outlook("S1", "C", DAY + 9, [1.0] * 28, [0.0] * 28, [2.0] * 28)], BOOK)
    again = shard.__getstate__()["outlooks"]
    assert again is not first
    assert pickle.loads(pickle.dumps(shard)).outlooks == shard.outlooks
    # `_FORMAT` 3 pickled the outlooks as objects.
    _, _, _, earlier = _halfway()
    state = {**earlier.__getstate__(), "format": 3, "outlooks": dict(earlier.outlooks)}
    restored = ReorderShard.__new__(ReorderShard)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    assert restored.outlooks == earlier.outlooks
    assert [restored.apply(batch, BOOK) for batch in batches[6:]] == expected[6:]
