"""What one shopper has been doing: their recent SKUs and the categories they lean to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from operators.recs.covisitation import DEFAULT_KIND_WEIGHTS
from operators.recs.decay import DecayedScores
from operators.recs.interactions import Interaction, first_delivery, keep_newest
from operators.seen_events import SeenEvents


class ProfileDoc(TypedDict):
    """A shopper profile as plain JSON-able data, the document the flow writes to Redis.

    `recent` is newest first: [sku, kind (1 view, 2 cart, 3 purchase), ts, category or ""].
    `categories` maps category to its decayed affinity as of `as_of` (event time).
    `visits` counts the views of the recent SKUs viewed more than once (absent: once; older documents have
    no `visits` at all): how often a shopper came back to a SKU says how likely they come back again.
    """

    actor: str
    recent: list[tuple[str, int, float, str]]
    categories: dict[str, float]
    as_of: float
    visits: NotRequired[dict[str, int]]


class ShopperProfile:
    """The recent SKUs and time-decayed category affinities of one actor.

    The recent SKUs anchor co-visitation candidates (what the shopper is on
    now); the affinities say which category shelves to pull trending SKUs
    from, which carries a shopper who has only browsed a little. A repeat of
    a SKU moves it to the front with the strongest kind seen; a redelivered
    (`event_id`, `sku`) changes nothing.

    Parameters
    ----------
    actor
        The actor key (`u:<user_id>` or `s:<session_id>`).
    max_recent
        SKUs remembered.
    half_life_s
        Event-time seconds after which an interaction's category weight counts half.
    max_categories
        Categories kept.
    dedup_window_s
        Event-time seconds an (event_id, sku) is remembered; 0 when the caller de-duplicates.
    kind_weights
        Affinity weight of a view, a cart, a purchase.

    Examples
    --------
    >>> from operators.recs.interactions import InteractionKind as K
    >>> profile = ShopperProfile("u:U-1", half_life_s=86_400.0)
    >>> profile.learn_one(Interaction("e1", 0.0, "u:U-1", "s:S-1", "SKU-1", K.VIEW, "web", None, "toys"))
    >>> profile.learn_one(Interaction("e2", 86_400.0, "u:U-1", "s:S-2", "SKU-2", K.CART, "app", None, "books"))
    >>> profile.learn_one(Interaction("e2", 86_400.0, "u:U-1", "s:S-2", "SKU-2", K.CART, "app", None, "books"))
    >>> profile.get()
    {'actor': 'u:U-1', 'recent': [('SKU-2', 2, 86400.0, 'books'), ('SKU-1', 1, 0.0, 'toys')], \
'categories': {'books': 3.0, 'toys': 0.5}, 'as_of': 86400.0, 'visits': {}}
    >>> profile.learn_one(Interaction("e3", 86_401.0, "u:U-1", "s:S-2", "SKU-1", K.VIEW, "app", None, "toys"))
    >>> profile.get()["visits"]  # SKU-1 viewed twice, SKU-2 once
    {'SKU-1': 2}
    """

    def __init__(
        self,
        actor: str,
        max_recent: int = 20,
        half_life_s: float = 3 * 86_400.0,
        max_categories: int = 8,
        dedup_window_s: float = 3_600.0,
        kind_weights: Sequence[float] = DEFAULT_KIND_WEIGHTS,
    ) -> None:
        self.actor = actor
        self.max_recent = max_recent
        self.half_life_s = half_life_s
        self.max_categories = max_categories
        self.dedup_window_s = dedup_window_s
        self.kind_weights = tuple(kind_weights)
        self._recent: list[tuple[str, int, float, str]] = []  # oldest first
        self._visits: dict[str, int] = {}  # interactions per SKU of `_recent`, for those with more than one
        self._categories = DecayedScores(half_life_s, max_categories)
        # 0 turns de-duplication off, for a caller that already drops redeliveries (one window, not three).
        self._seen = SeenEvents(dedup_window_s) if dedup_window_s > 0 else None
        self.as_of = float("-inf")

    def learn_one(self, interaction: Interaction) -> None:
        sku, ts, kind = interaction.sku, interaction.ts, int(interaction.kind)
        if not first_delivery(self._seen, interaction.event_id, sku, ts):
            return
        if ts > self.as_of:
            self.as_of = ts
        category = interaction.category or ""
        if category:
            self._categories.add(category, self.kind_weights[kind - 1], ts)
        recent = self._recent
        previous = None
        for index in range(len(recent) - 1, -1, -1):
            if recent[index][0] == sku:
                previous = index
                break
        visits = self._visits
        if previous is not None:
            visits[sku] = visits.get(sku, 1) + 1
        elif len(recent) >= self.max_recent:
            visits.pop(recent[0][0], None)  # the oldest SKU is about to drop out
        keep_newest(recent, (sku, kind, ts, category), previous, self.max_recent)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Flow state recovered from a release before `visits` holds no counts: every SKU counted once.
        state.setdefault("_visits", {})
        self.__dict__.update(state)

    def get(self) -> ProfileDoc:
        as_of = self.as_of
        return {
            "actor": self.actor,
            "recent": self._recent[::-1],
            "categories": dict(self._categories.top(self.max_categories, as_of)),
            "as_of": as_of,
            "visits": dict(self._visits),
        }
