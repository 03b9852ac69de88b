"""Sharded, bounded holders of the recommendation states, and the throttle of their documents.

The recommend flow keys its states by a shard of the entity (SKU, shopper,
trending scope) rather than by the entity itself, for two reasons measured
or forced by the issue:

- Cost: each Bytewax keyed step costs per item routed (docs/performance.md: keyed
  state is ~45k items/s alone), and one clickstream event makes up to a
  dozen co-visit pairs. Grouping a batch's updates per shard sends one item
  per shard per batch through the exchange instead.
- Memory: Bytewax keeps a key's state until the logic discards it, so keys
  per SKU with a growing catalog grow without end. A shard holds at most
  `capacity` entities and lets the least recently touched go.

Everything here is pure (no Bytewax, no Redis); `flows/recommend_stages.py` adapts it, and routes
between the shards with `operators.keyed_shards.ShardRouter`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from operators.recs.covisitation import CoVisit, SessionTrail
from operators.recs.experiments import Feedback, FeedbackJoin, ServedRecord
from operators.recs.interactions import Interaction, first_delivery
from operators.recs.profile import ShopperProfile
from operators.seen_events import SeenEvents
from operators.snapshots import with_ordered_dicts

S = TypeVar("S")


def next_version(previous: int, as_of: float) -> int:
    """A document version above `previous` and at least the event time in milliseconds.

    The millisecond floor keeps versions growing when an evicted entity comes
    back with a fresh state (its counter restarted) after Redis stored a
    version of the old one; replays of the same input give the same versions.

    >>> next_version(0, 2.5), next_version(2500, 2.5), next_version(7, float("-inf"))
    (2500, 2501, 8)
    """
    floor = int(as_of * 1000) if as_of > 0 else 0
    return max(previous + 1, floor)


class _Entry(Generic[S]):
    __slots__ = ("due", "state", "used", "version", "written_at")

    def __init__(self, state: S) -> None:
        self.state = state
        self.version = 0
        self.written_at = float("-inf")
        self.due = False
        self.used = True

    def __getstate__(self) -> tuple[S, int, float, bool, bool]:
        return self.state, self.version, self.written_at, self.due, self.used

    def __setstate__(self, packed: tuple[S, int, float, bool, bool]) -> None:
        self.state, self.version, self.written_at, self.due, self.used = packed


class ThrottledShard(Generic[S]):
    """Bounded states of one shard whose documents are rewritten at most once per `interval_s` of event time.

    A hot SKU or scope changes on every event; writing its document each time
    would cost a Redis write per event. Instead a changed entity is written at
    once when its last write is `interval_s` old (or it was never written),
    else it waits, marked pending, until a later batch's clock passes that
    point, or `flush`. Time is the newest event time the shard has seen,
    never the wall clock, so a replay makes the same writes.

    Parameters
    ----------
    capacity
        Entities held; when full, one not touched since the eviction scan last
        passed it leaves (the CLOCK approximation of least recently used:
        a touch only sets a flag, where true LRU reorders on every touch), its
        pending document written on the way out.
    interval_s
        Event-time seconds between two writes of one entity.

    Examples
    --------
    >>> shard = ThrottledShard(capacity=2, interval_s=10.0)
    >>> def basket(key):
    ...     return []
    >>> shard.touch("A", basket, ts=0.0).append(1)
    >>> [(key, state, version) for key, state, version in shard.collect()]
    [('A', [1], 1)]
    >>> shard.touch("A", basket, ts=5.0).append(2)
    >>> list(shard.collect())  # written 5 s ago: waits
    []
    >>> shard.touch("B", basket, ts=12.0).append(3)
    >>> [(key, version) for key, _, version in shard.collect()]
    [('A', 12000), ('B', 12000)]
    >>> shard.touch("C", basket, ts=13.0).append(4)  # full: evicts one not touched since the last scan
    >>> len(shard)
    2
    """

    def __init__(self, capacity: int, interval_s: float) -> None:
        self.capacity = capacity
        self.interval_s = interval_s
        self.clock = float("-inf")
        # OrderedDicts, not dicts: eviction and writes take from the front. A plain dict leaves a dummy
        # slot per front delete that the next `next(iter(...))` scans past, so a full shard's evictions
        # cost up to O(capacity) each until the next resize; the OrderedDict's linked list makes them O(1).
        self._entries: OrderedDict[str, _Entry[S]] = OrderedDict()
        self._pending: OrderedDict[str, None] = OrderedDict()  # in order of first change since the last write
        self._evicted: list[tuple[str, S, int]] = []

    def touch(self, key: str, factory: Callable[[str], S], ts: float) -> S:
        """The state of `key` (created by `factory(key)` if absent), marked changed at event time `ts`."""
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            if len(entries) >= self.capacity:
                self._evict()
            entry = entries[key] = _Entry(factory(key))
        else:
            entry.used = True
        if ts > self.clock:
            self.clock = ts
        if not entry.due:
            entry.due = True
            self._pending[key] = None
        return entry.state

    def _evict(self) -> None:
        entries = self._entries
        while True:  # second chance: a used entry moves to the back, unmarked; ends within one full pass
            key = next(iter(entries))
            entry = entries[key]
            if not entry.used:
                break
            entry.used = False
            entries.move_to_end(key)
        entries.popitem(last=False)
        if entry.due:
            self._pending.pop(key, None)
            entry.version = next_version(entry.version, self.clock)
            self._evicted.append((key, entry.state, entry.version))

    def collect(self) -> Iterator[tuple[str, S, int]]:
        """(key, state, version) of every changed entity due for a write now; they count as written."""
        evicted, self._evicted = self._evicted, []
        yield from evicted
        clock, interval_s, entries, pending = self.clock, self.interval_s, self._entries, self._pending
        while pending:
            key = next(iter(pending))
            entry = entries[key]
            if entry.written_at > clock - interval_s:
                # Pending keys are in order of first change, which is nearly the order of their last
                # write: the first one not yet due ends the scan (amortised O(1) per write).
                break
            pending.popitem(last=False)
            entry.due = False
            entry.written_at = clock
            entry.version = next_version(entry.version, clock)
            yield key, entry.state, entry.version

    def flush(self) -> Iterator[tuple[str, S, int]]:
        """(key, state, version) of every changed entity, due or not (end of input)."""
        saved, self.interval_s = self.interval_s, float("-inf")
        try:
            yield from self.collect()
        finally:
            self.interval_s = saved

    def items(self) -> list[tuple[str, S]]:
        """(key, state) of every held entity; marks nothing changed."""
        return [(key, entry.state) for key, entry in self._entries.items()]

    def keys(self) -> list[str]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(with_ordered_dicts(state, "_entries", "_pending"))


class Shopper:
    """One shopper's recommendation state: profile, co-visit trail and the feedback join of their answers.

    Deduplicates (`event_id`, SKU) once for all three, so a producer retry
    changes neither the profile, nor co-visitation, nor trending, nor the
    experiment counters. The feedback join exists only once the shopper was
    served an answer or clicked one (most shoppers never hold one).

    Parameters
    ----------
    actor
        The actor key (`u:<user_id>` or `s:<session_id>`).
    profile
        A fresh `ShopperProfile` of this actor.
    trail
        A fresh `SessionTrail`.
    dedup_window_s
        Event-time seconds an (`event_id`, SKU) is remembered.
    feedback_window_s
        Event-time seconds after serving that feedback counts.

    Examples
    --------
    >>> from operators.recs.interactions import InteractionKind as K
    >>> shopper = Shopper("s:S-1", ShopperProfile("s:S-1"), SessionTrail())
    >>> view = Interaction("e1", 0.0, "s:S-1", "s:S-1", "SKU-1", K.VIEW, "web")
    >>> shopper.learn_one(view), shopper.learn_one(view)
    (([], []), None)
    >>> covisits, _ = shopper.learn_one(view._replace(event_id="e2", sku="SKU-2"))
    >>> [(c.item, c.other) for c in covisits]
    [('SKU-2', 'SKU-1'), ('SKU-1', 'SKU-2')]
    """

    def __init__(
        self,
        actor: str,
        profile: ShopperProfile,
        trail: SessionTrail,
        dedup_window_s: float = 3_600.0,
        feedback_window_s: float = 1_800.0,
    ) -> None:
        self.actor = actor
        self.profile = profile
        self.trail = trail
        self.dedup_window_s = dedup_window_s
        self.feedback_window_s = feedback_window_s
        self.join: FeedbackJoin | None = None
        self._seen = SeenEvents(dedup_window_s)

    def learn_one(self, interaction: Interaction) -> tuple[list[CoVisit], list[Feedback]] | None:
        """Learn a new interaction: its co-visits and feedback; None for a redelivered one."""
        if not first_delivery(self._seen, interaction.event_id, interaction.sku, interaction.ts):
            return None
        self.profile.learn_one(interaction)
        covisits = self.trail.learn_one(interaction)
        join = self.join
        if join is None and interaction.rec_request_id:
            join = self.join = FeedbackJoin(self.feedback_window_s)
        return covisits, join.apply(interaction) if join is not None else []

    def learn_served(self, record: ServedRecord) -> list[Feedback]:
        """Open an answer served to this shopper; returns its tally increments."""
        if self.join is None:
            self.join = FeedbackJoin(self.feedback_window_s)
        return self.join.apply_served(record)

    def close_answers(self) -> list[Feedback]:
        """Close every open answer now (end of a bounded run); returns their labelled examples."""
        return self.join.close_all() if self.join is not None else []
