"""Co-visitation: SKUs that shoppers look at, cart and buy together, decayed by time.

Well-tuned co-visitation / session-kNN models match or beat neural
recommenders on public session benchmarks (Ludewig & Jannach, "Evaluation of
session-based recommendation algorithms", 2018; the Kaggle OTTO winners),
and they learn in O(1) per event. Two keyed states build it: `SessionTrail`
per actor turns each interaction into pair updates (`CoVisit`), and
`ItemNeighbours` per SKU folds them into a bounded, time-decayed neighbour list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from operators.recs.decay import DecayedScores
from operators.recs.interactions import Interaction, first_delivery, keep_newest
from operators.seen_events import SeenEvents

DEFAULT_KIND_WEIGHTS = (1.0, 3.0, 5.0)
"""Pair weight by interaction kind (view, cart, purchase): carting together says more than browsing together."""


class CoVisit(NamedTuple):
    """Evidence that `other` goes with `item`: route it to `item`'s `ItemNeighbours`."""

    item: str
    other: str
    other_category: str | None
    weight: float
    ts: float


class SessionTrail:
    """The recent SKUs of one actor, and the co-visits each new interaction makes with them.

    A new interaction pairs with the SKUs before it that belong to the same
    session (a web session, a till basket) or happened within `window_s`;
    each pair is emitted in both directions. The weight is the mean of the
    two interactions' kind weights, times `position_decay` per step back in
    the trail (the item seen just before counts most: session-kNN's
    position weighting). A repeat of a SKU already in the trail moves it to
    the front (keeping its strongest kind) and pairs again: re-viewing is
    interest. A redelivered `event_id` (same SKU) pairs nothing, so
    producer retries never inflate co-visitation.

    Cost: at most 2 × `max_items` pairs per interaction; the flow
    routes each to a keyed state, so `max_items` trades quality for throughput.

    Parameters
    ----------
    window_s
        Event-time seconds across which items of different sessions still pair.
    max_items
        SKUs remembered per actor.
    dedup_window_s
        Event-time seconds an (event_id, sku) is remembered; 0 when the caller de-duplicates.
    kind_weights
        Weights of view, cart, purchase.
    position_decay
        Factor per step back in the trail, in (0, 1].

    Examples
    --------
    >>> from operators.recs.interactions import InteractionKind as K
    >>> def hit(eid, ts, sku, kind=K.VIEW):
    ...     return Interaction(eid, ts, "u:U-1", "s:S-1", sku, kind, "web", None, "toys")
    >>> trail = SessionTrail(position_decay=0.5)
    >>> trail.learn_one(hit("e1", 0.0, "SKU-1"))
    []
    >>> trail.learn_one(hit("e2", 10.0, "SKU-2", K.CART))
    [CoVisit(item='SKU-2', other='SKU-1', other_category='toys', weight=2.0, ts=10.0), \
CoVisit(item='SKU-1', other='SKU-2', other_category='toys', weight=2.0, ts=10.0)]
    >>> trail.learn_one(hit("e2", 10.0, "SKU-2", K.CART))  # a redelivery
    []
    >>> [(c.item, c.other, c.weight) for c in trail.learn_one(hit("e3", 20.0, "SKU-3"))]
    [('SKU-3', 'SKU-2', 2.0), ('SKU-2', 'SKU-3', 2.0), ('SKU-3', 'SKU-1', 0.5), ('SKU-1', 'SKU-3', 0.5)]
    """

    def __init__(
        self,
        window_s: float = 1_800.0,
        max_items: int = 8,
        dedup_window_s: float = 3_600.0,
        kind_weights: Sequence[float] = DEFAULT_KIND_WEIGHTS,
        position_decay: float = 0.8,
    ) -> None:
        self.window_s = window_s
        self.max_items = max_items
        self.dedup_window_s = dedup_window_s
        self.kind_weights = tuple(kind_weights)
        self.position_decay = position_decay
        # Newest last: (sku, kind, ts, session, category).
        self._items: list[tuple[str, int, float, str, str | None]] = []
        # 0 turns de-duplication off, for a caller that already drops redeliveries (one window, not three).
        self._seen = SeenEvents(dedup_window_s) if dedup_window_s > 0 else None

    def learn_one(self, interaction: Interaction) -> list[CoVisit]:
        """Remember `interaction`; returns the pair updates it makes (both directions)."""
        event_id, ts, _, session, sku, kind, _, _, category = interaction[:9]
        if not first_delivery(self._seen, event_id, sku, ts):
            return []
        weights = self.kind_weights
        own_weight = weights[kind - 1]
        items = self._items
        previous = None
        out: list[CoVisit] = []
        factor = 1.0
        window_s, decay = self.window_s, self.position_decay
        for index in range(len(items) - 1, -1, -1):
            other, other_kind, other_ts, other_session, other_category = items[index]
            if other == sku:
                previous = index
                continue
            if other_session == session or abs(ts - other_ts) <= window_s:
                weight = (own_weight + weights[other_kind - 1]) * 0.5 * factor
                out.append(CoVisit(sku, other, other_category, weight, ts))
                out.append(CoVisit(other, sku, category, weight, ts))
            factor *= decay
        keep_newest(items, (sku, kind, ts, session, category), previous, self.max_items)
        return out

    def recent(self) -> list[str]:
        """The remembered SKUs, newest first."""
        return [item[0] for item in reversed(self._items)]


class ItemNeighbours:
    """The SKUs that go with one SKU, by time-decayed co-visit weight, at most ~`capacity` of them.

    Decay lets the list follow the season (last month's pairings fade);
    the bound keeps the state and the Redis document small, dropping the
    weakest neighbours first (`DecayedScores`).

    Parameters
    ----------
    half_life_s
        Event-time seconds after which a co-visit counts half.
    capacity
        Neighbours kept.

    Examples
    --------
    >>> neighbours = ItemNeighbours(half_life_s=86_400.0, capacity=10)
    >>> neighbours.learn_one(CoVisit("SKU-1", "SKU-2", "toys", 1.0, 0.0))
    >>> neighbours.learn_one(CoVisit("SKU-1", "SKU-3", "books", 3.0, 86_400.0))
    >>> neighbours.top(5, now=86_400.0)
    [('SKU-3', 3.0, 'books'), ('SKU-2', 0.5, 'toys')]
    """

    def __init__(self, half_life_s: float = 14 * 86_400.0, capacity: int = 100) -> None:
        self.half_life_s = half_life_s
        self.capacity = capacity
        self._scores = DecayedScores(half_life_s, capacity)

    def learn_one(self, covisit: CoVisit) -> None:
        self._scores.add(covisit.other, covisit.weight, covisit.ts, covisit.other_category)

    def top(self, n: int, now: float) -> list[tuple[str, float, str]]:
        """The `n` strongest neighbours as (sku, score as of `now`, category or "")."""
        return self._scores.top_labelled(n, now)

    @property
    def newest(self) -> float:
        """Event time of the newest co-visit learned (-inf before any)."""
        return self._scores.newest

    def __len__(self) -> int:
        return len(self._scores)
