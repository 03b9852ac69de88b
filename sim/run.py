"""The shared state of one simulated stream: event-time clock, publish schedule, ids, stock.

Every channel (web shop, tills, stockroom, fraud desk) writes its events into
one schedule keyed by *publish* time. Normally an event is published at its own
`ts`; the disorder the contract allows is made by publishing some events later
or earlier than their `ts` says (a late cycle count, a purchase held back behind
its fulfilment), and the schedule then interleaves all channels in publish order.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson

from events.timestamps import rfc3339_ms
from events.topics import Topic
from sim.catalog import Catalog
from sim.record import SimRecord
from sim.shoppers import Shopper

T = TypeVar("T")

Effect = tuple[str, str, int, float, int]
"""What a published inventory event does to tracked stock: (sku, location_id, delta, ts, kind)."""

MOVEMENT, RESTOCK_ARRIVAL, COUNT = 0, 1, 2
"""Effect kinds: a stock movement, a movement that ends a pending restock, a count's correction."""

_new_record = tuple.__new__  # NamedTuple's own __new__ is a Python-level lambda: ~0.5 us per event


class Run:
    """Clock, schedule, id counters and tracked on-hand of one stream.

    Tracked on-hand is the simulator's own view of stock as published, so tills
    never sell what is not on the shelf and low stock triggers replenishment.
    It is not the contract's ground truth (reservations and disorder are left out).

    Parameters
    ----------
    seed
        Seed of every random choice in the stream; it also tags every id, so two
        seeds published into one cluster never collide.
    start_ts
        Event time (epoch seconds) of the first event.
    catalog
        The assortment and sites.
    shoppers
        The registered shoppers.
    currency
        ISO 4217 code of every price.
    """

    def __init__(self, seed: int, start_ts: float, catalog: Catalog, shoppers: list[Shopper], currency: str) -> None:
        self.seed = seed
        self.catalog = catalog
        self.shoppers = shoppers
        self.currency = currency
        self.rng = random.Random(seed)
        self.random = self.rng.random
        self.clock = start_ts
        self.on_hand: dict[tuple[str, str], int] = {}
        self.recent_moves: deque[Effect] = deque(maxlen=1024)
        # (publish_at, sequence, record, stock effects): a heap, popped in publish order.
        self.schedule: list[tuple[float, int, SimRecord, tuple[Effect, ...]]] = []
        self._seq = 0
        self._ids = 0
        self._tag = f"{seed}-"

    def new_id(self, kind: str) -> str:
        """A fresh business id such as `O-7-1234` (kind, seed, counter)."""
        self._ids += 1
        return f"{kind}-{self._tag}{self._ids}"

    def uniform(self, low: float, high: float) -> float:
        """A float in [low, high): `rng.uniform` without its extra call."""
        return low + (high - low) * self.random()

    def pick(self, options: Sequence[T]) -> T:
        """One of `options`, uniformly."""
        return options[int(self.random() * len(options))]

    def emit(
        self,
        topic: Topic,
        key: bytes | None,
        event_type: str,
        ts: float,
        fields: dict[str, Any],
        publish_at: float | None = None,
        effects: tuple[Effect, ...] = (),
        common: dict[str, Any] | None = None,
    ) -> None:
        """Schedule one event of `event_type` dated `ts`, published at `publish_at` (default: `ts`).

        `common` holds fields shared by a series of events (a session's ids), placed before `fields`.
        """
        self._ids += 1
        event_id = f"ev-{self._tag}{self._ids}"
        ts_text = rfc3339_ms(ts)
        if common is None:
            event = {"event_id": event_id, "type": event_type, "ts": ts_text, "schema_version": 1, **fields}
        else:
            event = {"event_id": event_id, "type": event_type, "ts": ts_text, "schema_version": 1, **common}
            event.update(fields)
        self._seq += 1
        record = _new_record(SimRecord, (topic, key, orjson.dumps(event), False, False))
        heapq.heappush(self.schedule, (ts if publish_at is None else publish_at, self._seq, record, effects))

    def redeliver(self, record: SimRecord, publish_at: float) -> None:
        """Schedule a byte-identical copy of `record`: the producer retried after a lost ack."""
        self._seq += 1
        heapq.heappush(self.schedule, (publish_at, self._seq, record._replace(duplicate=True), ()))

    def pop_due(self) -> tuple[SimRecord, tuple[Effect, ...]] | None:
        """The next record due at or before the clock, with its stock effects, or None.

        The workload's main loop inlines this (it runs once per record).
        """
        schedule = self.schedule
        if schedule and schedule[0][0] <= self.clock:
            _, _, record, effects = heapq.heappop(schedule)
            return record, effects
        return None
