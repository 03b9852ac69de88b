"""Session kNN over the live stream: the shoppers whose recent SKUs look like this one's, and what they went on to.

Co-visitation (`operators.recs.covisitation`) knows which SKUs go with ONE
SKU; a session that went A, B, C is better served by the sessions that also
held A, B and C than by adding up three item-to-item lists. Published
evaluations of session-based recommenders (Ludewig and Jannach, session-rec)
find such neighbourhood methods (V-SKNN, STAN) level with or ahead of neural
ones, and they learn in O(1) per click.

`SessionNeighbours` keeps two bounded indexes, both least-recently-used:

- per shopper (actor key), the newest `session_items` distinct SKUs;
- per SKU, the `sessions_per_sku` shoppers that viewed it most recently.

The answer for a shopper (`top`) follows V-SKNN / STAN:

1. candidate neighbours: the recent shoppers of each of this shopper's SKUs
   (newest first, at most `sessions_per_sku` per SKU: the recency sampling of
   V-SKNN, which also bounds the cost per answer);
2. similarity: the shared SKUs, each weighted by how recent it is in THIS
   session (`position_decay` per step back: the SKU being viewed counts
   most), divided by sqrt(len(neighbour)) so a shopper who viewed everything
   is not everyone's neighbour;
3. the `neighbours` most similar vote for their SKUs with their similarity,
   each vote weighted by the SKU's distance in the neighbour's own session
   from the newest SKU they share with this one (`neighbour_decay` per step:
   STAN's third factor; what comes right after the shared SKU says most).

Everything is in event time and pure (no I/O, no Bytewax); the flow's
`sessions` stage (`flows/recommend_stages.py`) holds one instance and
writes each changed shopper's list.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from operator import itemgetter
from typing import Any

Scored = tuple[str, float, str]
_score = itemgetter(1)


class _Session:
    __slots__ = ("items", "ts", "version")

    def __init__(self) -> None:
        self.items: list[str] = []  # distinct SKUs, oldest first
        self.ts = float("-inf")
        self.version = 0

    def __getstate__(self) -> tuple[list[str], float, int]:
        return self.items, self.ts, self.version

    def __setstate__(self, packed: tuple[list[str], float, int]) -> None:
        self.items, self.ts, self.version = packed


class SessionNeighbours:
    """Bounded item-to-session index over the stream, and the session-kNN scores of one shopper.

    Parameters
    ----------
    session_items
        Distinct SKUs remembered per shopper (newest).
    sessions_per_sku
        Shoppers remembered per SKU (most recent): the candidate sample.
    sessions_capacity, skus_capacity
        Shoppers and SKUs held; the least recently active leave first.
    neighbours
        Most similar shoppers that vote.
    position_decay
        Weight per step back of a shared SKU in this shopper's session, in (0, 1].
    neighbour_decay
        Weight per step away from the shared SKU in the neighbour's session, in (0, 1].

    Memory is bounded by sessions_capacity × session_items + skus_capacity × sessions_per_sku
    references (each SKU and actor string is held once per place it appears).

    Examples
    --------
    >>> knn = SessionNeighbours(neighbours=10)
    >>> for actor, sku in [("s:1", "A"), ("s:1", "B"), ("s:2", "A"), ("s:2", "C"), ("s:3", "B"), ("s:3", "D")]:
    ...     knn.learn_one(actor, sku, 1.0)
    >>> knn.learn_one("s:9", "A", 2.0)
    >>> knn.top("s:9", 5)  # the shoppers on A went to B and C
    [('A', 1.414214, ''), ('B', 0.565685, ''), ('C', 0.565685, '')]
    >>> knn.learn_one("s:9", "B", 3.0)
    >>> [sku for sku, _, _ in knn.top("s:9", 5)][:2]  # after A then B: s:1 (A, B) is the closest
    ['B', 'A']
    """

    def __init__(
        self,
        session_items: int = 10,
        sessions_per_sku: int = 100,
        sessions_capacity: int = 100_000,
        skus_capacity: int = 100_000,
        neighbours: int = 100,
        position_decay: float = 0.5,
        neighbour_decay: float = 0.8,
    ) -> None:
        self.session_items = session_items
        self.sessions_per_sku = sessions_per_sku
        self.sessions_capacity = sessions_capacity
        self.skus_capacity = skus_capacity
        self.neighbours = neighbours
        self.position_decay = position_decay
        self.neighbour_decay = neighbour_decay
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._sessions_of: OrderedDict[str, deque[str]] = OrderedDict()

    def learn_one(self, actor: str, sku: str, ts: float) -> None:
        """`actor` interacted with `sku` at event time `ts`."""
        sessions = self._sessions
        session = sessions.get(actor)
        if session is None:
            session = sessions[actor] = _Session()
            if len(sessions) > self.sessions_capacity:
                sessions.popitem(last=False)  # its SKUs' indexes still name it: skipped when scoring
        else:
            sessions.move_to_end(actor)
        if ts > session.ts:
            session.ts = ts
        items = session.items
        if items and items[-1] == sku:
            return  # a reload: nothing moves
        if sku in items:
            items.remove(sku)
        items.append(sku)
        if len(items) > self.session_items:
            del items[0]
        index = self._sessions_of
        holders = index.get(sku)
        if holders is None:
            holders = index[sku] = deque(maxlen=self.sessions_per_sku)
            if len(index) > self.skus_capacity:
                index.popitem(last=False)
        else:
            index.move_to_end(sku)
            if actor in holders:
                holders.remove(actor)
        holders.append(actor)

    def top(self, actor: str, n: int) -> list[Scored]:
        """The `n` SKUs the shoppers most like `actor` viewed, as (sku, score, ""), best first (the shopper's own
        SKUs included: whether a viewed SKU may be shown is the answer's `seen` rule, not this index's).

        Cost: at most session_items × sessions_per_sku similarity updates and neighbours × session_items votes;
        this runs for every shopper who clicked in a batch, so it is written for speed (local names, a table of
        the decay's powers, no per-vote exponentiation).
        """
        sessions = self._sessions
        session = sessions.get(actor)
        if session is None or not session.items:
            return []
        index = self._sessions_of
        items = session.items
        similarity: dict[str, float] = {}
        shared_of = similarity.get
        weight, decay = 1.0, self.position_decay
        for sku in reversed(items):
            holders = index.get(sku)
            if holders is not None:
                for other in holders:
                    similarity[other] = shared_of(other, 0.0) + weight
            weight *= decay
        similarity.pop(actor, None)
        held_of = sessions.get
        scored: list[tuple[float, str]] = []
        for other, shared in similarity.items():
            held = held_of(other)
            if held is not None:
                scored.append((shared / len(held.items) ** 0.5, other))
        if len(scored) > self.neighbours:
            scored = heapq.nlargest(self.neighbours, scored)
        mine = set(items)
        powers = self._powers()
        votes: dict[str, float] = {}
        vote_of = votes.get
        for sim, other in scored:
            theirs = sessions[other].items
            anchor = len(theirs) - 1
            while anchor > 0 and theirs[anchor] not in mine:
                anchor -= 1  # the newest SKU they share with this shopper
            for position, sku in enumerate(theirs):
                votes[sku] = vote_of(sku, 0.0) + sim * powers[abs(position - anchor)]
        best = heapq.nlargest(n, votes.items(), key=_score)
        return [(sku, round(score, 6), "") for sku, score in best]

    def _powers(self) -> list[float]:
        """neighbour_decay ** distance for every distance within a session."""
        powers: list[float] | None = self.__dict__.get("_decay_powers")
        if powers is None or len(powers) < self.session_items:
            powers = self._decay_powers = [self.neighbour_decay**step for step in range(self.session_items)]
        return powers

    def next_version(self, actor: str) -> int:
        """The fence version of `actor`'s next document: above the last one and at least its event time in ms."""
        session = self._sessions[actor]
        floor = int(session.ts * 1000) if session.ts > 0 else 0
        session.version = max(session.version + 1, floor)
        return session.version

    def as_of(self, actor: str) -> float:
        return self._sessions[actor].ts

    def __len__(self) -> int:
        return len(self._sessions)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
