"""`flows.paced_source`: caught-up partitions wait for a common beat; a backlog is read at once."""

from __future__ import annotations

from bytewax.testing import TestingSource

from flows.paced_source import PacedPartitions


def test_small_batches_wait_for_the_same_beat_and_full_ones_do_not() -> None:
    source = PacedPartitions(TestingSource(list(range(7)), batch_size=3), pace_s=0.05, full=3)  # type: ignore[arg-type]
    part = source.build_part("in", source.list_parts()[0], None)
    assert part.next_awake() is None
    assert list(part.next_batch()) == [0, 1, 2] and part.next_awake() is None  # full: at once
    assert list(part.next_batch()) == [3, 4, 5] and part.next_awake() is None
    assert list(part.next_batch()) == [6]
    awake = part.next_awake()
    assert awake is not None and round(awake.timestamp() * 1000) % 50 == 0  # on the beat's grid
    other = source.build_part("in", source.list_parts()[0], None)
    other.next_batch(), other.next_batch(), other.next_batch()
    later = other.next_awake()
    assert later is not None and (later - awake).total_seconds() in (0.0, 0.05)  # the same beat (or the next)
    assert part.snapshot() == 7  # the wrapped partition's own resume state
