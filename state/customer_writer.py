"""Writes customer documents, fenced, and keeps the segment sets in step in the same call.

A customer's document and their membership of every segment (the lifecycle stages and
`vip`) change together: the fence lets a newer version through, and only then the Lua
adds the customer to the sets they are in and removes them from the others. A replayed,
older version changes neither, so `GET /v1/segments` (set sizes) and the members lists
always agree with the documents.

The segment sets are shared by all customers, so this script spans Redis Cluster slots;
on a cluster it runs one customer per call like every fenced write (`state.fence`), and
the sets must share the customer's node (a hash tag per set; docs/customers.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from state import keys
from state.fence import VersionFence, newest_per_key

# KEYS[2..] the segment sets; ARGV[EXTRA] the member, ARGV[EXTRA + i] '1' when in the i-th set.
_KEEP_SEGMENTS = """
for i = 2, #KEYS do
  if ARGV[EXTRA + i - 1] == '1' then
    redis.call('ZADD', KEYS[i], 0, ARGV[EXTRA])
  else
    redis.call('ZREM', KEYS[i], ARGV[EXTRA])
  end
end
"""


@dataclass(frozen=True, slots=True)
class CustomerDoc:
    """The whole document of one customer at `version`, and the segments they are in."""

    customer_id: str
    version: int
    doc: bytes
    segments: frozenset[str]
    as_of: float | None = None

    @property
    def key(self) -> str:
        return keys.customer(self.customer_id)


class CustomerWriter:
    """Fenced, pipelined writer of `CustomerDoc`s over a fixed list of segment names."""

    def __init__(self, client: redis.Redis, segments: Sequence[str], generation: str = "") -> None:
        self.segments = tuple(segments)
        self._segment_keys = [keys.segment(name) for name in self.segments]
        self._fence = VersionFence(client, generation, after_applied=_KEEP_SEGMENTS)
        self.scripts = self._fence.scripts

    def queue(self, pipe: redis.client.Pipeline, docs: Iterable[CustomerDoc]) -> int:
        """Add the newest document per customer of `docs` to `pipe`; one reply (1 or 0) each; returns how many."""
        newest = newest_per_key(docs, lambda doc: doc.customer_id)
        for doc in newest.values():
            flags = ["1" if name in doc.segments else "0" for name in self.segments]
            self._fence.queue(pipe, doc.key, doc.version, [keys.DOC_FIELD, doc.doc],
                              extra_keys=self._segment_keys, extra_args=[doc.customer_id, *flags])  # fmt: skip
        return len(newest)
