"""A paced in-process source for the snapshot benchmarks: fill a flow's state, then change a little per epoch.

Snapshot cost must follow what changed in an epoch, not what is held (docs/performance.md). To show
it, a flow is filled with many keys in large chunks, left two or three epochs for the fill's
snapshots to close, and then sent one small batch of changes per epoch. Bytewax's testing
source cannot pace batches by wall time, so this one does (`next_awake`). The inventory snapshot
benchmark (`benchmarks/snapshots.py`) and the customers benchmark's part (e) use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from flows.kafka_source import KafkaRecord


class EpochFeed(StatefulSourcePartition[KafkaRecord, int]):
    """Sends `fill`'s chunks, waits `settle_s`, then `changes(n)` for n = 1..`epochs`, `gap_s` apart.

    `on_epoch(n)` is called as change batch n leaves (and once more, n = `epochs` + 1, when the input
    ends: Bytewax then snapshots every key, which callers count apart).
    """

    def __init__(self, topic: str, fill: Iterable[list[bytes]], changes: Callable[[int], list[bytes]], epochs: int,
                 on_epoch: Callable[[int], None], settle_s: float, gap_s: float) -> None:  # fmt: skip
        self.topic = topic
        self.fill: Iterator[list[bytes]] | None = iter(fill)
        self.changes, self.epochs, self.on_epoch = changes, epochs, on_epoch
        self.settle_s, self.gap_s = settle_s, gap_s
        self.offset = self.sent = 0
        self.awake = time.monotonic()

    def next_batch(self) -> list[KafkaRecord]:
        if self.fill is not None:
            chunk = next(self.fill, None)
            if chunk is not None:
                return [self._record(value) for value in chunk]
            self.fill = None
            self.awake = time.monotonic() + self.settle_s  # the fill's epochs close first
            return []
        if self.sent >= self.epochs:
            if self.sent == self.epochs:  # one more call after the last change epoch: the end of the input
                self.sent += 1
                self.on_epoch(self.sent)
                return []
            raise StopIteration
        self.sent += 1
        self.on_epoch(self.sent)
        batch = [self._record(value) for value in self.changes(self.sent)]
        self.awake = time.monotonic() + self.gap_s  # the next batch lands in a later epoch
        return batch

    def _record(self, value: bytes) -> KafkaRecord:
        self.offset += 1
        return KafkaRecord(self.topic, 0, self.offset, value)

    def next_awake(self) -> datetime | None:
        return datetime.now(UTC) + timedelta(seconds=max(0.0, self.awake - time.monotonic()))

    def snapshot(self) -> int:
        return self.offset


class OneFeed(FixedPartitionedSource[KafkaRecord, int]):
    """The source of one `EpochFeed` partition."""

    def __init__(self, feed: EpochFeed) -> None:
        self.feed = feed

    def list_parts(self) -> list[str]:
        return ["0"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> EpochFeed:
        return self.feed


class _Drop(StatelessSinkPartition[Any]):
    def write_batch(self, items: list[Any]) -> None:
        pass


class DropSink(DynamicSink[Any]):
    """A sink that keeps nothing: the snapshot benchmarks measure the flow's state, not its output."""

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Drop:
        return _Drop()
