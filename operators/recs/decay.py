"""Time-decayed scores with a bounded number of keys: the counter behind neighbours and trending."""

from __future__ import annotations

import heapq
from operator import itemgetter

_RESCALE_AT = 256.0  # half-lives past the landmark before rescaling; 2**256 is far inside float range
_second = itemgetter(1)


class DecayedScores:
    """Per-key sums of weights that halve every `half_life_s` of event time, at most ~`capacity` keys.

    Each key may carry a label (the SKU's category), kept and dropped with it.

        Forward decay (Cormode et al., "Forward Decay: A Practical Time Decay Model
        for Streaming Systems", ICDE 2009): a weight added at `ts` is stored as
        `weight * 2**((ts - landmark) / half_life_s)`, so an update is one dict
        addition whatever the age of the other keys, and all stored values compare
        directly. Reading scales by `2**(-(now - landmark) / half_life_s)`. Late
        (older) events simply add less. When more than `capacity` plus a quarter
        keys are held, the weakest are dropped down to `capacity`: the amortised
        cost stays O(1) per update, and a new key gets a quarter-capacity of
        updates to prove itself before it competes.

        Parameters
        ----------
        half_life_s
            Event-time seconds after which a weight counts half.
        capacity
            Keys kept after pruning.

        Examples
        --------
        >>> scores = DecayedScores(half_life_s=3600.0, capacity=2)
        >>> scores.add("SKU-1", 1.0, ts=0.0)
        >>> scores.add("SKU-2", 1.0, ts=3600.0)
        >>> scores.top(2, now=3600.0)
        [('SKU-2', 1.0), ('SKU-1', 0.5)]
    """

    def __init__(self, half_life_s: float, capacity: int) -> None:
        if half_life_s <= 0 or capacity < 1:
            raise ValueError(f"need half_life_s > 0 and capacity >= 1, got {half_life_s}, {capacity}")
        self.half_life_s = half_life_s
        self.capacity = capacity
        self.landmark: float | None = None
        self.newest = float("-inf")
        self.scores: dict[str, float] = {}
        self.labels: dict[str, str] = {}
        self._prune_above = capacity + max(4, capacity // 4)

    def add(self, key: str, weight: float, ts: float, label: str | None = None) -> None:
        """Add `weight` to `key` at event time `ts`; `label`, when given, becomes the key's label."""
        landmark = self.landmark
        if landmark is None:
            landmark = self.landmark = ts
        exponent = (ts - landmark) / self.half_life_s
        if exponent > _RESCALE_AT:
            self._rescale(ts)
            exponent = 0.0
        if ts > self.newest:
            self.newest = ts
        scores = self.scores
        scores[key] = scores.get(key, 0.0) + weight * 2.0**exponent
        if label:
            self.labels[key] = label
        if len(scores) > self._prune_above:
            self.prune(self.capacity)

    def prune(self, keep: int) -> list[str]:
        """Drop all but the `keep` strongest keys; returns the dropped ones."""
        scores = self.scores
        if len(scores) <= keep:
            return []
        kept = heapq.nlargest(keep, scores.items(), key=_second)
        self.scores = dict(kept)
        dropped = [key for key in scores if key not in self.scores]
        labels = self.labels
        for key in dropped:
            labels.pop(key, None)
        return dropped

    def top(self, n: int, now: float) -> list[tuple[str, float]]:
        """The `n` strongest keys with their scores as of `now`, strongest first."""
        if self.landmark is None or n <= 0:
            return []
        factor = 2.0 ** (-(now - self.landmark) / self.half_life_s)
        return [(key, value * factor) for key, value in heapq.nlargest(n, self.scores.items(), key=_second)]

    def top_labelled(self, n: int, now: float) -> list[tuple[str, float, str]]:
        """As `top`, with each key's label ("" when it has none)."""
        labels = self.labels
        return [(key, score, labels.get(key, "")) for key, score in self.top(n, now)]

    def get(self, key: str, now: float) -> float:
        """The score of `key` as of `now` (0.0 when not held)."""
        value = self.scores.get(key)
        if value is None or self.landmark is None:
            return 0.0
        return float(value * 2.0 ** (-(now - self.landmark) / self.half_life_s))

    def _rescale(self, ts: float) -> None:
        assert self.landmark is not None
        factor = 2.0 ** (-(ts - self.landmark) / self.half_life_s)
        self.scores = {key: value * factor for key, value in self.scores.items() if value * factor > 1e-300}
        self.labels = {key: label for key, label in self.labels.items() if key in self.scores}
        self.landmark = ts

    def __len__(self) -> int:
        return len(self.scores)
