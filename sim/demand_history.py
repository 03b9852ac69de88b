"""Weeks of store sales before the live stream, so the demand flow has history to forecast from.

The live stream spaces its events by seconds: a demo would wait days of event time before a local
day closed. This history goes first (`Workload(demand_history_days=...)`): till sales of the stores'
best sellers, dated over the days before the stream starts, in event-time order, shaped like retail
demand is:

- **weekly**: busy Saturdays, quiet Mondays (`WEEKDAY`);
- **seasonal**: a slow yearly swell, peaking in December;
- **holidays**: public holidays of the stores' country (`holidays` package, offline tables) sell
  `HOLIDAY_LIFT` times a normal day;
- **risers**: a few SKUs (`risers`, the ground truth) that take off: their demand grows
  `RISER_GROWTH` times over the last `RISER_DAYS` days and keeps growing.

Each store opens the history with a `receipt` of enough stock for it (so stock stays sane and the
reorders step knows the level). It draws from its own generator and numbers its own events
(`dh-<seed>-<n>`), so with the history off the stream is byte for byte what it always was.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import holidays
import orjson

from events.timestamps import rfc3339_ms
from events.topics import Topic
from sim.catalog import Catalog
from sim.record import SimRecord

DAY_S = 86_400.0
WEEKDAY = (0.8, 0.9, 0.9, 1.0, 1.2, 1.6, 0.6)
"""Relative demand Monday .. Sunday."""
HOLIDAY_LIFT = 1.8
RISER_DAYS = 21
RISER_GROWTH = 8.0


class DemandHistory:
    """Till sales of `n_skus` best sellers at `n_stores` stores over the `days` before `end_ts`.

    >>> catalog = Catalog(seed=3, n_skus=60, n_stores=2, n_warehouses=1)
    >>> history = DemandHistory(seed=3, catalog=catalog, days=28, end_ts=1795305600.0, n_skus=20, risers=2)
    >>> records = list(history.records())
    >>> orjson.loads(records[0].value)["type"], orjson.loads(records[-1].value)["type"]
    ('receipt', 'sale')
    >>> stamps = [orjson.loads(r.value)["ts"] for r in records]
    >>> stamps == sorted(stamps) and stamps[-1] < "2026-11-22"
    True
    >>> len(history.risers), set(history.risers) <= {p.sku for p in catalog.products}
    (2, True)
    """

    def __init__(
        self,
        seed: int,
        catalog: Catalog,
        days: int,
        end_ts: float,
        n_skus: int = 150,
        n_stores: int = 3,
        risers: int = 4,
        country: str = "US",
        currency: str = "USD",
    ) -> None:
        self.seed = seed
        self.days = days
        self.end_ts = end_ts
        self.currency = currency
        self.stores = catalog.stores[:n_stores]
        by_rank = sorted(catalog.products, key=lambda p: p.rank)
        self.products = [p for p in by_rank if catalog.in_stores(p)][:n_skus]
        rng = random.Random(f"demand-history-{seed}")
        # Risers come from the tail of the head: small sellers that take off, not the best sellers.
        tail = self.products[len(self.products) // 3 :]
        self.risers = sorted(p.sku for p in rng.sample(tail, min(risers, len(tail))))
        self.rates = {p.sku: 12.0 / (p.rank + 4) ** 0.7 for p in self.products}
        """Units per store per average day of each SKU before any growth."""
        first = datetime.fromtimestamp(end_ts - days * DAY_S, UTC)
        self._holidays = holidays.country_holidays(country, years=range(first.year, first.year + 2))
        self._rng = rng
        self._ids = 0

    def rate(self, sku: str, day: int) -> float:
        """Expected units of `sku` at one store on history day `day` (0 is the first), before noise."""
        start = datetime.fromtimestamp(self.end_ts - (self.days - day) * DAY_S, UTC)
        rate = self.rates[sku] * WEEKDAY[start.weekday()]
        rate *= 1.0 + 0.25 * math.cos(2 * math.pi * (start.timetuple().tm_yday - 355) / 365.0)
        if start.date() in self._holidays:
            rate *= HOLIDAY_LIFT
        since = day - (self.days - RISER_DAYS)
        if sku in self.risers and since > 0:
            rate *= float(RISER_GROWTH ** (since / RISER_DAYS))
        return float(rate)

    def records(self) -> Iterator[SimRecord]:
        """The opening receipts, then every sale in event-time order."""
        rng = random.Random(f"demand-history-draws-{self.seed}")
        plan: list[list[tuple[str, str, int]]] = []
        totals: dict[tuple[str, str], int] = {}
        for day in range(self.days):
            today: list[tuple[str, str, int]] = []
            for store in self.stores:
                for product in self.products:
                    units = _poisson(rng, self.rate(product.sku, day))
                    while units > 0:
                        qty = min(units, rng.choice((1, 1, 1, 2, 3)))
                        today.append((store, product.sku, qty))
                        totals[store, product.sku] = totals.get((store, product.sku), 0) + qty
                        units -= qty
            rng.shuffle(today)
            plan.append(today)
        opening = self.end_ts - self.days * DAY_S
        prices = {p.sku: p.price for p in self.products}
        for (store, sku), sold in sorted(totals.items()):
            yield self._emit(Topic.INVENTORY, sku, "receipt", opening,
                             {"sku": sku, "location_id": store, "qty": sold + 50})  # fmt: skip
        for day, today in enumerate(plan):
            start = opening + day * DAY_S + 8 * 3600.0  # trading from 08:00 UTC for 12 hours
            for n, (store, sku, qty) in enumerate(today):
                ts = start + 12 * 3600.0 * (n + 0.5) / len(today)
                price = prices[sku]
                fields = {
                    "store_id": store, "register_id": f"{store}-R1", "cashier_id": f"{store}-C1",
                    "txn_id": f"dh-{self.seed}-T{self._ids + 1}", "currency": self.currency,
                    "items": [{"sku": sku, "qty": qty, "unit_price": price}], "total": round(price * qty, 2),
                    "payment": {"method": "cash"},
                }  # fmt: skip
                yield self._emit(Topic.POS, store, "sale", ts, fields)

    def _emit(self, topic: Topic, key: str, kind: str, ts: float, fields: dict[str, object]) -> SimRecord:
        self._ids += 1
        event = {"event_id": f"dh-{self.seed}-{self._ids}", "type": kind, "ts": rfc3339_ms(ts), "schema_version": 1}
        event.update(fields)
        return SimRecord(topic, key.encode(), orjson.dumps(event))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
