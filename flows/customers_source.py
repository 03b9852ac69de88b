"""The customers flow's input: its Kafka partitions, polled on a shared beat while they only trickle.

Bytewax asks a source partition for its next batch again at once after one with records, and
1 ms after an empty one. Live, a partition of this flow carries a few hundred events a second,
so nearly every poll brought one event or none, and each event went through every step, the
sink's Redis round trip and its Kafka flush as a batch of its own: ~0.3-0.5 ms of CPU per event
live against ~0.04 ms in a backlog (docs/customers.md, Performance), and, with sixteen
partitions, some 16,000 polls a second while idle.

So a partition that returned fewer than `full` records (it is caught up) is polled again at the
next tick of a common beat of `pace_s`: every partition wakes at the same instant, and the flow
takes one step for what all of them gathered meanwhile. A partition that returned `full` or more
(a backlog) is polled again at once, as before. The price is meant to be at most `pace_s` of input
delay, against a trigger latency target of a second (see `POLL_PACE_S` for what a longer beat did).
Offsets, recovery state and the source's health figures are the wrapped partitions' own.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.kafka_source import KafkaRecord

POLL_PACE_S = 0.02
"""The beat caught-up partitions are polled on. Measured live (benchmarks/customers.py, shared machine at
load average 7-17): at 500 events/s the flow's CPU per event was 0.30-0.42 ms with a 20 ms beat and
0.22-0.27 ms with 50 ms (the code before: 0.45-0.74 ms), but with 50 ms the trigger latency p50 / p99 at
500 events/s went from ~0.3 / 0.3-0.9 s to 0.35-0.6 / 0.9-2.4 s in three runs, more than the beat adds,
for reasons not found; 20 ms kept them."""
FULL_BATCH = 200
"""Records at or above which a batch is taken for a backlog: the partition is polled again at once."""


class PacedPartition(StatefulSourcePartition[KafkaRecord, int]):
    """One partition of `inner`, polled on the beat while its batches are small."""

    def __init__(self, inner: StatefulSourcePartition[KafkaRecord, int], pace_s: float, full: int) -> None:
        self.inner = inner
        self.pace_s = pace_s
        self.full = full
        self._awake: datetime | None = None

    def next_batch(self) -> list[KafkaRecord]:
        batch = list(self.inner.next_batch())  # a list already from Kafka: the same list back
        if len(batch) >= self.full:
            self._awake = None
        else:  # the next tick of the beat, the same instant for every partition
            beat = (math.floor(time.time() / self.pace_s) + 1) * self.pace_s
            self._awake = datetime.fromtimestamp(beat, UTC)
        return batch

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()


class PacedPartitions(FixedPartitionedSource[KafkaRecord, int]):
    """`inner`'s partitions, each a `PacedPartition`.

    >>> from bytewax.testing import TestingSource
    >>> source = PacedPartitions(TestingSource([1, 2, 3], batch_size=2), pace_s=0.02, full=2)  # type: ignore[arg-type]
    >>> part = source.build_part("in", source.list_parts()[0], None)
    >>> part.next_batch(), part.next_awake() is None, part.next_batch(), part.next_awake() is not None
    ([1, 2], True, [3], True)
    """

    def __init__(
        self, inner: FixedPartitionedSource[KafkaRecord, int], pace_s: float = POLL_PACE_S, full: int = FULL_BATCH
    ) -> None:
        self.inner = inner
        self.pace_s = pace_s
        self.full = full

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> PacedPartition:
        return PacedPartition(self.inner.build_part(step_id, for_part, resume_state), self.pace_s, self.full)
