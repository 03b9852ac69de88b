"""A selling season whose demand shifts between stores, for closed-loop merchandising runs.

`SeasonWorld` is the ground truth: a seasonal buy of each SKU spread over the
stores by where it was expected to sell, a warehouse holding the rest, no
replenishment, and demand that moves: at each shift day every SKU's demand is
re-split over the stores (a trend, a local event, the weather). Shoppers come
hour by hour during opening hours; one finding the shelf empty is a lost sale.
Demand follows the selling price with a constant elasticity, so a markdown
sells more. The world publishes what the stores and warehouses would: sales,
transfers out and in, price changes; it never reads the flow's state.

Every arm of a run sees the same shoppers: the number of shoppers of a SKU at a
store in an hour is drawn by inverting the Poisson distribution at a uniform
fixed per (hour, SKU, store) in advance, so a markdown that raises the rate
adds shoppers to the same draw and a transfer changes only whether they are
served (common random numbers: the arms differ by the decisions alone).

`Planner` is the merchandiser who carries the suggestions out: it ships an open
transfer suggestion at once (what the donor really has), the goods arriving
after the lead time, and applies an open markdown suggestion's price.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from events.timestamps import rfc3339_ms
from events.topics import Topic

DAY_S = 86_400.0
OPEN_HOURS = range(9, 21)
"""Hours of the day the stores sell (local time is UTC here)."""


@dataclass(frozen=True, slots=True)
class SeasonPlan:
    """The shape of a season: sites, SKUs, length, when demand moves, how the buy was sized."""

    n_skus: int = 40
    n_stores: int = 6
    days: int = 60
    shift_days: tuple[int, ...] = (15, 30, 45)
    mean_daily_demand: float = 12.0
    """A SKU's shoppers per day over all stores, on average over SKUs."""
    buy_range: tuple[float, float] = (0.6, 1.6)
    """The seasonal buy of a SKU as a multiple of its expected season demand (some SKUs are overbought)."""
    store_share: float = 0.7
    """Share of the buy allocated to the stores at the start; the warehouse holds the rest."""
    elasticity: float = 2.0
    """The true price elasticity of demand."""


def _poisson(rate: float, u: float) -> int:
    """The Poisson(`rate`) count at quantile `u` (inversion: monotone in `rate` for a fixed `u`)."""
    if rate <= 0.0:
        return 0
    k, p = 0, math.exp(-rate)
    cumulative = p
    while u > cumulative and k < 1000:
        k += 1
        p *= rate / k
        cumulative += p
    return k


@dataclass
class _Sku:
    sku: str
    list_price: float
    daily: float
    weights: list[list[float]]  # per demand phase, each store's share of the SKU's demand
    price: float = 0.0


@dataclass
class SeasonStats:
    """What an arm of the run measured (ground truth, not the flow's view)."""

    demand_units: int = 0
    sold_units: int = 0
    lost_units: int = 0
    lost_base_units: int = 0
    """Lost sales of the shoppers who would have come at list price (a markdown's extra shoppers left out)."""
    stockout_hours: int = 0
    """Open SKU-store hours with demand expected and an empty shelf."""
    units_transferred: int = 0
    transfers: int = 0
    markdowns: int = 0
    revenue: float = 0.0
    leftover_units: int = 0
    leftover_value: float = 0.0
    """Leftover stock at list price."""

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class SeasonWorld:
    """The stores and the warehouse over one season; `hour(h)` gives that hour's events.

    Examples
    --------
    >>> world = SeasonWorld(SeasonPlan(n_skus=3, n_stores=2, days=2, shift_days=(1,)), seed=1, start_ts=0.0)
    >>> kinds = [e["type"] for e in world.opening()]
    >>> kinds.count("product_upsert"), kinds.count("receipt")
    (3, 8)
    >>> sales = [e for h in range(48) for _, e in world.hour(h)]
    >>> world.stats.sold_units == sum(e["items"][0]["qty"] for e in sales)
    True
    """

    def __init__(self, plan: SeasonPlan, seed: int, start_ts: float) -> None:
        self.plan = plan
        self.start_ts = start_ts
        rng = random.Random(seed)
        self.stores = [f"STORE-{i:02d}" for i in range(1, plan.n_stores + 1)]
        self.warehouse = "WH-01"
        phases = len(plan.shift_days) + 1
        self.skus: list[_Sku] = []
        for i in range(plan.n_skus):
            daily = plan.mean_daily_demand * rng.lognormvariate(0.0, 0.5) / math.exp(0.125)
            weights = []
            for _ in range(phases):
                raw = [rng.random() ** 2.5 for _ in self.stores]  # skewed: a few stores take most of the demand
                total = sum(raw)
                weights.append([w / total for w in raw])
            price = round(rng.uniform(10, 60)) - 0.01
            self.skus.append(_Sku(f"SKU-{i + 1:03d}", price, daily, weights, price))
        self.stock: dict[tuple[str, str], int] = {}
        self.in_transit: list[tuple[float, str, str, str, int, str]] = []  # (arrives, sku, to, from, qty, id)
        self._buy = [rng.uniform(*plan.buy_range) for _ in self.skus]
        self._uniforms = random.Random(seed + 1)
        self._seq = 0
        self.stats = SeasonStats()

    # -- events ---------------------------------------------------------------------------------------------

    def _event(self, kind: str, ts: float, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        return {"event_id": f"{kind}-{self._seq}", "type": kind, "ts": rfc3339_ms(ts), "schema_version": 1, **fields}

    def opening(self) -> list[dict[str, Any]]:
        """The catalog and the seasonal buy received at the start: stores by expected first-phase demand."""
        ts = self.start_ts
        out = []
        for sku, buy in zip(self.skus, self._buy, strict=True):
            out.append(self._event("product_upsert", ts, sku=sku.sku, name=sku.sku, category="season",
                                   price=sku.list_price))  # fmt: skip
            units = round(buy * sku.daily * self.plan.days)
            store_units = round(units * self.plan.store_share)
            for store, weight in zip(self.stores, sku.weights[0], strict=True):
                qty = round(store_units * weight)
                self.stock[sku.sku, store] = qty
                if qty:
                    out.append(self._event("receipt", ts, sku=sku.sku, location_id=store, qty=qty))
            rest = units - sum(self.stock[sku.sku, s] for s in self.stores)
            self.stock[sku.sku, self.warehouse] = rest
            out.append(self._event("receipt", ts, sku=sku.sku, location_id=self.warehouse, qty=max(1, rest)))
            self.stock[sku.sku, self.warehouse] = max(1, rest)
        return out

    def phase(self, day: int) -> int:
        return sum(1 for shift in self.plan.shift_days if day >= shift)

    def hour(self, h: int) -> list[tuple[Topic, dict[str, Any]]]:
        """Hour `h` of the season: transfers arriving, then the shoppers (sales, or lost sales)."""
        ts0 = self.start_ts + h * 3600.0
        out: list[tuple[Topic, dict[str, Any]]] = []
        arriving = [t for t in self.in_transit if t[0] <= ts0]
        self.in_transit = [t for t in self.in_transit if t[0] > ts0]
        for arrives, sku_id, to, source, qty, transfer_id in arriving:
            self.stock[sku_id, to] = self.stock.get((sku_id, to), 0) + qty
            out.append((Topic.INVENTORY, self._event("transfer_in", arrives, sku=sku_id, location_id=to, qty=qty,
                                                     transfer_id=transfer_id, peer_location_id=source)))  # fmt: skip
        day, hour_of_day = divmod(h, 24)
        uniforms = self._uniforms
        draws = [[uniforms.random() for _ in self.stores] for _ in self.skus]  # drawn every hour, open or not
        if hour_of_day not in OPEN_HOURS:
            return out
        phase = self.phase(day)
        elasticity = self.plan.elasticity
        for sku, row in zip(self.skus, draws, strict=True):
            lift = (sku.price / sku.list_price) ** -elasticity
            for store, weight, u in zip(self.stores, sku.weights[phase], row, strict=True):
                rate = sku.daily * weight / len(OPEN_HOURS)
                wanted = _poisson(rate * lift, u)
                have = self.stock.get((sku.sku, store), 0)
                if have <= 0 and rate > 0.01:
                    self.stats.stockout_hours += 1
                if not wanted:
                    continue
                sold = min(wanted, max(0, have))
                self.stats.demand_units += wanted
                self.stats.lost_units += wanted - sold
                self.stats.lost_base_units += min(wanted - sold, _poisson(rate, u) if lift != 1.0 else wanted)
                for n in range(sold):
                    self.stock[sku.sku, store] = self.stock[sku.sku, store] - 1
                    self.stats.sold_units += 1
                    self.stats.revenue += sku.price
                    ts = ts0 + (n + 1) * 3600.0 / (sold + 1)
                    out.append((Topic.POS, self._event(
                        "sale", ts, store_id=store, register_id="R1", cashier_id="C1", txn_id=f"T{self._seq}",
                        currency="EUR", items=[{"sku": sku.sku, "qty": 1, "unit_price": sku.price}],
                        total=sku.price, payment={"method": "card"})))  # fmt: skip
        return out

    # -- the planner's actions ------------------------------------------------------------------------------

    def ship(self, ts: float, sku_id: str, source: str, to: str, qty: int, lead_time_s: float) -> dict[str, Any] | None:
        """Send up to `qty` units (what `source` really has); the `transfer_out`, or None when it has nothing."""
        qty = min(qty, self.stock.get((sku_id, source), 0))
        if qty <= 0:
            return None
        self.stock[sku_id, source] -= qty
        self._seq += 1
        transfer_id = f"X{self._seq}"
        self.in_transit.append((ts + lead_time_s, sku_id, to, source, qty, transfer_id))
        self.stats.units_transferred += qty
        self.stats.transfers += 1
        return self._event("transfer_out", ts, sku=sku_id, location_id=source, qty=qty, transfer_id=transfer_id,
                           peer_location_id=to)  # fmt: skip

    def reprice(self, ts: float, sku_id: str, price: float) -> dict[str, Any]:
        """Change `sku_id`'s selling price from `ts` on; the `price_change`."""
        sku = next(s for s in self.skus if s.sku == sku_id)
        sku.price = price
        self.stats.markdowns += 1
        return self._event("price_change", ts, sku=sku_id, price=price, currency="EUR")

    def close(self) -> SeasonStats:
        """End of season: what is left, on shelves, in the warehouse and on the road."""
        left = sum(max(0, q) for q in self.stock.values()) + sum(t[4] for t in self.in_transit)
        prices = {s.sku: s.list_price for s in self.skus}
        value = sum(max(0, q) * prices[sku] for (sku, _), q in self.stock.items())
        value += sum(t[4] * prices[t[1]] for t in self.in_transit)
        self.stats.leftover_units = left
        self.stats.leftover_value = round(value, 2)
        self.stats.revenue = round(self.stats.revenue, 2)
        return self.stats


@dataclass
class Planner:
    """Carries out the open suggestions it is shown: transfers (with a lead time), and markdowns if allowed."""

    world: SeasonWorld
    lead_time_s: float
    transfers: bool = True
    markdowns: bool = False
    done: set[tuple[str, int]] = field(default_factory=set)

    def act(self, ts: float, records: list[dict[str, Any]]) -> list[tuple[Topic, dict[str, Any]]]:
        """The events of carrying out `records` (suggestions, oldest first) at `ts`: the newest open version of each."""
        newest: dict[str, dict[str, Any]] = {}
        for record in records:
            newest[str(record["suggestion_id"])] = record
        out: list[tuple[Topic, dict[str, Any]]] = []
        for sid, record in sorted(newest.items()):
            if record["status"] != "open" or (sid, int(record["version"])) in self.done:
                continue
            if record["kind"] == "transfer" and self.transfers:
                event = self.world.ship(ts, str(record["sku"]), str(record["from_location"]),
                                        str(record["to_location"]), int(record["qty"]), self.lead_time_s)  # fmt: skip
                if event is not None:
                    out.append((Topic.INVENTORY, event))
            elif record["kind"] == "markdown" and self.markdowns:
                out.append(
                    (Topic.CATALOG, self.world.reprice(ts, str(record["sku"]), float(record["suggested_price"])))
                )
            else:
                continue
            self.done.add((sid, int(record["version"])))
        return out
