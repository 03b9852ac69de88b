"""Operational incidents the anomaly watchers must notice: a dark store, a silent register,
a shrink spike, a burst of malformed events from one topic.

Each incident is one window of event time at one entity, drawn from the seed,
so a test knows exactly where and when to expect the alert (`windows`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from events.topics import Topic
from sim.catalog import Catalog


@dataclass(frozen=True, slots=True)
class IncidentWindow:
    """Ground truth of one incident: what, where (`entity_type`, `entity_id`), from `start_ts` to `end_ts`."""

    kind: str
    entity_type: str
    entity_id: str
    start_ts: float
    end_ts: float


class IncidentPlan:
    """Where and when each incident happens, for one stream.

    Parameters
    ----------
    seed
        Seed of the choices (stores, register, location, topic).
    catalog
        The sites.
    start_ts
        When the first incident may begin (event time); the others follow it.
    store_dark_s, register_silent_s, shrink_spike_s, dead_letter_burst_s
        Durations.
    shrink_adjustments
        Shrink adjustments published at the spiking location within its window.
    dead_letters
        Malformed events injected within the burst window.

    Examples
    --------
    >>> from sim.catalog import Catalog
    >>> plan = IncidentPlan(1, Catalog(seed=1, n_skus=20, n_stores=3, n_warehouses=1), start_ts=1000.0)
    >>> [w.kind for w in plan.windows]
    ['store_dark', 'register_silent', 'shrink_spike', 'dead_letter_burst']
    >>> plan.store_is_dark(plan.dark_store, plan.windows[0].start_ts + 1)
    True
    """

    def __init__(
        self,
        seed: int,
        catalog: Catalog,
        start_ts: float,
        store_dark_s: float = 1200.0,
        register_silent_s: float = 1800.0,
        shrink_spike_s: float = 900.0,
        shrink_adjustments: int = 60,
        dead_letter_burst_s: float = 60.0,
        dead_letters: int = 400,
    ) -> None:
        rng = random.Random(f"incidents-{seed}")
        stores = list(catalog.stores)
        self.dark_store = rng.choice(stores)
        quiet_store = rng.choice([s for s in stores if s != self.dark_store] or stores)
        self.silent_register = f"{quiet_store}-R{rng.randint(1, 6)}"
        self.shrink_location = rng.choice([s for s in stores if s != self.dark_store] or stores)
        self.burst_topic = rng.choice((Topic.POS, Topic.CLICKSTREAM, Topic.INVENTORY))
        self.shrink_adjustments = shrink_adjustments
        self.dead_letters = dead_letters
        dark = (start_ts, start_ts + store_dark_s)
        silent = (start_ts + 600.0, start_ts + 600.0 + register_silent_s)
        shrink = (start_ts + 300.0, start_ts + 300.0 + shrink_spike_s)
        burst = (start_ts + 900.0, start_ts + 900.0 + dead_letter_burst_s)
        self.windows = [
            IncidentWindow("store_dark", "store", self.dark_store, *dark),
            IncidentWindow("register_silent", "register", self.silent_register, *silent),
            IncidentWindow("shrink_spike", "location", self.shrink_location, *shrink),
            IncidentWindow("dead_letter_burst", "topic", self.burst_topic.value, *burst),
        ]
        self._dark, self._silent, self.shrink_window, self.burst_window = dark, silent, shrink, burst

    def store_is_dark(self, store_id: str, ts: float) -> bool:
        return store_id == self.dark_store and self._dark[0] <= ts < self._dark[1]

    def register_is_silent(self, register_id: str, ts: float) -> bool:
        return register_id == self.silent_register and self._silent[0] <= ts < self._silent[1]
