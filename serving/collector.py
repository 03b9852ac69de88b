"""The garbage-collection policy of an API process: one place, so the rest of serving reads as plain FastAPI.

On the request path a collection is a pause of every request in flight: a
full one walks everything the process holds, a young one everything allocated
since the last. Both policies here keep those walks short (docs/performance.md,
"Garbage collection", gives what each buys).
"""

from __future__ import annotations

import gc

LISTS_PER_YOUNG_COLLECTION = 16
"""Recommendation lists parsed between two young collections: a few hundred tuples, well under a millisecond."""


def freeze_startup_objects() -> None:
    """Keep everything built so far (modules, app, routes, clients) out of every later collection.

    Call it once the app is built, before it serves: those objects live as long
    as the process, and full collections would otherwise walk them all on the
    request path (the p99).
    """
    gc.freeze()


class ParsedListCollector:
    """Hands freshly parsed recommendation lists to a young collection while they are few.

    The recommendations reader caches neighbour and trending lists as tuples of
    (sku, score, category) tuples; CPython stops tracking the inner ones at the
    first young collection that visits them, and a list's outer tuple at the
    next collection of the generation it then sits in (one level per collection).
    Left to the allocation counter, they pile up:
    a cache refill frees about as many objects as it makes, so collections are
    rarely triggered, and the one that finally runs walks every list cached
    since the last (15-25 ms, the endpoint's p99 at half load). Collecting
    every `every` parsed lists keeps each walk to a few hundred tuples.

    Pass it to `state.rec_reader.RecReader(after_parse=...)`; the reader counts,
    the API decides.

    >>> collect = ParsedListCollector(every=16)
    >>> collect(10); collect.pending
    10
    >>> collect(6); collect.pending
    0
    """

    def __init__(self, every: int = LISTS_PER_YOUNG_COLLECTION) -> None:
        self.every = every
        self.pending = 0

    def __call__(self, lists: int) -> None:
        """Note `lists` newly parsed lists; run a young collection once `every` are pending."""
        self.pending += lists
        if self.pending >= self.every:
            self.pending = 0
            gc.collect(0)
