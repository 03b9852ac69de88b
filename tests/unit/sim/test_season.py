"""The closed-loop season: same shoppers in every arm, lost sales when shelves are empty, a planner that ships once."""

from __future__ import annotations

from sim.season import DAY_S, Planner, SeasonPlan, SeasonWorld

PLAN = SeasonPlan(n_skus=5, n_stores=3, days=10, shift_days=(5,))


def season(world: SeasonWorld) -> list[dict[str, object]]:
    world.opening()
    return [event for h in range(PLAN.days * 24) for _, event in world.hour(h)]


def test_every_arm_sees_the_same_shoppers_and_sells_only_what_is_on_the_shelf() -> None:
    quiet, busy = SeasonWorld(PLAN, 3, 0.0), SeasonWorld(PLAN, 3, 0.0)
    busy.opening()
    store_before = dict(busy.stock)
    sku = busy.skus[0].sku
    shipped = busy.ship(0.0, sku, busy.warehouse, busy.stores[0], 10, DAY_S)  # a transfer changes no shopper
    quiet_sales, busy_sales = season(quiet), [e for h in range(PLAN.days * 24) for _, e in busy.hour(h)]
    assert shipped is not None and shipped["type"] == "transfer_out"
    assert quiet.stats.demand_units == busy.stats.demand_units > 0
    for world, sales in ((quiet, quiet_sales), (busy, busy_sales)):
        stats = world.stats
        assert stats.demand_units == stats.sold_units + stats.lost_units
        assert stats.lost_base_units == stats.lost_units  # no markdown: every shopper would have come at list price
        assert stats.sold_units == sum(1 for e in sales if e["type"] == "sale")
        assert all(q >= 0 for q in world.stock.values())  # never sold what was not there
    arrivals = [e for e in busy_sales if e["type"] == "transfer_in"]
    assert [(e["sku"], e["location_id"], e["qty"], e["ts"]) for e in arrivals] == [
        (sku, busy.stores[0], 10, "1970-01-02T00:00:00.000Z")]  # fmt: skip
    assert store_before[sku, busy.warehouse] - 10 == busy.stock[sku, busy.warehouse]


def test_a_markdown_brings_more_shoppers() -> None:
    full, marked = SeasonWorld(PLAN, 3, 0.0), SeasonWorld(PLAN, 3, 0.0)
    marked.opening()
    for sku in marked.skus:
        marked.reprice(0.0, sku.sku, round(sku.list_price * 0.7, 2))
    season(full)
    for h in range(PLAN.days * 24):
        marked.hour(h)
    assert marked.stats.demand_units > full.stats.demand_units * 1.5  # 0.7 ** -2 = 2.04 times the rate
    assert marked.stats.lost_base_units < marked.stats.lost_units  # some lost shoppers came for the markdown


def test_the_planner_carries_out_each_open_version_once_and_ships_only_what_the_donor_has() -> None:
    world = SeasonWorld(PLAN, 3, 0.0)
    world.opening()
    sku = world.skus[0].sku
    have = world.stock[sku, world.warehouse]
    planner = Planner(world, lead_time_s=DAY_S)
    open_ = {"kind": "transfer", "suggestion_id": "t1", "status": "open", "version": 1, "sku": sku,
             "from_location": world.warehouse, "to_location": world.stores[1], "qty": have + 50}  # fmt: skip
    (shipped,) = planner.act(0.0, [open_])
    assert shipped[1]["qty"] == have and world.stock[sku, world.warehouse] == 0
    assert planner.act(3600.0, [open_]) == []  # the same version again: already done
    assert planner.act(3600.0, [open_ | {"version": 2}, open_ | {"version": 3, "status": "withdrawn"}]) == []
    markdown = {"kind": "markdown", "suggestion_id": "m1", "status": "open", "version": 1, "sku": sku,
                "suggested_price": 5.0}  # fmt: skip
    assert planner.act(7200.0, [markdown]) == []  # markdowns are not this planner's to apply
