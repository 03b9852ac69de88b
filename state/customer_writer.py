"""Writes customer documents, fenced, and keeps the segment sets in step, each key in a call of its own slot.

A customer's document (`omni:cust:{id}`) and their membership of the segments (the
lifecycle stages and `vip`, one sorted set each, `omni:seg:{name}`) change together. They
live in different Redis Cluster slots, so they are not written in one call: the document
goes through the version fence alone, and each segment's memberships through a fenced flag
write of their own (`state/flag_sets.py`): beside the set, in its slot, `omni:seg:{name}:v`
keeps the version that last set each member, and a membership write applies only when its
version is newer. A replayed, older version changes neither the document nor any
membership, in whatever order the calls (or a Cluster's nodes) apply them, so
`GET /v1/segments` (set sizes) and the members lists agree with the documents once a
batch's calls have run.

Each document names the segments its customer is in (flag 1) and every other one they held
since the document before (flag 0), and of the `exclusive` segments (the lifecycle stages: a
customer is in exactly one) every one it does not name (flag 0). A run killed after writing a
version is replayed from its last snapshot, and the replay may batch differently, pass through
other stages or skip one the killed run wrote: what the replayed state remembers leaving is not
what Redis holds, so only removing the customer from every other exclusive segment is safe. The
price is one version entry per customer and exclusive segment in Redis (`omni:seg:{name}:v`);
the other segments (`vip`) hold entries only for customers who have been in them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from state import keys
from state.fence import VersionFence, newest_per_key
from state.flag_sets import Flag, FlagSets


@dataclass(frozen=True, slots=True)
class CustomerDoc:
    """The whole document of one customer at `version`, the segments they are in and those they left."""

    customer_id: str
    version: int
    doc: bytes
    segments: frozenset[str]
    as_of: float | None = None
    left: frozenset[str] = frozenset()  # segments held since the document before this one, not in `segments`

    @property
    def key(self) -> str:
        return keys.customer(self.customer_id)


class CustomerWriter:
    """Fenced, pipelined writer of `CustomerDoc`s and their segment memberships over a fixed list of segments."""

    def __init__(self, client: redis.Redis, segments: Sequence[str], generation: str = "",
                 exclusive: Sequence[str] = ()) -> None:  # fmt: skip
        self.segments = tuple(segments)
        self.exclusive = tuple(exclusive)
        self._segment_keys = {name: keys.segment(name) for name in self.segments}
        self._fence = VersionFence(client, generation)
        self._flags = FlagSets(generation, sorted_sets=True)
        self.scripts = (*self._fence.scripts, self._flags.script)

    def queue(self, pipe: redis.client.Pipeline, docs: Iterable[CustomerDoc]) -> tuple[int, int]:
        """Add the newest document per customer of `docs` to `pipe`, then their memberships.

        Returns (replies queued, documents queued). The documents go first, many per fenced call
        (`VersionFence.queue_docs`; one per document on Redis Cluster), each reply the number it
        applied; the membership calls follow and reply 0, so the sum of the replies counts the
        documents applied. A live batch of a few customers is then one call, not one per customer
        (every call is a reply for redis-py to parse).
        """
        docs = list(docs)
        newest = newest_per_key(docs, lambda doc: doc.customer_id)
        left: dict[str, set[str]] = defaultdict(set)
        for doc in docs:  # a batch with two versions of a customer: what the older one left counts too
            if doc.left:
                left[doc.customer_id] |= doc.left
        writes = [(doc.key, doc.version, doc.doc, 0) for doc in newest.values()]
        replies = self._fence.queue_docs(pipe, writes, keys.DOC_FIELD) if writes else 0
        flags: dict[str, list[Flag]] = defaultdict(list)
        for doc in newest.values():
            for name in doc.segments:
                flags[name].append((doc.customer_id, doc.version, True))
            for name in left.get(doc.customer_id, set()).union(self.exclusive):
                if name not in doc.segments:
                    flags[name].append((doc.customer_id, doc.version, False))
        for name in self.segments:
            if flags.get(name):
                replies += self._flags.queue(pipe, self._segment_keys[name], flags[name])
        return replies, len(newest)
