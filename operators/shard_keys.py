"""Stable shard keys: many entities grouped under few Bytewax keys.

Keyed steps hold shards of entities rather than one key per entity: Bytewax
routes and snapshots per key, and both cost per key (docs/performance.md; the
inventory and recommend flows measured it), so a batch's updates travel as
one item per shard and an epoch's snapshot writes one row per shard.

The typed form is `operators.keyed_shards.ShardRouter` (same `crc32 % shards`
placement, the stage named by an enum member rather than a string prefix):
the recommend flow routes with it. `ShardKeys` and `add_to_group` remain
for the inventory flow's ledger shards, whose recovery state is stored under
these keys.
"""

from __future__ import annotations

import zlib
from typing import TypeVar

T = TypeVar("T")


def shard_of(key: str, shards: int) -> str:
    """The shard key of `key`: stable across processes and restarts (Python's `hash` is salted per process).

    >>> shard_of("SKU-1", 16) == shard_of("SKU-1", 16), shard_of("SKU-1", 1)
    (True, '0')
    """
    return str(zlib.crc32(key.encode()) % shards)


class ShardKeys:
    """`prefix + shard_of(key)`, memoised: the flow routes several items per event (co-visits, scopes).

    Hashing and formatting cost ~0.8 us a call, a dict hit ~0.05 us. The memo
    starts afresh when it holds `max_cached` keys, so it stays bounded.

    >>> keys = ShardKeys("nb/", 16)
    >>> keys("SKU-1") == "nb/" + shard_of("SKU-1", 16)
    True
    """

    def __init__(self, prefix: str, shards: int, max_cached: int = 1 << 17) -> None:
        self.prefix = prefix
        self.shards = shards
        self.max_cached = max_cached
        self._memo: dict[str, str] = {}

    def __call__(self, key: str) -> str:
        shard = self._memo.get(key)
        if shard is None:
            if len(self._memo) >= self.max_cached:
                self._memo.clear()
            shard = self._memo[key] = self.prefix + str(zlib.crc32(key.encode()) % self.shards)
        return shard


def add_to_group(groups: dict[str, list[T]], key: str, item: T) -> None:
    """Append `item` to the list of `key` in `groups`: how a batch's items are gathered per shard.

    >>> groups: dict[str, list[int]] = {}
    >>> add_to_group(groups, "0", 1); add_to_group(groups, "0", 2); add_to_group(groups, "1", 3)
    >>> groups
    {'0': [1, 2], '1': [3]}
    """
    group = groups.get(key)
    if group is None:
        groups[key] = [item]
    else:
        group.append(item)
