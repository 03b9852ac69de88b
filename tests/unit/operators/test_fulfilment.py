"""Fulfilment source selection (`operators.fulfilment`): the cost model's rules, one each."""

from __future__ import annotations

from typing import Any

import pytest

from operators.fulfilment import CostModel, parse_ship_costs, plan_fulfilment

MODEL = CostModel(
    {("WH-01", "north"): 6.0, ("WH-02", "north"): 9.0, ("STORE-01", "north"): 2.0, ("STORE-02", "north"): 3.0},
    store_handling_cost=1.5, warehouse_handling_cost=0.5, split_penalty=5.0, store_safety_stock=2,
)  # fmt: skip


def sources(stock: dict[str, dict[str, int]], lines: list[tuple[str, int]], region: str = "north") -> list[Any]:
    choice, _ = plan_fulfilment(lines, stock, region, MODEL)
    return [(s.location_id, s.lines) for s in choice.shipments]


def test_prefers_the_cheaper_source_when_both_can_serve() -> None:
    stock = {"A": {"WH-01": 50, "STORE-01": 10}}
    choice, ranked = plan_fulfilment([("A", 3)], stock, "north", MODEL)

    assert [(s.location_id, s.cost) for s in choice.shipments] == [("STORE-01", 3.5)]
    assert [(p.shipments[0].location_id, p.total_cost) for p in ranked] == [("STORE-01", 3.5), ("WH-01", 6.5)]
    assert not choice.split


def test_a_cheaper_region_table_entry_changes_the_choice() -> None:
    stock = {"A": {"WH-01": 50, "STORE-01": 10}}
    south = CostModel({("WH-01", "south"): 1.0, ("STORE-01", "south"): 9.0})
    choice, _ = plan_fulfilment([("A", 3)], stock, "south", south)
    assert choice.shipments[0].location_id == "WH-01"


def test_splits_only_when_no_single_source_can_serve() -> None:
    assert sources({"A": {"WH-01": 5, "STORE-01": 10}}, [("A", 6)]) == [("STORE-01", (("A", 6),))]
    split, _ = plan_fulfilment([("A", 12)], {"A": {"WH-01": 5, "STORE-01": 10}}, "north", MODEL)
    assert [(s.location_id, s.lines) for s in split.shipments] == [("STORE-01", (("A", 8),)), ("WH-01", (("A", 4),))]
    assert split.split and split.total_cost == 3.5 + 6.5 + 5.0
    assert "no single source" in split.reasons[0]


def test_a_multi_line_order_goes_to_one_source_that_has_every_line() -> None:
    stock = {"A": {"WH-01": 5, "STORE-01": 10}, "B": {"WH-01": 5, "STORE-01": 0}}
    assert sources(stock, [("A", 2), ("B", 1)]) == [("WH-01", (("A", 2), ("B", 1)))]


def test_respects_store_safety_stock() -> None:
    stock = {"A": {"WH-01": 0, "STORE-01": 3, "STORE-02": 2}}
    # STORE-01 may give 1 (3 less 2 kept), STORE-02 none: 2 units cannot be sourced.
    choice, ranked = plan_fulfilment([("A", 2)], stock, "north", MODEL)
    assert choice.shipments == () and ranked == []
    assert any("keeps its last 2 units" in reason for reason in choice.reasons)
    assert sources(stock, [("A", 1)]) == [("STORE-01", (("A", 1),))]


def test_never_assigns_more_than_available() -> None:
    stock = {"A": {"WH-01": 4, "WH-02": 3, "STORE-01": -2}}  # an oversold store gives nothing
    choice, _ = plan_fulfilment([("A", 7)], stock, "north", MODEL)
    assert sorted((s.location_id, s.lines) for s in choice.shipments) == [("WH-01", (("A", 4),)),
                                                                          ("WH-02", (("A", 3),))]  # fmt: skip


def test_pick_up_uses_only_that_store_without_shipping() -> None:
    stock = {"A": {"WH-01": 50, "STORE-02": 5}}
    choice, _ = plan_fulfilment([("A", 1)], stock, None, MODEL, pickup_at="STORE-02")
    assert [(s.location_id, s.cost) for s in choice.shipments] == [("STORE-02", 1.5)]


def test_a_bad_cost_table_is_refused_naming_the_item() -> None:
    with pytest.raises(ValueError, match="item 2 'WH-01:north=cheap'"):
        parse_ship_costs("STORE-01:north=1, WH-01:north=cheap")
