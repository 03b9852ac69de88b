"""Payments and labels handed on in event-time order, whatever order the input partitions were read in.

Every stage of the fraud flow learns as it goes (a card's velocity, a store's fraud rate, the
models), so what it says of a payment depends on which events it had seen before it. Kafka
partitions are read concurrently, and after a recovery the reads resume at other offsets: the
same events arrive interleaved differently. `EventTimeOrder` makes the order a function of the
data: it holds what it reads until every input partition still delivering has passed it (the
watermark: the smallest of the partitions' newest event times), then hands it on sorted by
(event time, event id), numbered. The stages after it sort what reaches them in a batch by that
number (`sequence`). With one worker every stage sees its items in one order, the same in every
run; in a cluster, a stage fed by shards on several workers gets their batches as the workers
deliver them, so across batches the order can differ between runs (the scorer's models learn in
event-time chunks, and the alert step keeps a late payment in its incident: docs/fraud.md).

Partitions are known by their records, so at a start (or a restart) nothing is handed on until
the step has been running for as long as a partition may be silent before it counts as idle:
a partition not heard of yet may still deliver older events. A partition that has stopped
delivering (at its end, or a topic nobody writes to now) must not hold everything back: it is
*idle* once it has delivered nothing for `idle_s` wall seconds while `idle_batches` batches
of other partitions came (both: a process stalled by its machine delivers nothing from any
partition, and must not take that for idleness). Whatever is held when the whole input has been
quiet for `quiet_s`, or at the end of the input, is handed on: longer than `idle_s`, since a
step waits for its next batch while the stages after it work on the last one.

A partition the step's own worker has read to its end (its high watermark, `ended`) is a sure
sign of a pause, where a missing batch is not: a worker starved of CPU still has messages left
to read. So a partition read to its end since the last batch, for `idle_s`, is idle without
waiting for batches of others, and a lone payment in a paused stream goes after about `idle_s`,
not `quiet_s`.

What stays order-dependent: an event arriving after the watermark passed it (a partition idle
for longer than `idle_s` that wakes up with old events) is handed on at once, late, and counted.

Examples
--------
>>> order = EventTimeOrder(idle_s=1.0, idle_batches=2)
>>> order.resumed(now=0.0)  # the start: partitions not heard of yet may deliver anything
>>> order.offer([(5.0, "b", "p0-a"), (7.0, "c", "p0-b")], {"p0": 7.0}, now=0.1)
[]
>>> order.offer([(6.0, "a", "p1-a")], {"p1": 6.0}, now=0.2)
[]
>>> order.offer([(8.0, "d", "p0-c")], {"p0": 8.0}, now=1.5)  # 1 s and 2 batches since the start: p1 is at 6.0
['p0-a', 'p1-a']
>>> order.offer([(9.0, "e", "p1-b")], {"p1": 9.0}, now=1.6)  # p0 is at 8.0
['p0-b', 'p0-c']
>>> order.offer([(2.0, "f", "p1-old")], {"p1": 2.0}, now=1.7)  # older than what was handed on: late
['p1-old']
>>> order.flush(), order.late  # the end of the input: what is held goes, in order
(['p1-b'], 1)

A paused stream, every partition read to its end (`ended`): what is held goes after `idle_s`.

>>> order.offer([(10.0, "g", "p0-d")], {"p0": 10.0}, now=2.0, ended={"p0", "p1"})
[]
>>> order.due(now=2.5, ended={"p0", "p1"}), order.due(now=3.1, ended={"p0", "p1"})
([], ['p0-d'])
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Mapping, Sequence
from operator import itemgetter
from typing import Any

_UNHEARD = ""
"""The partitions not heard of since the start: one that holds everything back until it counts as idle."""

Entry = tuple[float, str, Any]
"""(event time, tie-break id, item): the order is by the first two."""
_Held = tuple[float, str, int, Any]
"""An entry as held: (event time, tie-break id, arrival number, item). Unique arrival numbers let a plain sort
order them, stable among equal (time, id), with no key per entry and never comparing items."""


class _Partition:
    __slots__ = ("batches_since", "ended_at", "heard_at", "newest")

    def __init__(self, newest: float, now: float) -> None:
        self.newest = newest
        self.heard_at = now
        self.batches_since = 0
        self.ended_at = math.inf  # since when the worker has seen it read to its end (inf: not now)


class EventTimeOrder:
    """Holds entries until the watermark of the delivering partitions passes them; hands them on sorted.

    Parameters
    ----------
    idle_s
        Wall seconds without a record from a partition (while others deliver) before it stops
        holding the watermark back; also how long the whole input may be quiet before what is
        held goes anyway.
    idle_batches
        Batches of other partitions that must have come in that time too.
    quiet_s
        Wall seconds without any batch after which everything held goes.

    Cost: a sort of what is held per batch (mostly sorted runs already) and one pass over the partitions.
    The sort takes no key: a key tuple per held entry per sort, at every batch while entries wait for the
    watermark, was most of the young collections of the fraud flow (docs/performance.md); each entry gets
    its arrival number once instead.
    """

    def __init__(self, idle_s: float = 0.25, idle_batches: int = 4, quiet_s: float = 5.0) -> None:
        self.idle_s = idle_s
        self.idle_batches = idle_batches
        self.quiet_s = quiet_s
        self.partitions: dict[str, _Partition] = {}
        self.held: list[_Held] = []
        self.released_to = -math.inf  # the newest event time handed on
        self.sequence = 0  # entries handed on so far: the next one's number
        self.late = 0
        self.last_batch_at = -math.inf

    def __getstate__(self) -> dict[str, Any]:
        return {
            "idle_s": self.idle_s,
            "idle_batches": self.idle_batches,
            "quiet_s": self.quiet_s,
            "partitions": {part: p.newest for part, p in self.partitions.items() if part != _UNHEARD},
            "held": self.held,
            "released_to": self.released_to,
            "sequence": self.sequence,
            "late": self.late,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """After a recovery every known partition is heard from afresh: wall times of the last run mean nothing."""
        self.__init__(state["idle_s"], state["idle_batches"], state["quiet_s"])  # type: ignore[misc]
        self.partitions = {part: _Partition(newest, -math.inf) for part, newest in state["partitions"].items()}
        held = state["held"]
        if held and len(held[0]) == 3:  # a snapshot from before arrival numbers: they are the held order
            held = [(ts, tie, n, item) for n, (ts, tie, item) in enumerate(held)]
        self.held, self.released_to = held, state["released_to"]
        self.sequence, self.late = state["sequence"], state["late"]

    def resumed(self, now: float) -> None:
        """Start every known partition's idle clock at `now` (a start or restart), and one for those not heard of."""
        for part in self.partitions.values():
            part.heard_at = now
            part.batches_since = 0
        self.partitions[_UNHEARD] = _Partition(-math.inf, now)
        self.last_batch_at = now

    def offer(
        self,
        entries: Sequence[Entry],
        marks: Mapping[str, float],
        now: float,
        ended: Collection[str] = (),
        all_ended: bool = False,
    ) -> list[Any]:
        """Take a batch (`marks`: the newest event time per partition in it); the items now safe to hand on.

        `ended`: the partitions this worker has read to their end now (`flows.kafka_source`); empty
        when not known (an in-process source). `all_ended`: this worker reads every input partition
        and all are read to their end, so none not heard of yet holds back either. The items handed
        on are numbered `sequence - len(items)` onwards, in the order returned.
        """
        partitions = self.partitions
        for part in partitions.values():
            part.batches_since += 1
        for name, newest in marks.items():
            known = partitions.get(name)
            if known is None:
                partitions[name] = _Partition(newest, now)
                continue
            known.heard_at, known.batches_since = now, 0
            if newest > known.newest:
                known.newest = newest
        self.last_batch_at = now
        # Every entry taken is handed on (counted in `sequence`) or held: that sum numbers the next arrival.
        first = self.sequence + len(self.held)
        self.held += [(ts, tie, first + n, item) for n, (ts, tie, item) in enumerate(entries)]
        # A batch restarts every end clock: only a pause of idle_s after it counts, which leaves a partition
        # whose messages were written with another's, but fetched a little later, the time to deliver them.
        for part in partitions.values():
            part.ended_at = math.inf
        self._note_ended(ended, all_ended, now)
        return self._release(self.watermark(now))

    def watermark(self, now: float) -> float:
        """The smallest newest event time over the partitions that are not idle (infinite when all are).

        Idle: silent for `idle_s` while `idle_batches` batches of others came, or read to its end
        for `idle_s` with no batch since (`ended` at the last `offer` / `due`).
        """
        idle_s, idle_batches = self.idle_s, self.idle_batches
        delivering = [
            part.newest
            for part in self.partitions.values()
            if (part.batches_since < idle_batches or now - part.heard_at < idle_s) and now - part.ended_at < idle_s
        ]
        return min(delivering) if delivering else math.inf

    def due(self, now: float, ended: Collection[str] = (), all_ended: bool = False) -> list[Any]:
        """Called on a timer: what partitions read to their end (`ended`) for `idle_s` no longer hold back;
        everything held once the whole input has been quiet for `quiet_s`.

        Not a batch for idleness: timer ticks while a replay's batches are slow to come (a loaded
        machine) turned partitions idle that still had older events to deliver. A partition read
        to its end has none left to deliver.
        """
        if not self.held:
            return []
        if now - self.last_batch_at >= self.quiet_s:
            return self.flush()
        if not ended and not all_ended:
            return []
        self._note_ended(ended, all_ended, now)
        return self._release(self.watermark(now))

    def _note_ended(self, ended: Collection[str], all_ended: bool, now: float) -> None:
        """Start the end clock of partitions newly read to their end; stop it for those with messages again."""
        for name, part in self.partitions.items():
            if name in ended or (all_ended and name == _UNHEARD):
                if part.ended_at == math.inf:
                    part.ended_at = now
            elif part.ended_at != math.inf:
                part.ended_at = math.inf

    def next_check(self) -> float:
        """The wall time at which a partition read to its end stops holding back (inf: none is)."""
        if not self.held:
            return math.inf
        return min((part.ended_at + self.idle_s for part in self.partitions.values()), default=math.inf)

    def flush(self) -> list[Any]:
        """Everything held, in order (the end of the input)."""
        return self._release(math.inf)

    def _release(self, watermark: float) -> list[Any]:
        held = self.held
        if not held:
            return []
        # No key (see the class): held entries are re-sorted at every batch until they go. Picks by `itemgetter`.
        held.sort()
        cut = len(held) if watermark == math.inf else bisect_right(held, watermark, key=_TIME)
        if not cut:
            return []
        out, self.held = held[:cut], held[cut:]
        released_to = self.released_to
        self.late += bisect_left(out, released_to, key=_TIME)  # sorted: the late ones are the first
        if out[-1][0] > released_to:
            self.released_to = out[-1][0]
        self.sequence += len(out)
        return list(map(_ITEM, out))


_TIME = itemgetter(0)
_ITEM = itemgetter(3)
