"""Blends for shoppers without a profile, reused while their inputs are the very same.

Most product-page requests come from shoppers the engine knows nothing of yet
(new or anonymous visitors), and for them the blend is a function of the
page's SKU, the location, the channel, the variant, `k`, the shared lists
(neighbours, trending) and which candidates are sellable: the same for every
such shopper on that page at that store. The lists are the reader's cached
objects, replaced when they are refetched, so an entry is reused only while
each list is the same object and the sellable candidates are the same set:
the answer is exactly what the blend would compute again, never staler than
the list cache itself. The blend was the largest share of the endpoint's
time; a hot product page now pays it once per list refresh or stock change.
"""

from __future__ import annotations

from collections.abc import Mapping

from operators.recs.blend import RecItem, RecMaterial

ColdKey = tuple[str | None, str | None, str | None, str, int, bool]
"""(sku, location_id, channel, variant name, k, include_seen)."""


_Entry = tuple[
    tuple[tuple[str, object], ...],  # the neighbour lists by SKU
    tuple[tuple[str, object], ...],  # the trending lists by scope
    object,  # the ranker weights
    tuple[str, ...],  # the sellable candidates
    tuple[tuple[str, float, str, tuple[tuple[str, float], ...]], ...],  # the answer's items, features as pairs
]
"""What an answer was blended from, and the answer, as exact tuples of strings, numbers and the shared lists (also
such tuples): the garbage collector stops tracking those within a collection or two, so a full store adds nothing
to the older collections' walks. Sets, lists, dicts and named tuples stay tracked for good: with thousands of
entries, walking them was tens of milliseconds of p99."""


class ColdAnswers:
    """Blended answers by `ColdKey`, valid while their material is unchanged. Bounded: it starts afresh when full.

    >>> answers = ColdAnswers()
    >>> lists = {"global": (("SKU-1", 1.0, ""),)}
    >>> material = RecMaterial({}, {}, lists, None, {"SKU-1"})
    >>> answers.put(("SKU-9", None, None, "blend", 10), material, [RecItem("SKU-1", 0.5, "trending_global", {})])
    >>> answers.get(("SKU-9", None, None, "blend", 10), material._replace(sellable={"SKU-1"}))
    [RecItem(sku='SKU-1', score=0.5, reason='trending_global', features={})]
    >>> answers.get(("SKU-9", None, None, "blend", 10), material._replace(sellable=set())) is None  # stock changed
    True
    >>> fresh = {"global": (("SKU-1", 1.0, ""),)}  # refetched: an equal list, but another object
    >>> answers.get(("SKU-9", None, None, "blend", 10), material._replace(trending=fresh)) is None
    True
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[ColdKey, _Entry] = {}

    def get(self, key: ColdKey, material: RecMaterial) -> list[RecItem] | None:
        """The answer stored for `key` if it was blended from this very material; None otherwise."""
        held = self._entries.get(key)
        if held is None:
            return None
        neighbours, trending, ranker, sellable, items = held
        if (
            ranker is material.ranker
            and _same_lists(neighbours, material.neighbours)
            and _same_lists(trending, material.trending)
            and frozenset(sellable) == material.sellable
        ):
            return [RecItem(sku, score, reason, dict(features)) for sku, score, reason, features in items]
        return None

    def put(self, key: ColdKey, material: RecMaterial, items: list[RecItem]) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (
            tuple(material.neighbours.items()),
            tuple(material.trending.items()),
            material.ranker,
            tuple(material.sellable),  # type: ignore[arg-type]
            tuple((item.sku, item.score, item.reason, tuple(item.features.items())) for item in items),
        )


def _same_lists(then: tuple[tuple[str, object], ...], now: Mapping[str, object]) -> bool:
    """The same names, each bound to the very same list object."""
    if len(then) != len(now):
        return False
    return all(now.get(name) is value for name, value in then)
