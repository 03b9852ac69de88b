"""Remembers recent event ids so a redelivered event changes nothing twice."""

from __future__ import annotations

from collections import deque


class SeenEvents:
    """The event ids of one key seen within a sliding event-time window.

    Producers retry with the same `event_id` (CONTRACT.md), so a duplicate
    carries its original `ts`; an id is forgotten once the newest `ts` seen
    here is more than `window_s` past it. Ids are aged out in arrival order, so
    an old-dated id that arrived late is kept a little longer, never shorter.

    Parameters
    ----------
    window_s
        Event-time seconds an id is remembered; at least an hour in production.

    Examples
    --------
    >>> seen = SeenEvents(window_s=3600)
    >>> seen.add("e1", ts=0.0)
    True
    >>> seen.add("e1", ts=0.0)  # a redelivery
    False
    >>> seen.add("e2", ts=7200.0)  # ages e1 out
    True
    >>> len(seen)
    1
    """

    def __init__(self, window_s: float = 86_400.0) -> None:
        self.window_s = window_s
        self._ids: set[str] = set()
        self._arrivals: deque[tuple[float, str]] = deque()
        self._newest = float("-inf")

    def add(self, event_id: str, ts: float) -> bool:
        """Record `event_id`; returns False when it was already seen in the window."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._arrivals.append((ts, event_id))
        if ts > self._newest:
            self._newest = ts
            horizon = ts - self.window_s
            arrivals = self._arrivals
            while arrivals[0][0] < horizon:
                self._ids.discard(arrivals.popleft()[1])
        return True

    def __getstate__(self) -> tuple[float, float, list[tuple[float, str]]]:
        # Bytewax snapshots state every epoch: the id set is rebuilt on restore.
        return self.window_s, self._newest, list(self._arrivals)

    def __setstate__(self, state: tuple[float, float, list[tuple[float, str]]]) -> None:
        self.window_s, self._newest, arrivals = state
        self._arrivals = deque(arrivals)
        self._ids = {event_id for _, event_id in arrivals}

    def __len__(self) -> int:
        return len(self._ids)
