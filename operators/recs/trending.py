"""What is hot right now, per scope: everywhere, in a category, at a location, on a channel."""

from __future__ import annotations

from operators.recs.decay import DecayedScores
from operators.recs.interactions import Interaction

GLOBAL = "global"


def scopes_of(interaction: Interaction) -> list[str]:
    """The trending scopes an interaction counts in.

    >>> from operators.recs.interactions import InteractionKind
    >>> scopes_of(Interaction("e1", 0.0, "u:U-1", "t:T-1", "SKU-1", InteractionKind.PURCHASE, "store",
    ...                       "STORE-01", "toys"))
    ['global', 'cat:toys', 'loc:STORE-01', 'ch:store']
    """
    scopes = [GLOBAL]
    if interaction.category:
        scopes.append(category_scope(interaction.category))
    if interaction.location_id:
        scopes.append(location_scope(interaction.location_id))
    scopes.append(channel_scope(interaction.channel))
    return scopes


def category_scope(category: str) -> str:
    return "cat:" + category


def location_scope(location_id: str) -> str:
    return "loc:" + location_id


def channel_scope(channel: str) -> str:
    return "ch:" + channel


class Trending:
    """Time-decayed interaction weight per SKU in one scope, at most ~`capacity` SKUs.

    A short half-life makes this "trending" rather than "best sellers": a SKU
    that sold all morning outranks one that sold all last week. The flow
    keys it by scope (`scopes_of`); the global scope is one hot key, so the
    flow should pre-aggregate per batch before `learn_one`.

    Parameters
    ----------
    half_life_s
        Event-time seconds after which an interaction counts half.
    capacity
        SKUs kept.

    Examples
    --------
    >>> trending = Trending(half_life_s=3600.0, capacity=100)
    >>> trending.learn_one("SKU-1", 1.0, ts=0.0, category="toys")
    >>> trending.learn_one("SKU-2", 1.5, ts=3600.0, category="books")
    >>> trending.learn_one("SKU-1", 1.0, ts=3600.0)
    >>> trending.top(2, now=3600.0)
    [('SKU-1', 1.5, 'toys'), ('SKU-2', 1.5, 'books')]
    """

    def __init__(self, half_life_s: float = 6 * 3_600.0, capacity: int = 200) -> None:
        self.half_life_s = half_life_s
        self.capacity = capacity
        self._scores = DecayedScores(half_life_s, capacity)

    def learn_one(self, sku: str, weight: float, ts: float, category: str | None = None) -> None:
        self._scores.add(sku, weight, ts, category)

    def top(self, n: int, now: float) -> list[tuple[str, float, str]]:
        """The `n` hottest SKUs as (sku, score as of `now`, category or "")."""
        return self._scores.top_labelled(n, now)

    @property
    def newest(self) -> float:
        return self._scores.newest

    def __len__(self) -> int:
        return len(self._scores)
