"""Bytewax glue for `operators.keyed_shards`: send `ShardBatch`es to the keyed stage they name.

A flow reads as: a step emits `ShardBatch`es (and other records), `to_stage`
splits off the ones for one stage, `keyed_stage` runs that stage's logic per
shard key and hands back what it emits, unkeyed. Only the stateful step's id is
part of the recovery state; the helper steps around it may be renamed freely.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import BranchOut, StatefulBatchLogic

from operators.keyed_shards import ShardBatch, ShardRouter

S = TypeVar("S", bound=StrEnum)
T = TypeVar("T")
W = TypeVar("W")
State = TypeVar("State")


def to_stage(step_id: str, up: Stream[Any], stage: StrEnum) -> BranchOut[Any, Any]:
    """Split `up` into the `ShardBatch`es bound for `stage` (`trues`) and everything else (`falses`)."""

    def is_for_stage(item: Any) -> bool:
        return type(item) is ShardBatch and item.stage is stage

    return op.branch(step_id, up, is_for_stage)


def keyed_stage(
    step_id: str,
    up: Stream[ShardBatch[Any, T]],
    builder: Callable[[State | None], StatefulBatchLogic[list[T], W, State]],
) -> Stream[W]:
    """Run a stateful stage over `ShardBatch`es, keyed by their shard; its outputs come back unkeyed.

    `step_id` names the stateful step, under which recovery keeps the state of
    each shard: renaming it orphans that state.
    """
    keyed = op.map(f"{step_id}_by_shard", up, _keyed)
    return op.key_rm(f"{step_id}_out", op.stateful_batch(step_id, keyed, builder))


def _keyed(batch: ShardBatch[Any, T]) -> tuple[str, list[T]]:
    return batch.shard, batch.items


class RouterPerThread(Generic[S, T]):
    """One `ShardRouter` per worker thread, kept across batches so its shard memo stays warm.

    A decoder is shared by the worker threads of a process; a batch is decoded on one
    thread from start to end, so a router per thread keeps each batch's groups its own
    (a fresh router per batch would pay a crc32 per entity again).
    """

    def __init__(self, shards: int, stage_shards: Mapping[S, int] | None = None) -> None:
        self.shards = shards
        self.stage_shards = dict(stage_shards or {})
        self._local = threading.local()

    def get(self) -> ShardRouter[S, T]:
        router: ShardRouter[S, T] | None = getattr(self._local, "router", None)
        if router is None:
            router = self._local.router = ShardRouter(self.shards, stage_shards=self.stage_shards)
        return router
