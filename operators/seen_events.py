"""Remembers recent event ids so a redelivered event changes nothing twice."""

from __future__ import annotations

import struct
from array import array
from hashlib import blake2b

_COMPACT_AT = 4096
_INT64 = struct.Struct("<q").unpack  # ~80 ns less than `int.from_bytes` per event; the same value


_last: tuple[str, int] = ("", 0)
"""The last id fingerprinted and its fingerprint, one tuple so that threads read a matching pair."""


def event_fingerprint(event_id: str) -> int:
    """A stable 64-bit fingerprint of `event_id` (same in every process and after a restart).

    Two distinct ids collide with probability about n²/2⁶⁵: for a million ids
    in one window, about 3 in 100 million. The very string object fingerprinted last is answered
    from memory: a basket's movements share their event's `event_id` object, and each SKU's ledger
    looks it up in its own window.

    >>> event_fingerprint("e1") == event_fingerprint("e1") != event_fingerprint("e2")
    True
    """
    global _last
    last = _last
    if event_id is last[0]:
        return last[1]
    fingerprint: int = _INT64(blake2b(event_id.encode(), digest_size=8).digest())[0]
    _last = (event_id, fingerprint)
    return fingerprint


class SeenEvents:
    """The event ids of one key seen within a sliding event-time window.

    Producers retry with the same `event_id` (CONTRACT.md), so a duplicate
    carries its original `ts`; an id is forgotten once the newest `ts` seen
    here is more than `window_s` past it. Ids are aged out in arrival order, so
    an old-dated id that arrived late is kept a little longer, never shorter.

    Ids are kept as 64-bit fingerprints in arrays: Bytewax pickles every
    touched key's state at each snapshot, and two flat arrays pickle as a copy
    of their memory, where a list of (ts, id) tuples cost ~1 µs an entry and
    stalled the flow for a sizeable part of a second per snapshot.

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

    def __init__(self, window_s: float = 3_600.0) -> None:
        self.window_s = window_s
        self._ids: set[int] = set()
        self._arrival_ts = array("d")  # in arrival order, from `_head` on
        self._arrival_ids = array("q")
        self._head = 0
        self._newest = float("-inf")

    def add(self, event_id: str, ts: float) -> bool:
        """Record `event_id`; returns False when it was already seen in the window."""
        fingerprint = event_fingerprint(event_id)
        ids = self._ids
        if fingerprint in ids:
            return False
        ids.add(fingerprint)
        arrival_ts = self._arrival_ts
        arrival_ts.append(ts)
        self._arrival_ids.append(fingerprint)
        if ts > self._newest:
            self._newest = ts
            horizon = ts - self.window_s
            if arrival_ts[self._head] < horizon:  # the oldest is due: most events age nothing out
                self._age_out(horizon)
        return True

    def _age_out(self, horizon: float) -> None:
        arrival_ts, arrival_ids, head = self._arrival_ts, self._arrival_ids, self._head
        while arrival_ts[head] < horizon:
            self._ids.discard(arrival_ids[head])
            head += 1
        if head >= _COMPACT_AT and head * 2 >= len(arrival_ts):
            del arrival_ts[:head]
            del arrival_ids[:head]
            head = 0
        self._head = head

    def to_state(self) -> tuple[float, float, bytes, bytes]:
        """The window as plain values (window_s, newest ts, arrival times, ids as bytes): its pickled form.

        `StockLedger` embeds it in its MessagePack bytes; `from_state` reverses it.
        """
        head = self._head
        return self.window_s, self._newest, self._arrival_ts[head:].tobytes(), self._arrival_ids[head:].tobytes()

    @classmethod
    def from_state(cls, state: tuple[float, float, bytes, bytes]) -> SeenEvents:
        """The window `to_state` gave (the id set is rebuilt).

        >>> seen = SeenEvents(60.0)
        >>> _ = seen.add("e1", 1.0)
        >>> SeenEvents.from_state(seen.to_state()).add("e1", 1.0)
        False
        """
        seen = cls.__new__(cls)
        seen.__setstate__(state)
        return seen

    def __getstate__(self) -> tuple[float, float, bytes, bytes]:
        return self.to_state()

    def __setstate__(self, state: tuple[float, float, bytes, bytes]) -> None:
        self.window_s, self._newest, ts_bytes, id_bytes = state
        self._arrival_ts = array("d", ts_bytes)
        self._arrival_ids = array("q", id_bytes)
        self._head = 0
        self._ids = set(self._arrival_ids)

    @property
    def newest(self) -> float:
        """The newest event time recorded (-inf when none)."""
        return self._newest

    def __contains__(self, event_id: object) -> bool:
        """Whether `event_id` is in the window, without recording it."""
        return isinstance(event_id, str) and event_fingerprint(event_id) in self._ids

    def __len__(self) -> int:
        return len(self._ids)
