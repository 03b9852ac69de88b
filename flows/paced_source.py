"""A flow's Kafka partitions, polled on a shared beat while they only trickle (`flows.wiring.decoded_input`'s `pace_s`).

Bytewax asks a source partition for its next batch again at once after one with records, and
1 ms after an empty one. Live, a partition of the customers flow (the one that uses it) carries a
few hundred events a second, so nearly every poll brought one event or none, and each event went through every step, the
sink's Redis round trip and its Kafka flush as a batch of its own: ~0.3-0.5 ms of CPU per event
live against ~0.04 ms in a backlog (docs/customers.md, Performance), and, with sixteen
partitions, some 16,000 polls a second while idle.

So a partition that returned fewer than `full` records (it is caught up) is polled again at the
next tick of a common beat of `pace_s`: every partition wakes at the same instant, and the flow
takes one step for what all of them gathered meanwhile. A partition that returned `full` or more
(a backlog) is polled again at once, as before. The price is at most `pace_s` of input delay, against
a trigger latency target of a second. The beat is the setting `customers.poll_pace_s` (20 ms; 0 turns
the pacing off): measured against reading every partition at once, 0.6x the CPU per event at 500
events/s and 0.7x at 2,000, for about 10 ms more on a trigger's median; a 50 ms beat cut more CPU but
lengthened the triggers' tail more than the beat adds (docs/customers.md, Performance).
Offsets, recovery state and the source's health figures are the wrapped partitions' own.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.kafka_source import KafkaRecord

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

    def __init__(self, inner: FixedPartitionedSource[KafkaRecord, int], pace_s: float, full: int = FULL_BATCH) -> None:
        self.inner = inner
        self.pace_s = pace_s
        self.full = full

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> PacedPartition:
        return PacedPartition(self.inner.build_part(step_id, for_part, resume_state), self.pace_s, self.full)
