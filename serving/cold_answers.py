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

import msgspec

from operators.recs.blend import RecItem, RecMaterial

ColdKey = tuple[str | None, str | None, str | None, str, int, bool]
"""(sku, location_id, channel, variant name, k, include_seen)."""

_ITEMS = msgspec.msgpack.Encoder()
_ITEMS_OF = msgspec.msgpack.Decoder()  # untyped: every number back exactly as it was stored


class _Entry(msgspec.Struct, frozen=True, gc=False):
    """What an answer was blended from, and the answer.

    The collector never tracks it (`gc=False`: it holds no cycle), and it holds next to nothing tracked: the
    answer is MessagePack bytes, the lists are named in two flat tuples (name, list, name, list, ...) of the
    reader's shared lists. Nested tuples are what it held before (about 40 per entry): CPython untracks a tuple
    of tuples one level per collection of the generation it is in (a collection moves an object's children
    after it, and looks at each tuple once), so entries reached generations 1 and 2 tracked, and their walks,
    tens of milliseconds with thousands of entries, were much of the endpoint's p99 (docs/recommendations.md).
    """

    neighbours: tuple[object, ...]
    trending: tuple[object, ...]
    ranker: object
    sellable: tuple[str, ...]
    items: bytes


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
        if (
            held.ranker is material.ranker
            and _same_lists(held.neighbours, material.neighbours)
            and _same_lists(held.trending, material.trending)
            and frozenset(held.sellable) == material.sellable
        ):
            stored = _ITEMS_OF.decode(held.items)
            return [RecItem(sku, score, reason, features) for sku, score, reason, features in stored]
        return None

    def put(self, key: ColdKey, material: RecMaterial, items: list[RecItem]) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = _Entry(
            _flat(material.neighbours),
            _flat(material.trending),
            material.ranker,
            tuple(material.sellable),  # type: ignore[arg-type]
            _ITEMS.encode(items),
        )


def _flat(lists: Mapping[str, object]) -> tuple[object, ...]:
    """(name, list, name, list, ...): one tuple, not a tuple of pairs (see `_Entry`)."""
    return tuple(part for pair in lists.items() for part in pair)


def _same_lists(then: tuple[object, ...], now: Mapping[str, object]) -> bool:
    """The same names, each bound to the very same list object."""
    if len(then) != 2 * len(now):
        return False
    return all(now.get(then[i]) is then[i + 1] for i in range(0, len(then), 2))  # type: ignore[call-overload]
