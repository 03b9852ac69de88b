"""The event-time clock of a keyed stage: a watermark over the partitions the flow reads.

Timers (a cart's deadline, a customer going quiet) must fire when the *stream's* time
passes them, even if their customer sends nothing more; and not before everything that
could cancel them has had a chance to arrive. Each decoded batch tells every stage the
newest event time it read per (topic, partition); the watermark is the oldest of those
partitions' newest times, less `lateness_s`. A partition that has fallen more than
`idle_s` behind the newest one (a quiet topic, such as consent changes) is left out, so
it cannot hold every timer back.

Reading a backlog, one partition may run far ahead of another (a consumer fetches a
partition's worth at a time): the oldest-partition rule keeps timers from firing on the
fast partition's time alone, as long as the slow one is within `idle_s`. For the same reason
the clock waits, at the start, until it has heard from the `expected` partitions (the first
batches of a backlog may all come from one), or until `idle_s` of event time has gone by.

Partitions that hold no events never report, so that start-up rule alone cannot tell a topic
not read yet from an empty one. The source can: each decoding thread's ticks carry a hold, the
oldest newest time among its partitions that still have messages to read (-inf for one not read
from at all), and the watermark never passes the oldest hold less `lateness_s`. Holds are the
source's present, not history: they are not snapshotted, and a restarted run's threads send
their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class EventClock:
    """Newest event time per input partition, and the watermark they allow.

    Examples
    --------
    >>> clock = EventClock(lateness_s=10.0, idle_s=600.0)
    >>> clock.watermark
    -inf
    >>> clock.advance([(("pos", 0), 100.0), (("clickstream", 0), 500.0)])
    90.0
    >>> clock.advance([(("pos", 0), 400.0)])  # pos catches up: the oldest partition now says 400
    390.0
    >>> clock.advance([(("clickstream", 0), 1200.0)])  # pos is 800 s behind: idle, left out
    1190.0
    >>> waiting = EventClock(lateness_s=0.0, idle_s=600.0, expected=2)
    >>> waiting.advance([(("pos", 0), 100.0)]), waiting.advance([(("pos", 0), 200.0), (("clickstream", 0), 150.0)])
    (-inf, 150.0)
    """

    __slots__ = ("_holds", "_newest", "_start", "_watermark", "expected", "idle_s", "lateness_s", "newest")

    def __init__(self, lateness_s: float, idle_s: float, expected: int = 0) -> None:
        self.lateness_s = lateness_s
        self.idle_s = idle_s
        self.expected = expected
        self._newest: dict[tuple[str, int], float] = {}
        self._holds: dict[str, float] = {}
        self.newest = float("-inf")
        self._start = float("inf")
        self._watermark = float("-inf")

    @property
    def watermark(self) -> float:
        """Event time up to which the stream is taken as complete; it never goes back."""
        return self._watermark

    def advance(
        self,
        newest_per_partition: Iterable[tuple[tuple[str, int], float]],
        holds: Iterable[tuple[str, float]] = (),
        floor: float = float("-inf"),
    ) -> float:
        """Take one batch's newest event time per partition and its decoding threads' holds; returns the watermark.

        >>> clock = EventClock(lateness_s=0.0, idle_s=60.0)
        >>> clock.advance([(("clickstream", 0), 500.0)], holds=[("w0", float("-inf"))])  # pos not read yet
        -inf
        >>> clock.advance([(("pos", 0), 300.0)], holds=[("w0", float("inf"))])  # everything read: pos is idle
        500.0

        `floor`: a watermark computed elsewhere (the flow's clock step), taken as it is; a clock fed only
        floors (a customer bucket, the stock, the gate) follows the clock step's.

        >>> EventClock(lateness_s=5.0, idle_s=60.0).advance([], floor=42.0)
        42.0
        """
        if floor > self._watermark:
            self._watermark = floor
        self._holds.update(holds)
        newest = self._newest
        for part, ts in newest_per_partition:
            if ts > newest.get(part, float("-inf")):
                newest[part] = ts
                if ts > self.newest:
                    self.newest = ts
                if ts < self._start:
                    self._start = ts
        if len(newest) < self.expected and self.newest - self._start < self.idle_s:
            return self._watermark  # not heard from every partition yet
        if newest:
            floor = self.newest - self.idle_s
            oldest = min((ts for ts in newest.values() if ts >= floor), default=self.newest)
            mark = min(oldest, min(self._holds.values(), default=oldest)) - self.lateness_s
            if mark > self._watermark:
                self._watermark = mark
        return self._watermark

    def to_state(self) -> list[Any]:
        """Plain values for MessagePack (`from_state` reverses it)."""
        newest = [[t, p, ts] for (t, p), ts in self._newest.items()]
        return [self.lateness_s, self.idle_s, self.expected, newest, self._start, self._watermark]

    @classmethod
    def from_state(cls, state: list[Any]) -> EventClock:
        """The clock `to_state` gave.

        >>> clock = EventClock(5.0, 60.0)
        >>> _ = clock.advance([(("pos", 1), 100.0)])
        >>> EventClock.from_state(clock.to_state()).watermark
        95.0
        """
        lateness_s, idle_s, expected, newest, start, watermark = state
        clock = cls(lateness_s, idle_s, expected)
        clock._newest = {(str(t), int(p)): float(ts) for t, p, ts in newest}
        clock.newest = max(clock._newest.values(), default=float("-inf"))
        clock._start = start
        clock._watermark = watermark
        return clock

    def __getstate__(self) -> list[Any]:
        return self.to_state()

    def __setstate__(self, state: list[Any]) -> None:
        restored = EventClock.from_state(state)
        for name in self.__slots__:
            setattr(self, name, getattr(restored, name))
