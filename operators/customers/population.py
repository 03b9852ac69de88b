"""RFM scores as quantiles against the live population, from mergeable histograms (no sorting of customers).

Each scope (`global`, `country:DE`, ...) keeps three histograms over log-spaced buckets, one
count per bucket, each customer counted once: when a customer's inputs change, their old
bucket loses one and the new one gains one, so the histograms are always the population's
current distribution. A score is the share of the scope's customers below the customer's
bucket, in quintiles (1-5, 5 best: most recent, most frequent, biggest spender).

Frequency and spend are decayed sums, which shrink as time passes for everyone at the same
rate: ranked by `log(value) + t / window` (`t` the time the sum is as of), two customers'
order is the same at any common time, so a key computed once stays comparable without
rewriting every customer as the clock moves. Recency is ranked by the last purchase's hour.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

Buckets = tuple[int, int, int]
"""(recency, frequency, monetary) buckets of one customer, as `RfmKeys` holds them."""
RESOLUTION = 20
"""Buckets per unit of natural log: ~5% relative width for frequency and spend."""


@dataclass(frozen=True, slots=True)
class RfmKeys:
    """Where one customer falls in each histogram (bucket numbers)."""

    recency: int
    frequency: int
    monetary: int


def rfm_keys(last: float, frequency: float, monetary: float, as_of: float, window_s: float) -> RfmKeys:
    """The buckets of a customer whose decayed sums over `window_s` are `frequency` and `monetary` at `as_of`.

    >>> a = rfm_keys(0.0, 2.0, 100.0, as_of=0.0, window_s=86_400.0)
    >>> b = rfm_keys(0.0, 2.0 * math.exp(-1), 100.0 * math.exp(-1), as_of=86_400.0, window_s=86_400.0)
    >>> a == b  # the same sums seen a window later: same keys
    True
    """
    shift = as_of / window_s
    return RfmKeys(
        int(last // 3600),
        math.floor((math.log(max(frequency, 1e-9)) + shift) * RESOLUTION),
        math.floor((math.log(max(monetary, 1e-9)) + shift) * RESOLUTION),
    )


@dataclass(slots=True)
class Histogram:
    """Counts per bucket, with the sorted buckets for ranks."""

    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0

    def move(self, old: int | None, new: int | None) -> None:
        if old is not None:
            left = self.counts.get(old, 0) - 1
            if left > 0:
                self.counts[old] = left
            else:
                self.counts.pop(old, None)
            self.total -= 1
        if new is not None:
            self.counts[new] = self.counts.get(new, 0) + 1
            self.total += 1

    def share_below(self, key: int) -> float:
        """Share of the population in buckets below `key`, plus half of `key`'s own (a mid-rank)."""
        if self.total <= 0:
            return 0.5
        below = sum(n for k, n in self.counts.items() if k < key)
        return (below + 0.5 * self.counts.get(key, 0)) / self.total


def quintile(share: float) -> int:
    """1..5 from a share of the population below.

    >>> [quintile(s) for s in (0.0, 0.19, 0.2, 0.55, 0.99)]
    [1, 1, 2, 3, 5]
    """
    return min(5, 1 + int(share * 5))


@dataclass(slots=True)
class Population:
    """The three histograms of one scope.

    >>> pop = Population()
    >>> for n in range(10):
    ...     pop.move(None, RfmKeys(n, n, n))
    >>> pop.scores(RfmKeys(9, 9, 9)), pop.scores(RfmKeys(0, 0, 0))
    ({'r': 5, 'f': 5, 'm': 5, 'population': 10}, {'r': 1, 'f': 1, 'm': 1, 'population': 10})
    """

    recency: Histogram = field(default_factory=Histogram)
    frequency: Histogram = field(default_factory=Histogram)
    monetary: Histogram = field(default_factory=Histogram)

    def move(self, old: RfmKeys | None, new: RfmKeys | None) -> None:
        self.recency.move(old.recency if old else None, new.recency if new else None)
        self.frequency.move(old.frequency if old else None, new.frequency if new else None)
        self.monetary.move(old.monetary if old else None, new.monetary if new else None)

    def scores(self, keys: RfmKeys) -> dict[str, int]:
        return {
            "r": quintile(self.recency.share_below(keys.recency)),
            "f": quintile(self.frequency.share_below(keys.frequency)),
            "m": quintile(self.monetary.share_below(keys.monetary)),
            "population": self.recency.total,
        }

    def to_doc(self) -> dict[str, object]:
        """The stored form: sorted (bucket, count) pairs per histogram."""
        return {name: sorted(getattr(self, name).counts.items()) for name in ("recency", "frequency", "monetary")}

    @classmethod
    def from_doc(cls, doc: dict[str, list[list[int]]]) -> Population:
        pop = cls()
        for name in ("recency", "frequency", "monetary"):
            hist: Histogram = getattr(pop, name)
            hist.counts = {int(k): int(n) for k, n in doc.get(name, [])}
            hist.total = sum(hist.counts.values())
        return pop


def scores_of(population: dict[str, Any], buckets: list[int]) -> dict[str, int]:
    """The R, F, M quintiles (1-5) of a customer's `buckets` against a stored population document.

    >>> doc = {"recency": [[1, 4], [9, 1]], "frequency": [[5, 5]], "monetary": [[2, 1], [7, 4]]}
    >>> scores_of(doc, [9, 5, 2])
    {'r': 5, 'f': 3, 'm': 1, 'population': 5}
    """
    return RankedPopulation.from_doc(population).scores(buckets)


class RankedHistogram:
    """A stored histogram ready for ranks: its buckets in order, and the count below each (a running sum).

    Built once per stored population document, it answers `Histogram.share_below` in O(log buckets)
    (the API scores every customer read against the same document; parsing and summing it per read
    cost more than the rest of the request). Counts are integers, so the shares are exactly those
    of a sum over the pairs.

    >>> hist = RankedHistogram.of([[1, 2], [3, 2], [7, 4]])
    >>> hist.share_below(3), hist.share_below(4), hist.share_below(0), RankedHistogram.of([]).share_below(5)
    (0.375, 0.5, 0.0, 0.5)
    """

    __slots__ = ("below", "buckets", "counts", "total")

    def __init__(self, buckets: list[int], counts: list[int]) -> None:
        self.buckets = buckets
        self.counts = counts
        self.below = list(accumulate(counts, initial=0))
        self.total = self.below[-1]

    @classmethod
    def of(cls, pairs: list[list[int]]) -> RankedHistogram:
        """From stored (bucket, count) pairs, sorted by bucket."""
        return cls([int(k) for k, _ in pairs], [int(n) for _, n in pairs])

    def share_below(self, key: int) -> float:
        """Share of the population in buckets below `key`, plus half of `key`'s own (a mid-rank)."""
        if self.total <= 0:
            return 0.5
        i = bisect_left(self.buckets, key)
        own = self.counts[i] if i < len(self.buckets) and self.buckets[i] == key else 0
        return (self.below[i] + 0.5 * own) / self.total


class RankedPopulation:
    """A stored population document (`Population.to_doc`) ready to score customers against."""

    __slots__ = ("frequency", "monetary", "recency")

    def __init__(self, recency: RankedHistogram, frequency: RankedHistogram, monetary: RankedHistogram) -> None:
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RankedPopulation:
        return cls(*(RankedHistogram.of(doc.get(name, [])) for name in ("recency", "frequency", "monetary")))

    def scores(self, buckets: list[int]) -> dict[str, int]:
        """The R, F, M quintiles (1-5) of a customer's (recency, frequency, monetary) `buckets`, and the population."""
        recency, frequency, monetary = buckets
        return {
            "r": quintile(self.recency.share_below(recency)),
            "f": quintile(self.frequency.share_below(frequency)),
            "m": quintile(self.monetary.share_below(monetary)),
            "population": self.recency.total,
        }


@dataclass(slots=True)
class Populations:
    """The populations of the scopes of one shard, and the event time each document was last written at."""

    scopes: dict[str, Population] = field(default_factory=dict)
    as_of: dict[str, float] = field(default_factory=dict)

    def apply(self, moves: list[tuple[str, Buckets | None, Buckets | None, float]]) -> list[str]:
        """Apply (scope, old, new, as_of) moves; returns the scopes that changed."""
        changed: dict[str, None] = {}
        for scope, old, new, as_of in moves:
            pop = self.scopes.get(scope)
            if pop is None:
                pop = self.scopes[scope] = Population()
            pop.move(RfmKeys(*old) if old else None, RfmKeys(*new) if new else None)
            if as_of > self.as_of.get(scope, float("-inf")):
                self.as_of[scope] = as_of
            changed[scope] = None
        return list(changed)
