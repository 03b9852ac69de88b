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

Why arrays: `top` runs for every shopper who clicked in a batch, and as
dictionaries of strings it cost about 250 µs of CPU per answer (a few
thousand interpreted steps: up to 500 candidate updates, 1,000 votes), three
times the rest of the flow per click. Both indexes are therefore mirrored in
numpy arrays of integer ids, and `top` is a fixed number of array operations
whatever the sizes (docs/recommendations.md, "Session kNN", has the
figures). A shopper or SKU that leaves its index frees its row for the next
newcomer; ids carry a generation (`row + capacity × n`), so an array entry
naming the row's previous holder is recognised as stale and skipped, with no
search through the other index when something leaves.

Everything is in event time and pure (no I/O, no Bytewax); the flow's
`similar` stage (`flows/recommend_stages.py`) holds one instance per shard
and writes each changed shopper's list.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

Scored = tuple[str, float, str]
Ids = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_EMPTY = -1
"""An unused place of a row (ids are >= 0)."""
_NOBODY = -2
"""The id of a row that holds no one: never equal to an id, nor to _EMPTY."""


class _Session:
    """One shopper's recent SKUs: by name (the session's own order and duplicates) and by SKU id (the arrays)."""

    __slots__ = ("ids", "items", "row", "ts", "uid", "version")

    def __init__(self, row: int, uid: int) -> None:
        self.items: list[str] = []  # distinct SKUs, oldest first
        self.ids: list[int] = []  # their SKU ids, same order
        self.row = row  # this shopper's row of the session arrays
        self.uid = uid  # row + sessions capacity x generation: what the SKU rows name
        self.ts = float("-inf")
        self.version = 0

    def __getstate__(self) -> tuple[list[str], list[int], int, int, float, int]:
        return self.items, self.ids, self.row, self.uid, self.ts, self.version

    def __setstate__(self, packed: tuple[Any, ...]) -> None:
        if len(packed) == 3:  # a snapshot of the release before the arrays: rebuilt by `SessionNeighbours`
            self.items, self.ts, self.version = packed
            self.ids, self.row, self.uid = [], _EMPTY, _EMPTY
            return
        self.items, self.ids, self.row, self.uid, self.ts, self.version = packed


def _grown(array: npt.NDArray[Any], rows: int, fill: float, limit: int) -> npt.NDArray[Any]:
    """`array` with at least `rows` rows (doubling, at most `limit`), the new ones `fill`ed: arrays grow with use
    up to capacity."""
    if rows <= len(array):
        return array
    bigger = np.full((min(max(rows, 2 * len(array), 64), limit), *array.shape[1:]), fill, dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


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

    Memory: sessions_capacity × session_items SKU names and 8-byte ids, and skus_capacity × sessions_per_sku
    8-byte shopper ids (the arrays grow with use up to these bounds).

    A SKU that left the SKU index (the least recently viewed beyond `skus_capacity`) is no longer voted for:
    its row is another SKU's now.

    Examples
    --------
    >>> knn = SessionNeighbours(neighbours=10)
    >>> for actor, sku in [("s:1", "A"), ("s:1", "B"), ("s:2", "A"), ("s:2", "C"), ("s:3", "B"), ("s:3", "D")]:
    ...     knn.learn_one(actor, sku, 1.0)
    >>> knn.learn_one("s:9", "A", 2.0)
    >>> knn.top("s:9", 5)  # the shoppers on A went to B and C (s:2's C first: the more recent of two equals)
    [('A', 1.414214, ''), ('C', 0.565685, ''), ('B', 0.565685, '')]
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
        self.sessions_capacity = max(1, sessions_capacity)
        self.skus_capacity = max(1, skus_capacity)
        self.neighbours = neighbours
        self.position_decay = position_decay
        self.neighbour_decay = neighbour_decay
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._sessions_of: OrderedDict[str, int] = OrderedDict()  # SKU -> its row of the SKU arrays
        self._empty()

    def _empty(self) -> None:
        """The arrays, empty; the row arrays grow as shoppers and SKUs arrive, the id arrays have full size."""
        items, per_sku = self.session_items, self.sessions_per_sku
        # Session rows: the shopper's SKU ids, oldest first, _EMPTY after the last; 1/sqrt(length). Per row
        # (full size, so that any id modulo the capacity indexes it): the id of its shopper, _NOBODY if none.
        self._items: Ids = np.full((0, items), _EMPTY, dtype=np.int64)
        self._norm: Floats = np.zeros(0, dtype=np.float64)
        self._session_uid: Ids = np.full(self.sessions_capacity, _NOBODY, dtype=np.int64)
        # SKU rows: the ids of its most recent shoppers, oldest first, _EMPTY after the last; how many; its name;
        # per row (full size): the SKU's id.
        self._holders: Ids = np.full((0, per_sku), _EMPTY, dtype=np.int64)
        self._holder_counts: list[int] = []
        self._sku_names: list[str] = []
        self._sku_uid: Ids = np.full(self.skus_capacity, _NOBODY, dtype=np.int64)
        self._scratch()

    def _scratch(self) -> None:
        """What `top` works in (never stored): tables of the decays, and per-row scratch left as found."""
        items, per_sku = self.session_items, self.sessions_per_sku
        steps = np.arange(items, dtype=np.float64)
        # Weight of a candidate found through the SKU `step` places back in this session, for each of its holders.
        self._position_table: Floats = np.repeat((self.position_decay**steps)[:, None], per_sku, axis=1)
        # Weight of a neighbour's SKU in column c when the newest SKU it shares with this session is in column a.
        self._distance_table: Floats = self.neighbour_decay ** np.abs(steps[None, :] - steps[:, None])
        self._inv_sqrt: Floats = np.concatenate(([0.0], 1.0 / np.sqrt(np.arange(1, items + 1))))
        self._columns: Ids = np.arange(items, dtype=np.int64)
        self._positions: Ids = np.arange(items * max(per_sku, self.neighbours), dtype=np.int64)
        self._first: Ids = np.zeros(self.sessions_capacity, dtype=np.int64)
        self._first_sku: Ids = np.zeros(self.skus_capacity, dtype=np.int64)
        self._mark: Ids = np.full(self.skus_capacity, _NOBODY, dtype=np.int64)

    # --- learning ---------------------------------------------------------------------------------------------

    def learn_one(self, actor: str, sku: str, ts: float) -> None:
        """`actor` interacted with `sku` at event time `ts`."""
        sessions = self._sessions
        session = sessions.get(actor)
        if session is None:
            session = sessions[actor] = self._new_session()
        else:
            sessions.move_to_end(actor)
        if ts > session.ts:
            session.ts = ts
        items = session.items
        if items and items[-1] == sku:
            return  # a reload: nothing moves
        index = self._sessions_of
        row = index.get(sku)
        if row is None:
            row = self._new_sku(sku)
        else:
            index.move_to_end(sku)
        ids = session.ids
        if sku in items:
            at = items.index(sku)
            del items[at], ids[at]
        items.append(sku)
        ids.append(int(self._sku_uid[row]))
        if len(items) > self.session_items:
            del items[0], ids[0]
        length = len(ids)
        self._items[session.row, :length] = ids
        self._norm[session.row] = self._inv_sqrt[length]
        self._hold(row, session.uid)

    def _hold(self, row: int, uid: int) -> None:
        """Shopper `uid` is now the most recent of SKU row `row` (moved there if it was already held)."""
        holders = self._holders[row]
        count = self._holder_counts[row]
        held = holders[:count].tolist()
        if uid in held:
            at = held.index(uid)
            holders[at : count - 1] = holders[at + 1 : count]
            holders[count - 1] = uid
        elif count < self.sessions_per_sku:
            holders[count] = uid
            self._holder_counts[row] = count + 1
        else:
            holders[:-1] = holders[1:]
            holders[-1] = uid

    def _new_session(self) -> _Session:
        """A row for a new shopper: the least recently active one's when full (its id then names no one)."""
        sessions = self._sessions
        if len(sessions) >= self.sessions_capacity:
            _, gone = sessions.popitem(last=False)
            row = gone.row
            uid = gone.uid + self.sessions_capacity
            self._items[row] = _EMPTY
        else:
            row = uid = len(sessions)
            self._items = _grown(self._items, row + 1, _EMPTY, self.sessions_capacity)
            self._norm = _grown(self._norm, row + 1, 0.0, self.sessions_capacity)
        self._session_uid[row] = uid
        self._norm[row] = 0.0
        return _Session(row, uid)

    def _new_sku(self, sku: str) -> int:
        """A row for a new SKU: the least recently viewed one's when full (its id then names nothing)."""
        index = self._sessions_of
        if len(index) >= self.skus_capacity:
            _, row = index.popitem(last=False)
            uid = int(self._sku_uid[row]) + self.skus_capacity
            self._holders[row] = _EMPTY
            self._holder_counts[row] = 0
            self._sku_names[row] = sku
        else:
            row = uid = len(index)
            self._holders = _grown(self._holders, row + 1, _EMPTY, self.skus_capacity)
            self._holder_counts.append(0)
            self._sku_names.append(sku)
        self._sku_uid[row] = uid
        index[sku] = row
        return row

    # --- answering ----------------------------------------------------------------------------------------------

    def top(self, actor: str, n: int) -> list[Scored]:
        """The `n` SKUs the shoppers most like `actor` viewed, as (sku, score, ""), best first (the shopper's own
        SKUs included: whether a viewed SKU may be shown is the answer's `seen` rule, not this index's).

        Cost: about 25 array operations over at most session_items × sessions_per_sku candidates and
        neighbours × session_items votes, whatever their number; it runs for every shopper who clicked in a
        batch. Equal scores come in the order of their votes (the closest neighbour's first).
        """
        session = self._sessions.get(actor)
        if session is None or not session.items:
            return []
        index = self._sessions_of
        rows: list[int] = []
        steps: list[int] = []
        for step, sku in enumerate(reversed(session.items)):
            row = index.get(sku)
            if row is not None:
                rows.append(row)
                steps.append(step)
        # 1. Candidates: the holders of each of the session's SKUs (its newest SKU first, each SKU's most recent
        #    holder first), weighted by that SKU's recency here; ids of shoppers who left the index (and empty
        #    places) no longer match their row's id; not the shopper itself.
        uids = self._holders[rows][:, ::-1].ravel()
        who = uids % self.sessions_capacity
        session_uid = self._session_uid
        session_uid[session.row] = _NOBODY
        live = session_uid[who] == uids
        session_uid[session.row] = session.uid
        who = who[live]
        if not who.size:
            return []
        # 2. Similarity: summed per shopper (at the position where it was first found: the last write of its
        #    row wins, in practice), over the square root of their length; the `neighbours` closest, closest
        #    first, and among equals the first found (V-SKNN's preference for recent sessions, as a tie-break).
        first = self._first
        order = self._positions[: who.size]
        first[who[::-1]] = order[::-1]
        shared = np.bincount(first[who], self._position_table[steps].ravel()[live])
        kept = np.flatnonzero(shared)
        who = who[kept]
        similarity = shared[kept] * self._norm[who]
        closest = np.argsort(-similarity, kind="stable")[: self.neighbours]
        who, similarity = who[closest], similarity[closest]
        # 3. Votes: each neighbour's SKUs, by distance from the newest SKU it shares with this session (column 0
        #    when none: a shopper whose shared SKU left their newest ones); SKUs that left the index are skipped.
        theirs = self._items[who]
        sku_cap = self.skus_capacity
        what = theirs % sku_cap
        mine = session.ids
        mine_rows = [uid % sku_cap for uid in mine]
        mark = self._mark
        mark[mine_rows] = mine
        anchor = ((mark[what] == theirs) * self._columns).max(axis=1)
        mark[mine_rows] = _NOBODY
        known = self._sku_uid[what] == theirs
        what = what[known]  # row by row: the closest neighbour's SKUs first, each in its session's order
        first = self._first_sku
        order = self._positions[: what.size]
        first[what[::-1]] = order[::-1]  # each SKU's first vote, in practice: equal scores keep the voting order
        votes = np.bincount(first[what], (self._distance_table[anchor] * similarity[:, None])[known])
        kept = np.flatnonzero(votes)
        what, votes = what[kept], votes[kept]
        best = np.argsort(-votes, kind="stable")[:n]
        names = self._sku_names
        return list(zip([names[row] for row in what[best].tolist()], np.round(votes[best], 6).tolist(), repeat("")))

    # --- versions, snapshots --------------------------------------------------------------------------------------

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
        # The scratch and the tables follow from the parameters: not stored.
        scratch = {"_position_table", "_distance_table", "_inv_sqrt", "_columns", "_positions", "_first",
                   "_first_sku", "_mark"}  # fmt: skip
        return {name: value for name, value in self.__dict__.items() if name not in scratch}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_items" not in state:  # a snapshot of the release before the arrays: the same sessions, re-learnt
            self._rebuild()
            return
        self._scratch()

    def _rebuild(self) -> None:
        """Index the sessions of an older snapshot again, least recently active first (their SKUs in order)."""
        old: OrderedDict[str, _Session] = self.__dict__.pop("_sessions")
        self.__dict__.pop("_decay_powers", None)
        self.sessions_capacity = max(1, self.sessions_capacity)
        self.skus_capacity = max(1, self.skus_capacity)
        self._sessions = OrderedDict()
        self._sessions_of = OrderedDict()
        self._empty()
        for actor, session in old.items():
            for sku in session.items:
                self.learn_one(actor, sku, session.ts)
            self._sessions[actor].version = session.version
