"""A source partition's resume offset follows the messages it emitted, never a Kafka error record.

An error record (a broker or transport error the consumer reported) consumed nothing, and the
offset it carries is the asking partition's next one (`flows.kafka_source._SharedConsumer._poll`).
Taking it for a position skipped one message after the next recovery, or, for a partition that
had read nothing yet, resumed it from the end (-1) and skipped all of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flows.kafka_source import KafkaRecord, _KafkaPartition


class _Batches:
    """The shared consumer's face towards a partition: `assign`, then `take` hands out prepared batches."""

    def __init__(self, *batches: list[KafkaRecord]) -> None:
        self.batches = list(batches)

    def assign(self, topic: str, partition: int, offset: int) -> None:
        return None

    def take(self, topic: str, partition: int, next_offset: int) -> tuple[list[KafkaRecord], bool]:
        return (self.batches.pop(0) if self.batches else []), False

    def watermarks(self, topic: str, partition: int) -> tuple[int, int] | None:
        return None

    def release(self, topic: str, partition: int) -> None:
        return None


_MADE: list[_KafkaPartition] = []


@pytest.fixture(autouse=True)
def _closed_afterwards() -> Iterator[None]:
    """A partition registers with its worker thread's progress; closed, later flows on this thread skip it."""
    yield
    while _MADE:
        _MADE.pop().close()


def _partition(offset: int, *batches: list[KafkaRecord]) -> _KafkaPartition:
    part = _KafkaPartition(_Batches(*batches), "omni.pos", 1, offset)  # type: ignore[arg-type]
    _MADE.append(part)
    return part


def test_the_resume_offset_is_after_the_last_message_emitted() -> None:
    part = _partition(10, [KafkaRecord("omni.pos", 1, 10, b"a"), KafkaRecord("omni.pos", 1, 11, b"b")])
    part.next_batch()
    assert part.snapshot() == 12


def test_an_error_record_last_in_a_batch_does_not_move_the_resume_offset() -> None:
    error = KafkaRecord("omni.pos", 1, 57, None, "KafkaError{code=_TRANSPORT}")  # the asker's next offset
    part = _partition(10, [KafkaRecord("omni.pos", 1, 10, b"a"), error], [error])
    part.next_batch()
    assert part.snapshot() == 11
    part.next_batch()
    assert part.snapshot() == 11


def test_a_partition_that_read_nothing_keeps_its_start_through_an_error() -> None:
    part = _partition(-2, [KafkaRecord("omni.pos", 1, -2, None, "KafkaError{code=_TRANSPORT}")])
    part.next_batch()
    assert part.snapshot() == -2  # still "from the beginning", not -1 ("from the end")
