"""Event ids seen recently, forgotten by the watermark rather than by the newest event time.

`operators.seen_events.SeenEvents` ages ids out by the newest `ts` it was given, which suits a
key that sees one partition's events in order. A customers shard hears from every partition,
and reading a backlog one partition may run days ahead of another: aged by its newest `ts`, a
producer's retry on the slow partition would find the original forgotten. Here an id is kept
until the event clock's watermark is `window_s` past the later of its `ts` and the watermark
when it arrived: a retry is never further behind than the lateness the clock allows.
"""

from __future__ import annotations

from operators.seen_events import event_fingerprint


class RecentIds:
    """Fingerprints of recent event ids with the event time they may be forgotten at.

    >>> ids = RecentIds(window_s=3600.0)
    >>> ids.add("e1", ts=100.0, watermark=float("-inf")), ids.add("e1", ts=100.0, watermark=50.0)
    (True, False)
    >>> ids.forget(watermark=3800.0)  # 100 + 3600 passed: e1 goes
    >>> ids.add("e1", ts=100.0, watermark=3800.0), len(ids)
    (True, 1)
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._until: dict[int, float] = {}
        self._forgot_at = float("-inf")

    def __len__(self) -> int:
        return len(self._until)

    def add(self, event_id: str, ts: float, watermark: float) -> bool:
        """Record `event_id`; False when it is a repeat of one still remembered."""
        fingerprint = event_fingerprint(event_id)
        if fingerprint in self._until:
            return False
        self._until[fingerprint] = max(ts, watermark) + self.window_s
        return True

    def forget(self, watermark: float) -> None:
        """Drop the ids the watermark has gone `window_s` past (a sweep at most every quarter window)."""
        if watermark - self._forgot_at < self.window_s / 4:
            return
        self._forgot_at = watermark
        self._until = {f: until for f, until in self._until.items() if until >= watermark}

    def to_state(self) -> list[object]:
        return [self.window_s, self._forgot_at, list(self._until.items())]

    @classmethod
    def from_state(cls, state: list[object]) -> RecentIds:
        window_s, forgot_at, items = state
        ids = cls(float(window_s))  # type: ignore[arg-type]
        ids._forgot_at = float(forgot_at)  # type: ignore[arg-type]
        ids._until = {int(f): float(u) for f, u in items}  # type: ignore[attr-defined]
        return ids
