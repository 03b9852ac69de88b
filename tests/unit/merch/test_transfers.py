"""The rebalancing planner: who sends what to whom before a stockout, and when not to."""

from __future__ import annotations

from operators.merch.transfers import Position, TransferPolicy, plan_transfers

POLICY = TransferPolicy(lead_time_days=2, horizon_days=14, trigger_cover_days=5, target_cover_days=10,
                        keep_days=2, min_keep_units=2, min_lot=1, cost_per_transfer=5.0, cost_per_unit=0.5,
                        margin_rate=0.4)  # fmt: skip


Move = tuple[str, str, int]


def moves(positions: list[Position], policy: TransferPolicy = POLICY, price: float = 20.0) -> list[Move]:
    return [(t.from_location, t.to_location, t.qty) for t in plan_transfers("SKU-1", positions, policy, price)]


def test_stock_moves_from_where_it_sits_to_where_it_sells() -> None:
    plan = plan_transfers("SKU-1", [Position("S1", 2, 0, 3.0), Position("S2", 80, 0, 1.0)], POLICY, 20.0)
    assert [(t.from_location, t.to_location, t.qty) for t in plan] == [("S2", "S1", 28)]  # to 10 days at 3/day
    (transfer,) = plan
    # S1 sells 3 a day for 14 days = 42; its 2 units and the 2 lead-time days' demand (6) are lost or covered anyway.
    assert transfer.expected_stockout_avoided == 28.0
    assert transfer.to_cover_days == 0.7 and transfer.from_cover_days == 80.0
    assert "S1 has 0.7 days of cover" in transfer.reason


def test_no_transfer_when_everyone_has_cover_or_no_one_can_spare() -> None:
    assert moves([Position("S1", 30, 0, 3.0), Position("S2", 80, 0, 1.0)]) == []  # S1 has 10 days
    assert moves([Position("S1", 2, 0, 3.0), Position("S2", 12, 0, 1.0)]) == []  # S2 keeps 12 days: spares 0
    assert moves([Position("S1", 2, 0, 3.0)]) == []


def test_a_donor_keeps_its_own_cover_and_its_last_units() -> None:
    plan = plan_transfers("SKU-1", [Position("S1", 0, 0, 3.0), Position("S2", 20, 0, 1.0)], POLICY, 20.0)
    assert [(t.from_location, t.qty) for t in plan] == [("S2", 8)]  # keeps 12 days at 1/day
    no_demand = plan_transfers("SKU-1", [Position("S1", 0, 0, 3.0), Position("WH", 5, 0, 0.0)], POLICY, 20.0)
    assert [(t.from_location, t.qty) for t in no_demand] == [("WH", 3)]  # keeps min_keep_units = 2


def test_units_in_transit_count_as_stock_of_the_receiver() -> None:
    assert moves([Position("S1", 2, 28, 3.0), Position("S2", 80, 0, 1.0)]) == []
    assert moves([Position("S1", 2, 10, 3.0), Position("S2", 80, 0, 1.0)]) == [("S2", "S1", 18)]


def test_transfers_come_in_whole_lots() -> None:
    lots = TransferPolicy(min_lot=12)
    assert moves([Position("S1", 2, 0, 3.0), Position("S2", 80, 0, 1.0)], lots) == [("S2", "S1", 36)]
    # S2 can spare 11 units: less than a lot, nothing moves.
    assert moves([Position("S1", 2, 0, 3.0), Position("S2", 23, 0, 1.0)], lots) == []


def test_a_transfer_that_costs_more_than_the_margin_it_saves_is_not_suggested() -> None:
    cheap = [Position("S1", 2, 0, 0.5), Position("S2", 80, 0, 0.1)]  # S1 saves ~4 units over the horizon
    assert moves(cheap, price=20.0) == [("S2", "S1", 3)]  # 3 units x 8 margin = 24 > 5 + 1.5
    assert moves(cheap, price=2.0) == []  # 3 x 0.8 = 2.4 < 6.5


def test_the_most_urgent_receiver_is_served_first_from_the_donor_with_most_spare_cover() -> None:
    positions = [
        Position("S1", 4, 0, 2.0),  # 2 days
        Position("S2", 1, 0, 2.0),  # 0.5 days: first
        Position("S3", 40, 0, 1.0),  # spares 28, 40 days of cover
        Position("WH", 30, 0, 0.0),  # spares 28, infinite cover: first donor
    ]
    assert moves(positions) == [("WH", "S2", 19), ("WH", "S1", 9), ("S3", "S1", 7)]


def test_stock_that_sells_out_during_the_lead_time_anyway_is_not_what_a_transfer_saves() -> None:
    slow_lane = TransferPolicy(lead_time_days=13, horizon_days=14)
    (transfer,) = plan_transfers("SKU-1", [Position("S1", 0, 0, 3.0), Position("S2", 90, 0, 1.0)], slow_lane, 50.0)
    assert transfer.qty == 30 and transfer.expected_stockout_avoided == 3.0  # only the last day is saved
