"""Where to fulfil an order from: ranked sources from live available stock and a configurable cost model.

Pure: the API reads the SKUs' stock documents (one round trip) and hands
their locations here. A source is a store or a warehouse; each one used
costs its handling (per source type) plus its shipping to the order's region
(a location × region table, with a default), and each extra source a split
penalty. A store keeps its last `store_safety_stock` units for walk-in
shoppers. A plan never assigns a source more than its live `available`
(less safety stock); one source is preferred whenever one can serve the
whole order, and the order is split only when none can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CostModel:
    """What a source costs, and what a store keeps back.

    Parameters
    ----------
    ship_costs
        (location, region) -> shipping cost of one parcel; pairs absent cost `default_ship_cost`.
    """

    ship_costs: Mapping[tuple[str, str], float] = field(default_factory=dict)
    default_ship_cost: float = 8.0
    store_handling_cost: float = 1.5
    warehouse_handling_cost: float = 0.5
    split_penalty: float = 5.0
    store_safety_stock: int = 2
    warehouse_prefixes: tuple[str, ...] = ("WH-",)
    max_sources: int = 3
    max_options: int = 5  # single-source alternatives returned, cheapest first
    _sources: dict[tuple[str, str | None], tuple[float, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def source(self, location_id: str, region: str | None) -> tuple[float, int]:
        """(cost for `region`, units kept back) of a source, memoised.

        Every request asks this of every location holding the SKU (a couple of dozen), and the
        answer depends on the configuration only: looked up once, it leaves the API's hot path.
        """
        key = (location_id, region)
        found = self._sources.get(key)
        if found is None:
            if len(self._sources) >= 100_000:  # unknown regions are refused upstream; bound it anyway
                self._sources.clear()
            keep = 0 if self.is_warehouse(location_id) else self.store_safety_stock
            found = self._sources[key] = (self.source_cost(location_id, region), keep)
        return found

    def is_warehouse(self, location_id: str) -> bool:
        return location_id.startswith(self.warehouse_prefixes)

    def source_cost(self, location_id: str, region: str | None) -> float:
        """Handling plus shipping to `region` (no shipping for a pick-up at the source: `region` None)."""
        handling = self.warehouse_handling_cost if self.is_warehouse(location_id) else self.store_handling_cost
        if region is None:
            return handling
        return handling + self.ship_costs.get((location_id, region), self.default_ship_cost)

    def usable(self, location_id: str, available: int) -> int:
        """Units a source may give: live available, less a store's safety stock."""
        keep = 0 if self.is_warehouse(location_id) else self.store_safety_stock
        return max(0, available - keep)

    def regions(self) -> set[str]:
        return {region for _, region in self.ship_costs}


def parse_ship_costs(text: str) -> dict[tuple[str, str], float]:
    """`LOCATION:REGION=COST,...` as a table; `ValueError` naming the bad item.

    >>> parse_ship_costs("WH-01:north=4, STORE-01:north=2.5")
    {('WH-01', 'north'): 4.0, ('STORE-01', 'north'): 2.5}
    >>> parse_ship_costs("WH-01=4")
    Traceback (most recent call last):
    ...
    ValueError: item 1 'WH-01=4': expected LOCATION:REGION=COST
    """
    table: dict[tuple[str, str], float] = {}
    for n, item in enumerate(filter(None, (part.strip() for part in text.split(","))), start=1):
        pair, _, cost = item.partition("=")
        location_id, _, region = pair.partition(":")
        try:
            value = float(cost)
        except ValueError:
            value = -1.0
        if not (location_id and region and value >= 0):
            raise ValueError(f"item {n} {item!r}: expected LOCATION:REGION=COST")
        table[location_id.strip(), region.strip()] = value
    return table


@dataclass(frozen=True, slots=True)
class Shipment:
    """One source's part of a plan."""

    location_id: str
    kind: str  # store | warehouse
    lines: tuple[tuple[str, int], ...]  # (sku, qty)
    cost: float


@dataclass(frozen=True, slots=True)
class Plan:
    """Where each unit comes from, what it costs, and why."""

    shipments: tuple[Shipment, ...]
    total_cost: float
    reasons: tuple[str, ...]

    @property
    def split(self) -> bool:
        return len(self.shipments) > 1


Stock = Mapping[str, Mapping[str, int]]
"""sku -> location_id -> live available."""


def plan_fulfilment(lines: Sequence[tuple[str, int]], stock: Stock, region: str | None, model: CostModel,
                    pickup_at: str | None = None) -> tuple[Plan, list[Plan]]:  # fmt: skip
    """The chosen plan (with no shipments when nothing can serve the order, its reasons say why) and the
    single-source plans, cheapest first (at most `model.max_options`).

    `pickup_at` restricts the sources to that store, with no shipping.

    >>> model = CostModel({("WH-01", "north"): 4.0, ("STORE-01", "north"): 1.0}, store_safety_stock=1)
    >>> choice, ranked = plan_fulfilment([("A", 2)], {"A": {"WH-01": 10, "STORE-01": 3}}, "north", model)
    >>> [(s.location_id, s.lines, s.cost) for s in choice.shipments], [p.shipments[0].location_id for p in ranked]
    ([('STORE-01', (('A', 2),), 2.5)], ['STORE-01', 'WH-01'])
    >>> choice, _ = plan_fulfilment([("A", 12)], {"A": {"WH-01": 10, "STORE-01": 3}}, "north", model)
    >>> [(s.location_id, s.lines) for s in choice.shipments], choice.total_cost
    ([('STORE-01', (('A', 2),)), ('WH-01', (('A', 10),))], 12.0)
    """
    wanted = _merged(lines)
    locations = sorted({loc for sku in wanted for loc in stock.get(sku, {})})
    if pickup_at is not None:
        locations = [loc for loc in locations if loc == pickup_at]
    cost_region = None if pickup_at is not None else region
    sources = {loc: model.source(loc, cost_region) for loc in locations}
    cost = {loc: source_cost for loc, (source_cost, _) in sources.items()}
    by_sku = [(sku, stock.get(sku, {})) for sku in wanted]
    reasons: list[str] = []
    for loc, (_, keep) in sources.items():
        if keep:
            held_back = [sku for sku, at in by_sku if 0 < at.get(loc, 0) <= keep]
            if held_back:
                reasons.append(f"{loc} keeps its last {keep} units of {', '.join(held_back)} "
                               "for walk-in shoppers")  # fmt: skip

    whole = tuple(wanted.items())
    needs = [(stock.get(sku, {}), qty) for sku, qty in whole]
    able = sorted((cost[loc], loc) for loc, (_, keep) in sources.items()
                  if all(at.get(loc, 0) - keep >= qty for at, qty in needs))  # fmt: skip
    singles = [
        _plan(((loc, whole),), cost, model, [f"{loc} can serve the whole order alone"])
        for _, loc in able[: max(1, model.max_options)]
    ]
    if singles:
        best = singles[0]
        why = [f"{best.shipments[0].location_id} is the cheapest single source ({best.total_cost:g})"]
        return Plan(best.shipments, best.total_cost, (*why, *reasons)), singles

    # No one source can: split, cheapest sources first, never beyond what each may give.
    usable = {loc: {sku: max(0, at.get(loc, 0) - keep) for sku, at in by_sku} for loc, (_, keep) in sources.items()}
    by_cost = sorted(locations, key=lambda loc: (cost[loc], loc))
    parts: dict[str, list[tuple[str, int]]] = {}
    for sku, qty in wanted.items():
        remaining = qty
        # Sources already shipping come first: a second line there adds no parcel.
        for loc in sorted(by_cost, key=lambda loc: (loc not in parts, cost[loc], loc)):
            take = min(remaining, usable[loc][sku])
            if take <= 0:
                continue
            if loc not in parts and len(parts) >= model.max_sources:
                continue
            parts.setdefault(loc, []).append((sku, take))
            remaining -= take
            if remaining == 0:
                break
        if remaining:
            short = f"{sku}: only {qty - remaining} of {qty} units can be sourced from {model.max_sources} sources"
            return Plan((), 0.0, (short, *reasons)), []
    split_reasons = [f"no single source can serve the whole order; split over {len(parts)} sources "
                     f"(+{model.split_penalty:g} per extra source)"]  # fmt: skip
    return _plan(tuple((loc, tuple(part)) for loc, part in parts.items()), cost, model, split_reasons + reasons), []


def _merged(lines: Sequence[tuple[str, int]]) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for sku, qty in lines:
        wanted[sku] = wanted.get(sku, 0) + qty
    return wanted


def _plan(parts: tuple[tuple[str, tuple[tuple[str, int], ...]], ...], cost: Mapping[str, float], model: CostModel,
          reasons: list[str]) -> Plan:  # fmt: skip
    shipments = tuple(
        Shipment(loc, "warehouse" if model.is_warehouse(loc) else "store", part, cost[loc]) for loc, part in parts
    )
    total = sum(s.cost for s in shipments) + model.split_penalty * (len(shipments) - 1)
    return Plan(shipments, total, tuple(reasons))
