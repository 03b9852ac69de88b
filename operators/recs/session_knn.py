"""Session neighbourhood: the SKUs of past sessions that look like this one (STAN-style session kNN).

Co-visitation answers "what goes with the SKU I am on"; a session's earlier
clicks say more (what the shopper compares, where they are heading). Session
kNN (V-SKNN, STAN) finds the past sessions that share the most of the current
one, weighting the current session's newer clicks more (position), newer
sessions more (recency), and in each neighbour the SKUs clicked close to the
shared one more (neighbour position); published evaluations of session-based
recommendation find these level with neural models on e-commerce clicks.

Memory is bounded: at most `capacity` sessions (least recently active out
first), `session_items` SKUs per session (newest kept), `item_capacity` SKUs
indexed (least recently clicked out first) and per SKU the `sessions_per_item`
sessions that clicked it last. Time is the event's `ts`.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import OrderedDict, deque
from collections.abc import Sequence


class _Session:
    __slots__ = ("items", "times", "ts")

    def __init__(self) -> None:
        self.items: list[str] = []  # by event time, oldest first, each SKU once (at its newest click)
        self.times: list[float] = []  # the event time of each of `items`
        self.ts = float("-inf")

    def add(self, sku: str, ts: float, limit: int) -> None:
        """Place `sku` at `ts` in event-time order: clicks reach the index grouped by shard, not in order."""
        items, times = self.items, self.times
        if sku in items:
            index = items.index(sku)
            if times[index] >= ts:
                return  # an older click of a SKU already held at a newer one
            del items[index], times[index]
        index = bisect.bisect_right(times, ts)
        items.insert(index, sku)
        times.insert(index, ts)
        if len(items) > limit:
            del items[0], times[0]
        if ts > self.ts:
            self.ts = ts


class SessionNeighbourhood:
    """An item-to-session index over the live stream and the session-kNN scores it gives a session.

    Parameters
    ----------
    capacity
        Sessions remembered.
    session_items
        SKUs remembered per session (the newest).
    sessions_per_item
        Sessions indexed per SKU (the newest).
    sample
        Candidate sessions considered per query (the most recently active).
    neighbours
        Most similar sessions that vote.
    position_decay_items
        Clicks back in the current session after which a click counts 1/e (STAN's lambda 1).
    recency_s
        Seconds of event time after which a neighbour session counts 1/e (STAN's lambda 2).
    neighbour_position_items
        Clicks away from the shared SKU after which a neighbour's SKU counts 1/e (STAN's lambda 3).
    item_capacity
        SKUs indexed (the most recently clicked).

    Examples
    --------
    >>> index = SessionNeighbourhood()
    >>> for session, sku in [("a", "tent"), ("a", "stove"), ("b", "tent"), ("b", "mat"), ("c", "stove"), ("c", "pot")]:
    ...     index.learn_one(session, sku, 10.0)
    >>> index.learn_one("now", "tent", 20.0)
    >>> [sku for sku, _ in index.score_one("now", 20.0, 5)]
    ['tent', 'mat', 'stove']

    The whole session counts, the newer click more: after the stove, the pot (clicked with a stove) leads the
    mat (clicked with a tent), and the session that had both (tent and stove) is the closest neighbour.

    >>> index.learn_one("now", "stove", 21.0)
    >>> [sku for sku, _ in index.score_one("now", 21.0, 5)]
    ['stove', 'tent', 'pot', 'mat']

    Clicks are placed by event time, whatever order they arrive in:

    >>> index.learn_one("late", "stove", 31.0)
    >>> index.learn_one("late", "tent", 30.0)
    >>> index.items_of("late")
    ['tent', 'stove']
    """

    def __init__(
        self,
        capacity: int = 200_000,
        session_items: int = 20,
        sessions_per_item: int = 200,
        sample: int = 500,
        neighbours: int = 100,
        position_decay_items: float = 1.0,
        recency_s: float = 7 * 86_400.0,
        neighbour_position_items: float = 2.0,
        item_capacity: int = 100_000,
    ) -> None:
        self.capacity = capacity
        self.session_items = session_items
        self.sessions_per_item = sessions_per_item
        self.sample = sample
        self.neighbours = neighbours
        self.position_decay_items = position_decay_items
        self.recency_s = recency_s
        self.neighbour_position_items = neighbour_position_items
        self.item_capacity = item_capacity
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._sessions_of: OrderedDict[str, deque[str]] = OrderedDict()

    def learn_one(self, session_id: str, sku: str, ts: float) -> None:
        """Add a click of `session_id` on `sku` at event time `ts`."""
        sessions = self._sessions
        session = sessions.get(session_id)
        if session is None:
            session = sessions[session_id] = _Session()
            if len(sessions) > self.capacity:
                sessions.popitem(last=False)  # its entries in the item index are skipped, then age out
        else:
            sessions.move_to_end(session_id)
        session.add(sku, ts, self.session_items)
        sessions_of = self._sessions_of
        indexed = sessions_of.get(sku)
        if indexed is None:
            indexed = sessions_of[sku] = deque(maxlen=self.sessions_per_item)
            if len(sessions_of) > self.item_capacity:
                sessions_of.popitem(last=False)  # the SKU clicked least recently
        else:
            sessions_of.move_to_end(sku)
        if not indexed or indexed[-1] != session_id:
            indexed.append(session_id)

    def items_of(self, session_id: str) -> Sequence[str]:
        """The session's remembered SKUs, oldest first."""
        session = self._sessions.get(session_id)
        return session.items if session is not None else ()

    def score_one(self, session_id: str, now: float, n: int) -> list[tuple[str, float]]:
        """The `n` best SKUs for `session_id` from its neighbour sessions, best first.

        The session's own earlier SKUs stay candidates (shoppers go back to what they compared); leaving out the
        SKU being viewed is the caller's business."""
        current = self.items_of(session_id)
        if not current:
            return []
        length = len(current)
        weight_of = {sku: math.exp(-(length - 1 - p) / self.position_decay_items) for p, sku in enumerate(current)}
        sessions = self._sessions
        candidates: dict[str, float] = {}  # session -> its last activity
        for sku in reversed(current):
            for other in self._sessions_of.get(sku, ()):
                if other != session_id and other not in candidates:
                    held = sessions.get(other)
                    if held is not None:
                        candidates[other] = held.ts
        chosen = (
            candidates
            if len(candidates) <= self.sample
            else dict(heapq.nlargest(self.sample, candidates.items(), key=lambda kv: kv[1]))
        )
        similar: list[tuple[float, str]] = []
        norm = math.sqrt(length)
        for other, ts in chosen.items():
            items = sessions[other].items
            shared = sum(weight_of.get(sku, 0.0) for sku in items)
            if shared > 0.0:
                recency = math.exp(-max(0.0, now - ts) / self.recency_s)
                similar.append((shared / (norm * math.sqrt(len(items))) * recency, other))
        scores: dict[str, float] = {}
        lam3 = self.neighbour_position_items
        for similarity, other in heapq.nlargest(self.neighbours, similar):
            items = sessions[other].items
            # The neighbour's SKUs near the newest SKU it shares with this session count most.
            anchor = max(p for p, sku in enumerate(items) if sku in weight_of)
            for p, sku in enumerate(items):
                scores[sku] = scores.get(sku, 0.0) + similarity * math.exp(-abs(p - anchor) / lam3)
        return heapq.nsmallest(n, scores.items(), key=lambda kv: (-kv[1], kv[0]))  # SKU breaks ties: stable

    def __len__(self) -> int:
        return len(self._sessions)
