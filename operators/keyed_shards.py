"""Typed routing between keyed stages: a batch's items gathered per shard of the stage that takes them.

A flow's keyed steps hold *shards* of entities (cards, shoppers, SKUs), not one
Bytewax key per entity: Bytewax routes and snapshots per key, and both cost per
key (docs/performance.md). So a step emits, per batch, one `ShardBatch` per
(stage, shard) it has items for, and the flow sends each to the stage it names.
The stage is a member of the flow's own `StrEnum`, so a wrong destination is a
type error, not a string prefix that silently matches nothing.

Pure logic: the Bytewax glue that branches a stream of `ShardBatch` by stage is
`flows.keyed`.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ShardBatch(Generic[S, T]):
    """Items of one batch bound for one shard of one stage.

    `shard` is the Bytewax key the stage is keyed on (`"card:3"`): stable across
    processes and restarts, since recovery stores a stage's state under it.
    """

    stage: S
    shard: str
    items: list[T]


class ShardRouter(Generic[S, T]):
    """Gathers items per (stage, shard) during one batch; `drain` hands them over as `ShardBatch`es.

    Shards are `crc32(entity_id) % shards` (Python's `hash` is salted per
    process, so it would move entities between shards after a restart). A stage
    with a single key (`add_to_single`) has the shard key `stage.value`.

    Parameters
    ----------
    shards
        Shards per sharded stage; part of the recovery layout (changing it
        moves entities between keys).
    stage_shards
        Stages with a shard count of their own (e.g. one model that must learn from
        every label, not a quarter of them); the others have `shards`.

    Examples
    --------
    >>> class Stage(StrEnum):
    ...     CARDS = "card"
    ...     OPS = "ops"
    >>> router: ShardRouter[Stage, str] = ShardRouter(shards=4)
    >>> router.add(Stage.CARDS, "tok_1", "payment-1")
    >>> router.add(Stage.CARDS, "tok_1", "payment-2")
    >>> router.add_to_single(Stage.OPS, "sale-1")
    >>> [(b.stage.name, b.shard == router.shard_of(Stage.CARDS, "tok_1"), b.items) for b in router.drain()]
    [('CARDS', True, ['payment-1', 'payment-2']), ('OPS', False, ['sale-1'])]
    >>> router.drain()  # drained: the next batch starts empty
    []
    """

    def __init__(self, shards: int, max_cached: int = 1 << 17, stage_shards: Mapping[S, int] | None = None) -> None:
        if shards < 1 or any(n < 1 for n in (stage_shards or {}).values()):
            raise ValueError(f"shards must be >= 1, got {shards} and {dict(stage_shards or {})}")
        self.shards = shards
        self.stage_shards: dict[S, int] = dict(stage_shards or {})
        self.max_cached = max_cached
        # A flow routes several items per event, so `add` is kept to two dict hits in the common case: the
        # entity's shard name, memoised per stage (crc32 on a miss; each memo starts afresh at `max_cached`
        # entities, so it stays bounded), and the group, keyed by that name alone (it starts with the stage).
        self._groups: dict[str, list[T]] = {}
        self._stage_of: dict[str, S] = {}
        self._memos: dict[S, dict[str, str]] = {}
        self._names: dict[S, list[str]] = {}

    def shard_of(self, stage: S, entity_id: str) -> str:
        """The Bytewax key of the shard of `stage` that holds `entity_id`."""
        memo = self._memos.get(stage)
        if memo is None:
            memo = self._memos[stage] = {}
            self._names[stage] = [f"{stage.value}:{i}" for i in range(self.stage_shards.get(stage, self.shards))]
        shard = memo.get(entity_id)
        if shard is None:
            if len(memo) >= self.max_cached:
                memo.clear()
            names = self._names[stage]
            shard = memo[entity_id] = names[zlib.crc32(entity_id.encode()) % len(names)]
        return shard

    def add(self, stage: S, entity_id: str, item: T) -> None:
        """Send `item` to the shard of `stage` that holds `entity_id`."""
        memo = self._memos.get(stage)
        if memo is None:
            self.shard_of(stage, entity_id)  # the stage's first item: its memo and names
            memo = self._memos[stage]
        shard = memo.get(entity_id)
        if shard is None:  # `shard_of`, inlined: most shoppers are new, so misses are common
            if len(memo) >= self.max_cached:
                memo.clear()
            names = self._names[stage]
            shard = memo[entity_id] = names[zlib.crc32(entity_id.encode()) % len(names)]
        group = self._groups.get(shard)
        if group is None:
            self._groups[shard] = [item]
            self._stage_of[shard] = stage
        else:
            group.append(item)

    def add_to_single(self, stage: S, item: T) -> None:
        """Send `item` to `stage`'s only key (a stage that sees everything, e.g. operations)."""
        shard: str = stage.value
        group = self._groups.get(shard)
        if group is None:
            self._groups[shard] = [item]
            self._stage_of[shard] = stage
        else:
            group.append(item)

    def add_at(self, stage: S, index: int, item: T) -> None:
        """Send `item` to shard number `index` of `stage` (a stage that pairs its shards with another's, or
        an item every shard needs, sent once per index).

        >>> class Stage(StrEnum):
        ...     DAYS = "days"
        >>> router: ShardRouter[Stage, str] = ShardRouter(shards=2)
        >>> router.add_at(Stage.DAYS, 1, "tick")
        >>> [(b.shard, b.items) for b in router.drain()]
        [('days:1', ['tick'])]
        >>> wide: ShardRouter[Stage, str] = ShardRouter(shards=2, stage_shards={Stage.DAYS: 8})
        >>> wide.add_at(Stage.DAYS, 7, "tick")  # a stage with more shards than the default
        >>> [b.shard for b in wide.drain()]
        ['days:7']
        """
        count = self.stage_shards.get(stage, self.shards)  # the stage's own count, not the default
        if not 0 <= index < count:
            raise ValueError(f"shard index {index} of {stage.value} is outside 0..{count - 1}")
        if stage not in self._names:
            self.shard_of(stage, "")  # builds the stage's shard names once
        shard = self._names[stage][index]
        group = self._groups.get(shard)
        if group is None:
            self._groups[shard] = [item]
            self._stage_of[shard] = stage
        else:
            group.append(item)

    def add_many(self, stage: S, entity_ids: Sequence[str], items: Sequence[T]) -> None:
        """`add` for a whole batch: `items[i]` to the shard of `stage` holding `entity_ids[i]`.

        One Python call per batch instead of three per item, for a flow's hot path.

        >>> class Stage(StrEnum):
        ...     CARDS = "card"
        >>> router: ShardRouter[Stage, str] = ShardRouter(shards=2)
        >>> router.add(Stage.CARDS, "tok_1", "payment-1")
        >>> router.add_many(Stage.CARDS, ["tok_2", "tok_1"], ["payment-2", "payment-3"])
        >>> one: ShardRouter[Stage, str] = ShardRouter(shards=2)
        >>> for card, item in [("tok_1", "payment-1"), ("tok_2", "payment-2"), ("tok_1", "payment-3")]:
        ...     one.add(Stage.CARDS, card, item)
        >>> router.drain() == one.drain()
        True
        """
        if len(entity_ids) != len(items):
            raise ValueError(f"{len(entity_ids)} entity ids for {len(items)} items")
        self.shard_of(stage, "")  # builds the stage's shard names once
        names, groups, crc32 = self._names[stage], self._groups, zlib.crc32
        shards = len(names)
        for entity_id, item in zip(entity_ids, items, strict=True):
            shard = names[crc32(entity_id.encode()) % shards]
            group = groups.get(shard)
            if group is None:
                groups[shard] = [item]
                self._stage_of[shard] = stage
            else:
                group.append(item)

    def add_to_every(self, stage: S, item: T) -> None:
        """Send `item` to every shard of `stage` (a clock tick, a catalog fact every shard needs).

        >>> class Stage(StrEnum):
        ...     BOOK = "book"
        >>> router: ShardRouter[Stage, str] = ShardRouter(shards=2)
        >>> router.add_to_every(Stage.BOOK, "tick")
        >>> [(b.shard, b.items) for b in router.drain()]
        [('book:0', ['tick']), ('book:1', ['tick'])]
        """
        self.shard_of(stage, "")  # builds the stage's shard names once
        for shard in self._names[stage]:
            group = self._groups.get(shard)
            if group is None:
                self._groups[shard] = [item]
                self._stage_of[shard] = stage
            else:
                group.append(item)

    def add_all_to_single(self, stage: S, items: Sequence[T]) -> None:
        """`add_to_single` for a whole batch, in order."""
        if items:
            self._groups.setdefault(stage.value, []).extend(items)
            self._stage_of[stage.value] = stage

    def drain(self) -> list[ShardBatch[S, T]]:
        """This batch's groups in the order first added; the router is empty afterwards."""
        stage_of = self._stage_of
        out = [ShardBatch(stage_of[shard], shard, items) for shard, items in self._groups.items()]
        self._groups = {}
        return out
